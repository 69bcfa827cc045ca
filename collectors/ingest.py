"""Bulk ingest: JSON Lines into the store, validated in SQL, idempotent on event_id.

Python only cuts the input into lines and hands DuckDB an Arrow batch; parsing, checking,
typing and de-duplication run as set-based SQL (collectors/validate.py), which is what makes
a million lines take seconds instead of the ~25 minutes row-by-row INSERTs would.
Each batch commits with the file's read position, so an interrupted ingest resumes cleanly.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from audit.errors import AuditError
from audit.errors import first_line as error_line
from audit.event import MAX_DEPTH
from collectors import canonical, fast_path, sources, validate
from collectors.arrow_arrays import int64_array, string_array
from collectors.canonical import json_depth
from collectors.store import REFUSED

MAX_RAW = 64 * 1024  # longest raw text kept for a rejected line
BATCH_ROWS = 16_384
_STAGE = validate.stage_sql()
_FAST = fast_path.insert_sql()
_FAST_STRICT = fast_path.insert_sql(strict=True)


@dataclass
class IngestSummary:
    files: int = 0
    unchanged_files: int = 0
    lines: int = 0  # lines read (blank ones included)
    ingested: int = 0
    fast: int = 0  # of those ingested, how many the fast path stored (the rest: exact path)
    duplicates: int = 0
    skipped: int = 0  # ordinary log lines (their "event" is not field.transition)
    skipped_entries: int = 0  # folder entries not read: FIFOs, devices, broken links
    pending_lines: int = 0  # incomplete last lines left for the next ingest
    writing_files: int = 0  # spool files live writers still hold (*.jsonl.part), read later
    reasons: Counter = field(default_factory=Counter)  # rejected lines by reason

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def add(self, other: IngestSummary) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        return {**asdict(self), "rejected": self.rejected, "reasons": dict(self.reasons)}


def _ends_between(buf: np.ndarray, start: int, stop: int, step: int) -> np.ndarray:
    mask = np.empty(min(step, stop - start), dtype=bool)
    parts = [np.empty(0, np.int64)]
    for at in range(start, stop, step):
        chunk = buf[at : min(at + step, stop)]
        np.equal(chunk, 10, out=mask[: len(chunk)])
        parts.append(np.flatnonzero(mask[: len(chunk)]) + (at + 1))
    return np.concatenate(parts)


def _line_ends(data: bytes | memoryview, step: int = 1 << 20) -> np.ndarray:
    """Offsets just past each newline. Compared a megabyte at a time into one reused
    buffer: a whole-input comparison allocates as much again, and touching that much fresh
    memory cost ten times the scan itself here. A large input is scanned as two halves in
    two threads (numpy lets go of the GIL): 0.08 s becomes ~0.045 s for 275 MB."""
    buf = np.frombuffer(data, np.uint8)
    half = len(buf) // 2
    if half < 16 * step:
        return _ends_between(buf, 0, len(buf), step)
    with ThreadPoolExecutor(2) as pool:
        halves = pool.map(_ends_between, [buf, buf], [0, half], [half, len(buf)], [step, step])
        return np.concatenate(list(halves))


Invalid = tuple[int, str, str, int]  # line, raw text, reason, byte in the line


def lines_table(data: bytes | memoryview, first_line: int) -> tuple[pa.Table, list[Invalid]]:
    """Arrow (line, raw) over complete newline-terminated lines, without copying the bytes.

    Returns the table and the lines that are not valid UTF-8 (blanked in the table, reported
    with where in the line the bad byte is), which are rare enough to find one by one.
    """
    ends = _line_ends(data)
    offsets = np.concatenate(([0], ends)).astype(np.int64, copy=False)
    n = len(ends)
    raw = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    invalid: list[Invalid] = []
    try:
        raw.validate(full=True)
    except pa.ArrowInvalid:
        raw, invalid = _blank_invalid_utf8(raw, data, offsets, first_line)
    table = pa.table({"line": int64_array(np.arange(first_line, first_line + n)), "raw": raw})
    # DuckDB scans an Arrow table one record batch per thread: give it several.
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS)), invalid


def _blank_invalid_utf8(
    raw: pa.Array, data: bytes | memoryview, offsets: np.ndarray, first_line: int
) -> tuple[pa.ChunkedArray, list[Invalid]]:
    """``raw`` with its invalid UTF-8 lines blanked, and those lines. Checked a record batch
    at a time, and decoded line by line only in a batch that fails: one bad line among 1M
    cost 1 s of CPU when every line was decoded."""
    view = memoryview(data)
    pieces, invalid = [], []
    for start in range(0, len(raw), BATCH_ROWS):
        piece = raw.slice(start, BATCH_ROWS)
        try:
            piece.validate(full=True)
        except pa.ArrowInvalid:
            bounds = offsets[start : start + len(piece) + 1].tolist()
            texts = []
            for i, (begin, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
                line = bytes(view[begin : end - 1])  # without its newline
                try:
                    texts.append(line.decode("utf-8") + "\n")  # the fast path wants it
                except UnicodeDecodeError as exc:
                    texts.append("")
                    text = line.decode("utf-8", "backslashreplace")
                    invalid.append((first_line + start + i, text, "invalid UTF-8", exc.start))
            piece = string_array(texts, large=True)
        pieces.append(piece)
    return pa.chunked_array(pieces, pa.large_string()), invalid


class _StrictParseFailed(Exception):
    """The strict parse met a malformed line. DuckDB has aborted the transaction (as it
    does for any failed statement): roll back and do the batch again with ``strict=False``."""


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    source: str,
    first_line: int,
    data: bytes | memoryview,
    *,
    strict: bool,
) -> IngestSummary:
    """Validate, type and store newline-terminated lines. The caller owns the transaction
    (see ``_in_transaction``).

    The fast path stores the plainly well-formed lines straight from one parse; the exact
    path then classifies what is left (rejects with reasons, ordinary log lines, container
    values, duplicates). ``strict``: the fast path parses without ``json_valid`` first (see
    ``_in_transaction``).
    """
    out = IngestSummary()
    if not data:
        return out
    batch, invalid = lines_table(data, first_line)
    out.lines = batch.num_rows
    (base,) = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()[0]
    seq0 = base - first_line + 1  # seq = seq0 + line on both paths: line order
    con.register("ingest_batch", batch)  # a rollback drops it, should the batch fail
    stored = _fast_insert(con, seq0, source, strict)
    # What the fast path did not store; with every line stored there is nothing to find.
    rest = (
        con.sql(
            "SELECT line, raw FROM ingest_batch "
            "ANTI JOIN (SELECT line FROM events WHERE seq > $base) USING (line)",
            params={"base": base},
        ).to_arrow_table()
        if stored < batch.num_rows
        else None
    )
    con.unregister("ingest_batch")
    duplicates = _drop_duplicates(con, base)
    out.ingested = out.fast = stored - duplicates
    out.duplicates = duplicates
    if rest is not None and rest.num_rows:
        out.add(_exact_path(con, source, seq0, rest))
    if invalid:
        _reject(con, source, invalid)
        out.reasons.update(reason for _, _, reason, _ in invalid)
    # The batch's refused writes, for applied_events (collectors/store.py, migration 5).
    con.execute(f"INSERT INTO refused_events SELECT seq FROM events WHERE seq > ? AND {REFUSED}",
                [base])
    return out


def _reject(con: duckdb.DuckDBPyConnection, source: str, rows: list[Invalid]) -> None:
    """Record rejected lines found in Python (few: row by row is fine)."""
    con.executemany(
        "INSERT INTO rejected_events (source, line, raw, reason, at_byte) VALUES (?, ?, ?, ?, ?)",
        [(source, n, raw[:MAX_RAW], reason, at) for n, raw, reason, at in rows],
    )


def _settings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The connection's current values of the settings the fast path changes."""
    return {
        name: con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]
        for name in fast_path.SETTINGS
    }


def _apply(con: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        con.execute(f"SET {name} = {value!r}")


def _fast_insert(con: duckdb.DuckDBPyConnection, seq0: int, source: str, strict: bool) -> int:
    """The fast path's INSERT under its settings; they are put back after it (and, should
    it fail, by ``_in_transaction`` once the aborted transaction is rolled back)."""
    saved = _settings(con)
    _apply(con, fast_path.SETTINGS)
    try:
        (stored,) = con.execute(_FAST_STRICT if strict else _FAST, [seq0, source]).fetchall()[0]
    except duckdb.InvalidInputException as exc:
        if strict:
            raise _StrictParseFailed from exc
        raise
    _apply(con, saved)
    return stored


def _in_transaction(
    con: duckdb.DuckDBPyConnection, work: Callable[[bool], IngestSummary]
) -> IngestSummary:
    """``work(strict)`` as one transaction: the batch and the file position commit together.

    The strict parse is tried first. Meeting a malformed line that looks whole (starts
    with '{', ends with '}'), it aborts the transaction, and the batch is rolled back and
    done again with the tolerant parse (``fast_path.insert_sql``): on 1M lines, strict
    saves ~0.08 s, and a failed attempt wastes what it had done, half a batch on average.
    That is paid once per batch whatever the number of such lines, and only for lines
    that look whole: a line cut short by a crash and continued by the next writer reads
    '{…{…}'. Lines merely cut short never reach the strict parse."""
    # A function is a catalog entry: created inside the transaction, a rollback drops it.
    canonical.register(con)
    saved = _settings(con)
    for strict in (True, False):
        con.execute("BEGIN")
        try:
            summary = work(strict)
        except BaseException as exc:
            # Nothing runs in an aborted transaction, not even SET: the settings go back
            # after the rollback (which drops the batch's registered tables too).
            con.execute("ROLLBACK")
            _apply(con, saved)
            if isinstance(exc, _StrictParseFailed):
                continue
            raise
        con.execute("COMMIT")
        return summary
    raise AssertionError("unreachable: the tolerant parse does not fail on a malformed line")


def _drop_duplicates(con: duckdb.DuckDBPyConnection, base: int) -> int:
    """Delete the rows the fast path stored for event_ids that were stored already or came
    twice in the batch, keeping the first (the stored one, else the earliest line).

    The fast path inserts without looking: a NOT EXISTS in that statement cost a fifth of
    it, even against an empty store. Counting afterwards is one pass over the batch (and a
    join with the older rows that share its ids), and most batches have nothing to delete.
    """
    base = int(base)  # inlined below: the statements differ with and without older rows
    scope = (
        "events"
        if base == 0
        else f"events WHERE event_id IN (SELECT event_id FROM events WHERE seq > {base})"
    )
    (extra,) = con.execute(f"SELECT count(*) - count(DISTINCT event_id) FROM {scope}").fetchall()[0]
    if not extra:
        return 0
    (deleted,) = con.execute(
        f"""
        DELETE FROM events WHERE seq > {base} AND seq IN (
            SELECT seq FROM {scope}
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY seq) > 1)
        """
    ).fetchall()[0]
    return deleted


def _exact_path(
    con: duckdb.DuckDBPyConnection, source: str, seq0: int, batch: pa.Table
) -> IngestSummary:
    """Every check with its reason, on the lines the fast path left (a staged temp table)."""
    out = IngestSummary()
    con.register("ingest_batch", batch)
    # Bracket counting in SQL finds the few lines that might nest too deep; measure those.
    maybe = con.execute(validate.maybe_deep_sql()).fetchall()
    deep = [
        line
        for line, raw, is_object, kept in maybe
        if any(json_depth(text) > MAX_DEPTH for text in (kept if is_object else [raw]) if text)
    ]
    con.register("ingest_too_deep", pa.table({"line": int64_array(deep)}))
    con.execute(_STAGE)

    # A window to drop duplicates inside the batch costs as much as the insert itself; count
    # first, since most batches have none.
    (has_dups,) = con.execute(
        "SELECT count(*) > count(DISTINCT event_id) FROM ingest_stage "
        "WHERE reason IS NULL AND NOT skipped"
    ).fetchall()[0]
    qualify = (
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY line) = 1" if has_dups else ""
    )
    (inserted,) = con.execute(
        f"""
        INSERT INTO events
        SELECT ? + line, event_id, ts, entity, entity_type, field, change, old, new, writer,
               actor, write_id, base_version, version, source_ts, priority, trace_id, span_id,
               attrs, ?, line
        FROM ingest_stage AS s
        WHERE reason IS NULL AND NOT skipped
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id)
        {qualify}
        """,
        [seq0, source],
    ).fetchall()[0]
    con.execute(
        f"""
        INSERT INTO rejected_events (source, line, raw, reason)
        SELECT ?, s.line, CASE WHEN length(b.raw) > {MAX_RAW}
                               THEN left(b.raw, {MAX_RAW}) || '…[truncated]'
                               ELSE rtrim(b.raw, E'\r\n') END, s.reason
        FROM ingest_stage s JOIN ingest_batch b USING (line)
        WHERE s.reason IS NOT NULL
        """,
        [source],
    )
    ok, skipped = con.execute(
        "SELECT count(*) FILTER (WHERE reason IS NULL AND NOT skipped), "
        "count(*) FILTER (WHERE skipped) FROM ingest_stage"
    ).fetchall()[0]
    out.reasons.update(
        dict(
            con.execute(
                "SELECT reason, count(*) FROM ingest_stage WHERE reason IS NOT NULL GROUP BY reason"
            ).fetchall()
        )
    )
    out.ingested, out.duplicates, out.skipped = inserted, ok - inserted, skipped
    for name in ("ingest_batch", "ingest_too_deep"):
        con.unregister(name)
    return out


def load_lines(
    con: duckdb.DuckDBPyConnection, lines: Iterable[str | bytes], source: str
) -> IngestSummary:
    """Store event lines handed over in-process (sinks, exporters, tests), in one transaction."""
    parts = [
        (line if isinstance(line, bytes) else line.encode("utf-8")).rstrip(b"\n") for line in lines
    ]
    data = b"\n".join(parts) + b"\n" if parts else b""
    return _in_transaction(con, lambda strict: _load_batch(con, source, 1, data, strict=strict))


Progress = Callable[[int], None]


TAIL_GRACE_S = 600.0
UNFINISHED = "unfinished last line (the file stopped changing before its end)"


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    path: str,
    advance: Progress,
    notify: Callable[[str], None],
    tail_grace_s: float,
) -> IngestSummary:
    summary = IngestSummary(files=1)
    resume = sources.plan_resume(con, path)
    key = sources.source_key(path)
    if resume.unchanged:
        summary.unchanged_files = 1
        advance(Path(path).stat().st_size)
        return summary
    if resume.offset:
        advance(resume.offset)
    if resume.restarted:
        notify(f"{path} changed since it was last ingested; reading it again from the start")
    # Lines begun so far; where the last one was taken before its newline (it was complete
    # JSON), what follows continues it and keeps its number.
    offset, lines, continues = resume.offset, resume.lines, resume.continues

    def store_chunk(chunk: sources.Chunk, first_line: int, strict: bool) -> IngestSummary:
        if resume.restarted and first_line == 1:
            con.execute("DELETE FROM rejected_events WHERE source = ?", [key])
        batch = _load_batch(con, key, first_line, chunk.data, strict=strict)
        # A chunk of white space alone (no newline) begins, or continues, one line.
        sources.remember(con, path, chunk.end_offset, first_line - 1 + max(batch.lines, 1))
        return batch

    for chunk in sources.read_chunks(path, resume):
        first = lines if continues else lines + 1
        batch = _in_transaction(con, partial(store_chunk, chunk, first))
        summary.add(batch)
        lines, continues = first - 1 + max(batch.lines, 1), chunk.unterminated
        offset = chunk.end_offset
        advance(chunk.nbytes)
    tail = sources.pending_tail(path, offset)
    if tail:
        line = lines if continues else lines + 1
        if b"\n" not in tail and sources.unchanged_for(path) >= tail_grace_s:
            # Its writer is gone: a line it will never finish is a reject, not a wait.
            con.execute("BEGIN")
            _reject(con, key, [(line, tail.decode("utf-8", "backslashreplace"), UNFINISHED, None)])
            sources.remember(con, path, offset + len(tail), line)
            con.execute("COMMIT")
            summary.reasons[UNFINISHED] += 1
        else:
            summary.pending_lines = 1
            notify(
                f"{path}: last line is incomplete (still being written?); left for the next "
                f"ingest, rejected once the file has not changed for {tail_grace_s:g} s"
            )
    return summary


def files_to_read(
    paths: list[str], total: IngestSummary, notify: Callable[[str], None]
) -> list[str]:
    """``sources.discover`` for an ingest: the folder entries it cannot read are named through
    ``notify`` and counted on ``total``, and so are the spool files still being written."""

    def skip(path: str, why: str) -> None:
        notify(f"skipped {path}: {why}")
        total.skipped_entries += 1

    def writing(_path: str) -> None:
        total.writing_files += 1

    return sources.discover([str(p) for p in paths], skip, writing)


def ingest(
    con: duckdb.DuckDBPyConnection,
    paths: list[str],
    *,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
    tail_grace_s: float = TAIL_GRACE_S,
) -> IngestSummary:
    """Ingest files, folders (recursively: *.jsonl, *.log, *.json) and '-' (stdin).

    Re-ingesting is a no-op; a file that grew loads only its new lines; bad lines are kept in
    ``rejected_events`` with their reason and the ingest goes on. A folder entry that is not
    a regular file is named through ``notify`` and counted, a spool file still being written
    counted (``writing_files``) and left for a later ingest. An incomplete last line waits
    for its writer, and is rejected once its file has not changed for ``tail_grace_s``.
    """
    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    total = IngestSummary()
    files = files_to_read(paths, total, notify)
    sizes = [0 if p == sources.STDIN else Path(p).stat().st_size for p in files]
    bar = _progress_bar(sum(sizes)) if progress else None
    with bar or nullcontext():
        task = bar.add_task("ingesting", total=sum(sizes)) if bar else None
        for path in files:
            if bar:
                bar.update(task, description=Path(path).name[-30:])

            def advance(n: int) -> None:
                if bar:
                    bar.advance(task, n)

            try:
                total.add(_ingest_one(con, path, advance, notify, tail_grace_s))
            except duckdb.Error as exc:
                # Bad lines are rejected, not raised: this is the store or a bug. Name the file.
                raise AuditError(f"{path}: not ingested: {error_line(exc)}") from exc
    return total


def _progress_bar(total_bytes: int):
    """A bar on a terminal for inputs large enough to wait for; nothing otherwise."""
    if total_bytes < 8 * 1024 * 1024 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )

"""Where lines come from: files, folders of them, stdin; and resuming files that grew.

A file is read in large blocks and cut at line ends. The store remembers how far each file
was consumed (bytes and lines) with fingerprints of its head and of the bytes before that
point; a file that only grew since is read from there, one that was rewritten is read again
from the start (event ids keep that idempotent). Where the consumed part ends inside a line
(a last line taken before its newline), what follows continues that line and its number.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import orjson

from audit.errors import AuditError
from collectors.store import CONNECTION_CONFIG

PATTERNS = ("*.jsonl", "*.log", "*.json")
BLOCK = 256 * 1024 * 1024  # fewer, larger batches: each one pays a de-duplication join
_HEAD = 64 * 1024
_TAIL = 4 * 1024
STDIN = "-"
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, which some editors put first


@dataclass
class Chunk:
    data: bytes | memoryview  # complete lines, each ending in a newline
    end_offset: int  # file position once this chunk is stored
    nbytes: int  # bytes of the file this chunk covers (for progress)
    unterminated: bool = False  # the chunk ends inside its last line (taken without newline)


@dataclass
class Resume:
    offset: int = 0
    lines: int = 0  # lines begun in the bytes consumed so far
    unchanged: bool = False
    restarted: bool = False  # the file changed under us: read it all again
    continues: bool = False  # the consumed bytes end inside line ``lines``


def _not_a_file(path: Path) -> str | None:
    """Why an entry of a folder is not read (None: a regular file, or a folder to search)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a broken symbolic link"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


def discover(
    paths: list[str],
    skip: Callable[[str, str], None] | None = None,
    writing: Callable[[str], None] | None = None,
) -> list[str]:
    """Expand folders (recursively) into their event files; keep '-' for stdin.

    In a folder, an entry with an event file's name that cannot be read as a file (a FIFO,
    which would block the ingest, a device, a broken symbolic link) is passed to
    ``skip(path, why)``; reading on without it would leave the user guessing. So is, to
    ``writing(path)``, a spool file a live writer still holds (``*.jsonl.part``): its events
    are not read until the writer seals it, which an ingest just after sending would
    otherwise not explain."""
    found: list[str] = []
    for raw in paths:
        if raw == STDIN:
            found.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            # Imported here: the spool brings the emitter's modules (~20 ms), which a file's
            # ingest does without.
            from collectors.spool import held_parts, seal_abandoned

            seal_abandoned(path)  # spool files of dead writers become *.jsonl first
            if writing is not None:
                for part in held_parts(path):  # what is left is held by live writers
                    writing(str(part))
            entries = sorted({p for pat in PATTERNS for p in path.rglob(pat)})
            for entry in entries:
                why = _not_a_file(entry)
                if why is None:
                    if entry.is_file():
                        found.append(str(entry))
                elif skip is not None:
                    skip(str(entry), why)
        elif path.is_file():
            found.append(str(path))
        else:
            raise not_a_file_or_folder(raw)
    return found


def not_a_file_or_folder(raw: str | os.PathLike) -> AuditError:
    """The error for a path given that is neither a regular file nor a folder."""
    what = "not a regular file or folder" if Path(raw).exists() else "no such file or folder"
    return AuditError(f"{what}: {raw}")


def source_key(path: str) -> str:
    return STDIN if path == STDIN else str(Path(path).resolve())


def _md5_range(f: BinaryIO, start: int, end: int) -> str:
    f.seek(start)
    return hashlib.md5(f.read(max(0, end - start))).hexdigest()


def fingerprints(path: str, size: int) -> tuple[str, str]:
    with open(path, "rb") as f:
        return _md5_range(f, 0, min(size, _HEAD)), _md5_range(f, max(0, size - _TAIL), size)


def plan_resume(con: duckdb.DuckDBPyConnection, path: str) -> Resume:
    if path == STDIN:
        return Resume()
    row = con.execute(
        "SELECT size, lines, head_md5, tail_md5 FROM ingested_files WHERE path = ?",
        [source_key(path)],
    ).fetchall()
    if not row:
        return Resume()
    size, lines, head, tail = row[0]
    current = os.path.getsize(path)
    if current >= size and fingerprints(path, size) == (head, tail):
        return Resume(
            offset=size,
            lines=lines,
            unchanged=current == size,
            continues=lines > 0 and _last_byte(path, size) != b"\n",
        )
    return Resume(restarted=True)


def _last_byte(path: str, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, end - 1))
        return f.read(1)


def remember(con: duckdb.DuckDBPyConnection, path: str, offset: int, lines: int) -> None:
    if path == STDIN:
        return
    head, tail = fingerprints(path, offset)
    con.execute(
        "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, current_timestamp)",
        [source_key(path), offset, lines, head, tail],
    )


def _is_complete_json(tail: bytes) -> bool:
    try:
        orjson.loads(tail)
    except orjson.JSONDecodeError:
        return False
    return True


def read_chunks(path: str, resume: Resume) -> Iterator[Chunk]:
    """Complete lines from ``resume.offset`` on, in blocks.

    A last line without a newline is taken only if it is complete JSON (a writer may be in
    the middle of it); otherwise it is left for the next ingest. A byte order mark before
    the first line is not part of it.
    """
    is_stdin = path == STDIN
    f = sys.stdin.buffer if is_stdin else open(path, "rb")  # noqa: SIM115 - closed below
    try:
        if path.endswith(".json") and not is_stdin:
            whole = _one_json_value(f, path)
            if whole is not None:
                yield whole
                return
        offset, carry = resume.offset, b""
        if offset == 0:
            head = f.read(len(BOM))
            if head == BOM:
                offset = len(BOM)
            elif is_stdin:
                carry = head  # stdin cannot seek back; a file can, without a copy
        if not is_stdin:
            f.seek(offset)
        while True:
            want = BLOCK
            if not is_stdin:
                # What is left, if that is at most a block and a quarter: a short last piece
                # joins the block rather than pay a batch's fixed costs on its own.
                rest = os.fstat(f.fileno()).st_size - f.tell()
                want = rest if rest <= BLOCK + BLOCK // 4 else BLOCK
            block = f.read(want)
            eof = not block
            data = carry + block  # no copy while nothing is carried
            added_newline = False
            if eof:
                if not data.strip():  # nothing but white space after the last line
                    if data:
                        yield Chunk(b"", offset + len(data), len(data), unterminated=True)
                    break
                if not (is_stdin or _is_complete_json(data)):
                    break  # a line still being written: leave it for next time
                data += b"\n"
                added_newline = True
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            # A view, not a slice: slicing would copy the whole block once more.
            complete, carry = memoryview(data)[: cut + 1], data[cut + 1 :]
            offset += len(complete) - added_newline
            yield Chunk(complete, offset, len(complete), unterminated=added_newline)
            if eof:
                break
    finally:
        if not is_stdin:
            f.close()


def _one_json_value(f: BinaryIO, path: str) -> Chunk | None:
    """A .json file holding one array of events (each element counts as a line), or one
    event (or several) pretty-printed; None for anything else, such as JSON Lines, which
    are read as lines.

    The elements are taken as written, not parsed and written out again: DuckDB's
    `read_json_objects` hands back each value's own text, so a key given twice, an integer
    beyond 64 bits or NaN meet the ingest's rules (collectors/rules.py) as they would on a
    line, where a parser would have settled them first (the last key kept, the integer made
    a float). Line breaks between tokens become spaces; inside a string there are none (the
    reader refuses them). A file the reader refuses is read as lines, each line judged."""
    head = f.read(64).removeprefix(BOM).lstrip()
    f.seek(0)
    if head.startswith(b"["):
        layout = "array"
    elif head.startswith(b"{"):
        first = f.readline(_HEAD)
        f.seek(0)
        if first.endswith(b"\n") and _is_complete_json(first.removeprefix(BOM)):
            return None  # JSON Lines: read as lines, numbered as the file's lines
        layout = "unstructured"  # values that span lines
    else:
        return None
    size = os.fstat(f.fileno()).st_size
    reader = duckdb.connect(config=CONNECTION_CONFIG)  # in memory, only to read the file
    try:
        with _no_glob(path) as plain:
            values = reader.execute(
                "SELECT json FROM read_json_objects(?, format := ?, maximum_object_size := ?)",
                [plain, layout, size + 1],
            ).fetchall()
    except duckdb.Error:
        return None
    finally:
        reader.close()
    lines = b"".join(
        text.replace("\n", " ").replace("\r", " ").encode() + b"\n" for (text,) in values
    )
    return Chunk(lines, size, size)


@contextmanager
def _no_glob(path: str) -> Iterator[str]:
    """``path``, or a name for the same file that DuckDB will not read as a pattern: its
    readers expand `*`, `?` and `[…]`, so `ev[1].json` would read `ev1.json` instead."""
    if not any(c in path for c in "*?["):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="audit-json-") as folder:
        plain = os.path.join(folder, "file.json")
        os.symlink(os.path.abspath(path), plain)
        yield plain


def pending_tail(path: str, offset: int) -> bytes:
    """The bytes after ``offset`` that were left unread (an incomplete last line), if any."""
    if path == STDIN or os.path.getsize(path) <= offset:
        return b""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read()


def unchanged_for(path: str) -> float:
    """Seconds since the file was last written."""
    return time.time() - os.stat(path).st_mtime

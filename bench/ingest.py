"""Ingest speed: `audit ingest` against a bare DuckDB read_json of the same file.

Generates a JSONL file of N field-transition events (DuckDB writes it), ingests it with the
real CLI into a fresh store (validation, canonical values and de-duplication on), then loads
the same file with a bare `read_json` into an untyped table, and prints both rates and the
ratio (target: ours >= 50 % of bare; aim 80 %). A second `audit ingest` of the same file
shows the cost of the no-op re-ingest. Copies with bad lines show what they cost: one
malformed line halfway (the strict parse fails there), 1 % of the lines cut short (a
writer killed mid-line), and 1 % cut short and continued by the next line on the same line
(two writers interleaved: it looks whole, '{...{...}'). Bad lines should cost in
proportion to their number, not to the batches they sit in.

Shared machines drift by ±15 % within a minute, so one pair of runs can land either side of
a target. The two are run alternately, --rounds times, each into a fresh database; every
round is printed, and the median ratio is the figure to quote.

    python bench/ingest.py [--events 1000000] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from collectors import allocator  # noqa: E402

# The bare read_json runs in this process: with the allocator setting `audit ingest` runs
# with (collectors/allocator.py), set before DuckDB loads.
allocator.configure()
import duckdb  # noqa: E402

GENERATE = """
COPY (
    SELECT
        'field.transition' AS event,
        'e-' || i AS event_id,
        strftime(TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_milliseconds(i * 7),
                 '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
        'block-' || (i % 100000) AS entity,
        'block' AS entity_type,
        CASE WHEN i % 16 = 15 THEN 'indexingList'
             ELSE ['content', 'indexingList.0.status', 'title', 'version_note'][1 + i % 4] END
            AS field,
        CASE WHEN i % 16 = 15 THEN json_array(json_object('status', 'processing', 'n', i % 7))
             WHEN i % 4 = 1 THEN to_json(['processing', 'done', 'error'][1 + i % 3])
             WHEN i % 4 = 3 THEN to_json(i % 1000)
             ELSE to_json('text ' || (i * 31 % 9973)) END AS old,
        CASE WHEN i % 16 = 15 THEN json_array(json_object('status', 'done', 'n', i % 7))
             WHEN i % 4 = 1 THEN to_json(['done', 'error', 'processing'][1 + i % 3])
             WHEN i % 4 = 3 THEN to_json(i % 1000 + 1)
             ELSE to_json('text ' || (i * 37 % 9973)) END AS new,
        ['user', 'workflow', 'instantiation', 'polling_sync'][1 + i % 4] AS writer,
        'worker-' || (i % 13) AS actor,
        'w-' || (i // 2) AS write_id,
        (i // 100000) AS base_version,
        (i // 100000) + 1 AS version
    FROM range({n}) t(i)
) TO '{path}' (FORMAT json)
"""


def _bad_copies(jsonl: Path, work: Path) -> dict[str, Path]:
    """Copies of the file with bad lines, by what they show."""
    data = jsonl.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    one = work / "one-bad.jsonl"
    one.write_bytes(data[:half] + b'{"a": 1}{"b": 2}\n' + data[half:])
    lines = data.split(b"\n")[:-1]
    del data
    cut = [line[: len(line) // 2] if i % 100 == 50 else line for i, line in enumerate(lines)]
    truncated = work / "truncated.jsonl"
    truncated.write_bytes(b"\n".join(cut) + b"\n")
    joined = [
        line[: len(line) // 2] + lines[i + 1] if i % 100 == 50 and i + 1 < len(lines) else line
        for i, line in enumerate(lines)
    ]
    interleaved = work / "interleaved.jsonl"
    interleaved.write_bytes(b"\n".join(joined) + b"\n")
    return {
        "one malformed line halfway (looks whole)": one,
        "1 % of lines cut short": truncated,
        "1 % cut short and continued on the same line (look whole)": interleaved,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    jsonl = work / "events.jsonl"
    t0 = time.perf_counter()
    duckdb.connect().execute(GENERATE.format(n=args.events, path=jsonl))
    size_mb = jsonl.stat().st_size / 1e6
    print(f"generated {args.events:,} events, {size_mb:.0f} MB in {time.perf_counter() - t0:.1f} s")

    audit = Path(sys.executable).with_name("audit")
    db, bare_db = work / "bench.duckdb", work / "bare.duckdb"
    # The CLI of the tree this script is in, whichever checkout the interpreter installed.
    tree = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "AUDIT_DB": str(db), "PYTHONPATH": path}

    def run_ingest(path: Path = jsonl) -> float:
        t = time.perf_counter()
        subprocess.run(
            [str(audit), "ingest", str(path)], check=True, env=env, stdout=subprocess.DEVNULL
        )
        return time.perf_counter() - t

    def run_bare() -> float:
        t = time.perf_counter()
        bare = duckdb.connect(str(bare_db))
        bare.execute(
            f"CREATE TABLE raw AS SELECT * FROM read_json('{jsonl}', format='newline_delimited')"
        )
        bare.close()
        return time.perf_counter() - t

    n = args.events
    ratios, times, again, start, costs = [], [], 0.0, 0.0, {}
    for round_no in range(1, args.rounds + 1):
        for p in (db, bare_db):
            p.unlink(missing_ok=True)
        ours = run_ingest()
        times.append(ours)
        if round_no == 1:
            again = run_ingest()
            empty = work / "empty.jsonl"
            empty.touch()
            start = run_ingest(empty)  # the process, imports and store, without the work
            empty.unlink()
            con = duckdb.connect(str(db), read_only=True)
            stored = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
            con.close()
            assert stored == n, f"stored {stored} of {n}"
            bad_lines = _bad_copies(jsonl, work)
            for name, path in bad_lines.items():
                db.unlink(missing_ok=True)
                costs[name] = run_ingest(path)
                path.unlink()
            db.unlink()
        bare_s = run_bare()
        ratios.append(bare_s / ours)
        print(
            f"round {round_no}: audit ingest (CLI, validated, de-duplicated) {ours:5.2f} s "
            f"{n / ours:>9,.0f} events/s | bare read_json into an untyped table {bare_s:5.2f} s "
            f"{n / bare_s:>9,.0f} rows/s | ratio {bare_s / ours:.0%}"
        )
    print(
        f"ratio ours/bare: median {statistics.median(ratios):.0%} of the bare rate over "
        f"{len(ratios)} rounds (range {min(ratios):.0%}-{max(ratios):.0%}; "
        "target >= 50 %, aim 80 %)"
    )
    print(f"re-ingest of the unchanged file (no-op): {again:.2f} s")
    print(f"of each ingest, starting the CLI (an empty file's ingest): {start:.2f} s")
    clean = statistics.median(times)
    for name, seconds in costs.items():
        print(f"{name}: {seconds:.2f} s, {seconds / clean:.2f}x the clean file's {clean:.2f} s")
    if not args.keep:
        for p in (jsonl, db, bare_db):
            p.unlink(missing_ok=True)
        work.rmdir()
    else:
        print(f"kept {work}")


if __name__ == "__main__":
    main()

"""Benchmark: all detectors (`queries.runner.check`) against a bare LAG/LEAD scan.

Generates a store of N events (N/10 entities, four writers, three fields, half the entities
versioned) with DuckDB itself, with a known sprinkling of anomalies, then times in fresh
processes, on the same store and in the same run:

  bare   the floor: LAG/LEAD over (entity, field) feeding a real aggregate (a bare count(*)
         over a window subquery is optimised away)
  check  every detector, findings and messages included
  chdb   the same check on an embedded ClickHouse store (chdb) holding the same events,
         copied over as Arrow (skipped, and said so, without the clickhouse extra)

and prints seconds, the ratio check/bare, seconds per million events (cost must grow
linearly), the ratio chdb/DuckDB, each process's peak memory, and the check's system CPU
and page faults (what the allocator setting changes: collectors/allocator.py). A check in
several entity buckets also says where its time went (told through `check`'s progress): the
commit order (sort and lookup), the slowest detector, the others, the witness lookup, the
findings. Also checks that the planted anomalies are found, and that chdb finds as many of
each kind as DuckDB.

    python bench/detect.py                       # 1M and 10M events
    python bench/detect.py --events 1000000      # one size (repeatable)
    python bench/detect.py --events 100000000 --dir bench/data --no-chdb   # kept, reused
    python bench/detect.py --layout interleaved  # each entity's events spread over the store
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from collectors import allocator  # noqa: E402

# Before DuckDB loads: the check and the bare scan alike run with the allocator setting the
# CLI runs with (collectors/allocator.py); the measuring processes inherit it.
allocator.configure()

from planted_store import LAYOUTS, expected, generate, layout_problem  # noqa: E402

from collectors.store import memory_limit  # noqa: E402
from queries.runner import DETECTORS  # noqa: E402

BARE_SQL = """
SELECT sum(CASE WHEN prev_new IS DISTINCT FROM old THEN 1 ELSE 0 END), count(next_seq)
FROM (
    SELECT old, lag(new) OVER w AS prev_new, lead(seq) OVER w AS next_seq
    FROM events
    WINDOW w AS (PARTITION BY entity, field ORDER BY seq)
)
"""


def copy_to_chdb(duck: Path, folder: Path) -> float:
    """A chdb store holding the events of the DuckDB store ``duck``; seconds it took."""
    from collectors.store import open_store

    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    source = open_store(duck, read_only=True)
    target = open_store(f"chdb:{folder}")
    try:
        reader = source.sql("SELECT * FROM events ORDER BY seq").to_arrow_reader(500_000)
        for batch in reader:
            target.insert_arrow("events", pa.Table.from_batches([batch]))
    finally:
        target.close()
        source.close()
    return time.perf_counter() - started


def beside_duckdb(db: Path, chdb_dir: Path, duckdb_check: dict, repeat: int) -> str:
    """The check on a chdb copy of ``db``, as a line of figures beside DuckDB's."""
    copy_s = copy_to_chdb(db, chdb_dir)
    runs = [run_measure("chdb", f"chdb:{chdb_dir}") for _ in range(repeat)]
    shutil.rmtree(chdb_dir, ignore_errors=True)
    best = min(runs, key=lambda r: r["seconds"])
    same = best["found"] == duckdb_check["found"]
    line = (f"{'':>12}  chdb (copied in {copy_s:.1f} s): check {best['seconds']:.2f} s, "
            f"peak {best['peak_mb']:.0f} MB; chdb/DuckDB time "
            f"{best['seconds'] / duckdb_check['seconds']:.2f}x, peak "
            f"{best['peak_mb'] / duckdb_check['peak_mb']:.2f}x; findings per detector "
            f"{'the same' if same else 'DIFFERENT'}")
    if not same:
        line += f"\n  DuckDB {duckdb_check['found']}\n  chdb   {best['found']}"
    return line


def chdb_available() -> bool:
    try:
        import chdb  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return False
    return True


def peak_mb() -> float:
    """This process's peak resident memory, in MB. Linux's VmHWM counts this process alone;
    ru_maxrss also keeps what the parent held when it started this one, and the parent here
    generates the stores (and copies them into chdb) itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, db: str) -> dict:
    """Run one timed operation in this (fresh) process; print its figures as JSON."""
    from collectors.store import open_store
    from queries.runner import check, entity_buckets

    con = open_store(db, read_only=True)
    buckets = entity_buckets(con)  # what check will sort in (queries/runner.py)
    steps: list[float] = []  # when each step of the check ended (told where buckets > 1)
    started = time.perf_counter()
    if kind == "bare":
        con.execute(BARE_SQL).fetchall()
        found: dict[str, int] = {}
    else:
        findings = check(con, progress=lambda done, total: steps.append(time.perf_counter()))
        found = {}
        for f in findings:
            found[f.detector] = found.get(f.detector, 0) + 1
    ended = time.perf_counter()
    con.close()
    # the whole process's: what the allocator setting changes (collectors/allocator.py)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"seconds": ended - started, "peak_mb": peak_mb(), "found": found,
               "buckets": buckets, "system_s": usage.ru_stime, "faults": usage.ru_minflt}
    if steps:
        # the sort's steps, then one per detector, then the witnesses' lookup
        ends = [started, *steps[buckets - 1:], ended]
        names = ["commit order", *DETECTORS, "witnesses", "findings"]
        figures["split"] = {
            n: b - a for n, a, b in zip(names, ends[:-1], ends[1:], strict=True)
        }
    return figures


def split_text(figures: dict) -> str:
    """Where a check's time went, when it told (a check in several buckets)."""
    split = figures.get("split")
    if not split:
        return ""
    worst = max(DETECTORS, key=split.__getitem__)
    others = sum(split[n] for n in DETECTORS if n != worst)
    return (f" (commit order {split['commit order']:.2f} s, {worst} {split[worst]:.2f} s, "
            f"other detectors {others:.2f} s, witnesses {split['witnesses']:.2f} s, "
            f"findings {split['findings']:.2f} s)")


def run_measure(kind: str, db: Path | str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--db", str(db)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append",
                        help="events in the store (repeatable; default 1M and 10M)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each (best kept)")
    parser.add_argument("--dir", type=Path,
                        help="where to keep the stores, reused when present (default: temp)")
    parser.add_argument("--no-chdb", action="store_true", help="DuckDB only")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="clustered",
                        help="where an entity's events lie in the store (default: clustered, "
                             "one after another; interleaved: spread over all of it)")
    parser.add_argument("--measure", choices=["bare", "check", "chdb"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return
    sizes = args.events or [1_000_000, 10_000_000]
    problem = next(filter(None, (layout_problem(n, args.layout) for n in sizes)), None)
    if problem:
        parser.error(problem)
    with_chdb = not args.no_chdb and chdb_available()
    if not with_chdb and not args.no_chdb:
        print("chdb: not measured (install the clickhouse extra)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in sizes:
            name = f"detect-{n}" if args.layout == "clustered" else f"detect-{args.layout}-{n}"
            db = folder / f"{name}.duckdb"
            gen_s = 0.0 if args.dir and db.exists() else generate(db, n, args.layout)
            bare = min((run_measure("bare", db) for _ in range(args.repeat)),
                       key=lambda r: r["seconds"])
            checks = [run_measure("check", db) for _ in range(args.repeat)]
            best = min(checks, key=lambda r: r["seconds"])
            entities = n // 10
            planted = expected(n)
            ok = best["found"] == planted
            rows.append((n, gen_s, bare, best, ok))
            made = f"generated in {gen_s:.1f} s" if gen_s else "store reused"
            print(f"{n:>12,} events ({entities:,} entities, {args.layout}, {made}): "
                  f"bare scan {bare['seconds']:.2f} s, peak {bare['peak_mb']:.0f} MB; "
                  f"check {best['seconds']:.2f} s{split_text(best)}, "
                  f"peak {best['peak_mb']:.0f} MB, system CPU {best['system_s']:.1f} s, "
                  f"{best['faults'] / 1e6:.2f}M page faults "
                  f"({best['buckets']} entity bucket{'s' if best['buckets'] > 1 else ''}); "
                  f"ratio {best['seconds'] / bare['seconds']:.2f}x; "
                  f"check {best['seconds'] / (n / 1e6):.3f} s per million events; "
                  f"planted anomalies {'all found' if ok else 'MISMATCH'}", flush=True)
            if not ok:
                print(f"  expected {planted}\n  found    {best['found']}", flush=True)
            if with_chdb:
                print(beside_duckdb(db, folder / f"{name}.chdb", best, args.repeat),
                      flush=True)
            if not args.dir:
                db.unlink(missing_ok=True)
        if len(rows) > 1:
            (n0, _, _, c0, _), (n1, _, _, c1, _) = rows[0], rows[-1]
            growth = (c1["seconds"] / c0["seconds"]) / (n1 / n0)
            print(f"check time grew {c1['seconds'] / c0['seconds']:.1f}x for {n1 / n0:.0f}x "
                  f"the events ({growth:.2f} of linear)")
        print(f"(threads: DuckDB default on {os.cpu_count()} cores; memory limit "
              f"{memory_limit()})")


if __name__ == "__main__":
    main()

"""Benchmark: how long `audit check` keeps the store from a concurrent `audit ingest`, read in
place against read from a snapshot copied into memory first.

DuckDB lets one process open a store file at a time: while a check reads it, an ingest
waits (up to its --wait). A snapshot (attach the file read-only, copy the applied events
into an in-memory database, release the file, then check) would hold the file only for the
copy. This prints, for each way, in fresh processes on the same store: how long the file is
held, the whole run, and the peak memory, so the choice in README ("Finding anomalies") can
be checked on any machine.

    python bench/snapshot.py                     # 1M events
    python bench/snapshot.py --events 10000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.detect import generate, peak_mb  # noqa: E402 - after the path set-up above


def measure(kind: str, db: str) -> dict:
    """One check in this (fresh) process; the figures as a dict."""
    from collectors.store import connect, open_store
    from queries.runner import check

    started = time.perf_counter()
    if kind == "in place":
        con = open_store(db, read_only=True)
        findings = check(con)
        con.close()
        held = time.perf_counter() - started
    else:
        con = connect(":memory:")
        quoted = db.replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS store (READ_ONLY)")
        con.execute("CREATE TABLE events AS SELECT * FROM store.applied_events")
        con.execute("DETACH store")
        held = time.perf_counter() - started
        con.execute("CREATE VIEW applied_events AS SELECT * FROM events")
        findings = check(con)
        con.close()
    return {
        "held_s": held,
        "total_s": time.perf_counter() - started,
        "peak_mb": peak_mb(),
        "findings": len(findings),
    }


def run_measure(kind: str, db: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--db", str(db)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        print(f"generating {args.events:,} events …", flush=True)
        generate(db, args.events)
        rows = {"in place": [], "snapshot": []}
        for _ in range(args.rounds):  # alternate, so that machine noise hits both alike
            for kind, figures in rows.items():
                figures.append(run_measure(kind, db))
    print(f"{'':10} {'store held':>11} {'whole run':>10} {'peak MB':>8}   (median of "
          f"{args.rounds}, fresh processes)")
    median = {}
    for kind, figures in rows.items():
        mid = {k: sorted(f[k] for f in figures)[len(figures) // 2] for k in figures[0]}
        median[kind] = mid
        print(f"{kind:10} {mid['held_s']:10.2f}s {mid['total_s']:9.2f}s {mid['peak_mb']:8.0f}")
    place, snap = median["in place"], median["snapshot"]
    assert place["findings"] == snap["findings"], "the snapshot must find the same"
    print(f"snapshot: store held {snap['held_s'] / place['held_s']:.2f}× as long, whole run "
          f"{snap['total_s'] / place['total_s']:.2f}×, "
          f"+{snap['peak_mb'] - place['peak_mb']:.0f} MB peak")


if __name__ == "__main__":
    main()

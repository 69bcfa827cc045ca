"""Benchmark: findings per 100k events on a busy but correct system.

The workload is the test suite's (tests/queries/busy_histories.py): every writer owns its
fields and writes from the latest state, the workflow re-runs blocks within seconds, a
poller echoes the status it just read (stale, but the same value), a heartbeat writes
blind; half the blocks versioned. Nothing there is a conflict except the poller's stale
read, so the only findings it may draw are chain breaks and converging lost updates
(warnings). Prints, per detector and severity, the findings per 100k events, and the
time of the check.

    python bench/precision.py                 # 3000 blocks, about 100k events
    python bench/precision.py --blocks 400    # the size of the test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests" / "queries"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from busy_histories import busy_history  # noqa: E402

from collectors.ingest import ingest  # noqa: E402
from collectors.store import open_store  # noqa: E402
from queries.runner import DETECTORS, check  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=3000, help="blocks in the workload")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    events = busy_history(blocks=args.blocks, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        lines = Path(tmp) / "busy.jsonl"
        lines.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        con = open_store(Path(tmp) / "busy.duckdb")
        try:
            ingest(con, [str(lines)])
            started = time.perf_counter()
            findings = check(con)
            seconds = time.perf_counter() - started
        finally:
            con.close()
    per = 100_000 / len(events)
    counts = Counter((f.detector, f.severity) for f in findings)
    echoes = sum(1 for e in events if e["writer"] == "polling_sync")
    print(f"{len(events):,} events on {args.blocks:,} blocks ({echoes:,} stale echoes), "
          f"checked in {seconds:.2f} s; findings per 100k events:")
    for detector in DETECTORS:
        row = {sev: counts.get((detector, sev), 0) for sev in ("error", "warning")}
        print(f"  {detector:<20} error {row['error'] * per:>8.1f}   "
              f"warning {row['warning'] * per:>8.1f}")
    errors = sum(n for (_, sev), n in counts.items() if sev == "error")
    conflicts = sum(n for (d, _), n in counts.items()
                    if d in ("oscillation", "priority_inversion", "stale_overwrite",
                             "version_conflict"))
    print(f"errors {errors * per:.1f}, conflicts (oscillation, priority_inversion, "
          f"stale_overwrite, version_conflict) {conflicts * per:.1f} per 100k events")


if __name__ == "__main__":
    main()

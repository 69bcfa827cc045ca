"""What the PostgreSQL capture trigger costs a writer: UPDATE throughput with and without it.

One table of 100 rows, each holding a 20-key jsonb document; every UPDATE changes one key
of one row (goal: with the trigger, >= 50 % of the bare rate). Rounds alternate bare and
captured on the same table (the trigger installed and removed between them) and the ratio
is the median of the per-round ratios. Beside the rates, the CPU time the server process
spent per UPDATE (read from /proc when the server runs on this machine): on a shared
machine the rates swing with the load, the CPU time much less. Three ways to write:

  client     one autocommit UPDATE per round trip from Python (psycopg, prepared): what an
             application sees
  versioned  the same, also moving a version column (installed with --version-column)
  server     a loop on the server committing each UPDATE: no client, so the trigger's own
             cost stands alone (the hardest ratio)

Last, `audit pg pull` of what the captured rounds stored (into an in-memory store): the
diff runs there now, so its rate is the other half of the cost.

The server is started here (initdb/pg_ctl, as the tests do, fsync off: commits are cheap, so
the trigger's share is larger than on a durable server), or given with --dsn (a database
the bench may create tables in). Prints figures and ratios; no assertions.

    python bench/pg.py [--updates 5000] [--rounds 5] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402
from pg_server import bindir, temporary_server  # noqa: E402

from collectors.pg import install, pull, uninstall  # noqa: E402
from collectors.store import open_store  # noqa: E402

ROWS, KEYS = 100, 20


def document(row: int) -> str:
    return json.dumps({f"k{k:02d}": f"value {row}-{k}" if k % 2 else row * k
                       for k in range(KEYS)})


def setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_docs")
        conn.execute("CREATE TABLE bench_docs (id int PRIMARY KEY, doc jsonb NOT NULL, "
                     "version int NOT NULL DEFAULT 1)")
        for row in range(ROWS):
            conn.execute("INSERT INTO bench_docs (id, doc) VALUES (%s, %s)", [row, document(row)])


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process on this machine, None when it is elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(conn: psycopg.Connection, updates: int, work) -> tuple[float, float | None]:
    """(updates per second, server CPU microseconds per update or None) of ``work()``."""
    pid = conn.info.backend_pid
    cpu, started = _cpu_seconds(pid), time.perf_counter()
    work()
    elapsed, cpu_after = time.perf_counter() - started, _cpu_seconds(pid)
    per_update = None if cpu is None else (cpu_after - cpu) / updates * 1e6
    return updates / elapsed, per_update


def client_round(dsn: str, updates: int, versioned: bool) -> tuple[float, float | None]:
    """One autocommit statement per round trip."""
    bump = ", version = version + 1" if versioned else ""
    query = f"UPDATE bench_docs SET doc = jsonb_set(doc, '{{k07}}', %s){bump} WHERE id = %s"
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        def work() -> None:
            for i in range(updates):
                conn.execute(query, [str(i), i % ROWS])

        return _timed(conn, updates, work)


def server_round(dsn: str, updates: int, _versioned: bool) -> tuple[float, float | None]:
    """One server-side loop, a transaction per UPDATE (DO may COMMIT outside a transaction)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return _timed(conn, updates, lambda: conn.execute(
            f"DO $$ BEGIN FOR i IN 1..{updates} LOOP UPDATE bench_docs SET doc = "
            f"jsonb_set(doc, '{{k07}}', to_jsonb(i)) WHERE id = i % {ROWS}; COMMIT; "
            "END LOOP; END $$"))


def tidy(dsn: str) -> None:
    """The same starting point for every round: no dead rows, an empty capture table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM bench_docs")
        if conn.execute("SELECT to_regclass('conflict_audit.row_changes')").fetchone()[0]:
            conn.execute("TRUNCATE conflict_audit.row_changes")


def measure(dsn: str, name: str, run, updates: int, rounds: int, versioned: bool) -> float:
    bare, captured, ratios = [], [], []
    run(dsn, min(updates, 500), versioned)  # warm-up: caches, plans
    for _ in range(rounds):
        uninstall(dsn, "bench_docs")
        tidy(dsn)
        bare.append(run(dsn, updates, versioned))
        install(dsn, "bench_docs", version_column="version" if versioned else None)
        tidy(dsn)
        captured.append(run(dsn, updates, versioned))
        ratios.append(captured[-1][0] / bare[-1][0])
    with psycopg.connect(dsn) as conn:
        (changes,) = conn.execute("SELECT count(*) FROM conflict_audit.row_changes").fetchone()
    ratio = statistics.median(ratios)
    print(f"{name:<10} bare {statistics.median(r for r, _ in bare):>8,.0f} updates/s   "
          f"captured {statistics.median(r for r, _ in captured):>8,.0f} updates/s   "
          f"ratio {ratio:.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)}; "
          f"{changes:,} row changes in the last round)")
    if bare[0][1] is not None:
        cpu_bare = statistics.median(c for _, c in bare)
        cpu_captured = statistics.median(c for _, c in captured)
        print(f"{'':<10} server CPU per UPDATE: bare {cpu_bare:.0f} us, captured "
              f"{cpu_captured:.0f} us (the trigger: {cpu_captured - cpu_bare:.0f} us)")
    return ratio


def pull_rate(dsn: str) -> None:
    """`audit pg pull` of the last round's row changes: the diff's side of the cost."""
    con = open_store(":memory:")
    started = time.perf_counter()
    summary = pull(dsn, con)
    elapsed = time.perf_counter() - started
    con.close()
    with psycopg.connect(dsn) as conn:
        (changes,) = conn.execute("SELECT count(*) FROM conflict_audit.row_changes").fetchone()
    print(f"pull       {changes:,} row changes -> {summary.ingested:,} events in {elapsed:.2f} s "
          f"({changes / elapsed:,.0f} row changes/s, store and all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000, help="UPDATEs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dsn", help="an existing database instead of a temporary server")
    args = parser.parse_args()
    if args.dsn is None and bindir() is None:
        sys.exit("error: no initdb found (install postgresql) and no --dsn given")
    server = temporary_server(bindir()) if args.dsn is None else nullcontext()
    with server as started:
        dsn = args.dsn or started.dsn()
        setup(dsn)
        print(f"{ROWS} rows of {KEYS}-key jsonb documents, one key changed per UPDATE; "
              f"{args.rounds} rounds of {args.updates:,} UPDATEs each way; fsync "
              f"{'off' if args.dsn is None else 'as the given server has it'}")
        ratios = [
            measure(dsn, "client", client_round, args.updates, args.rounds, False),
            measure(dsn, "versioned", client_round, args.updates, args.rounds, True),
            measure(dsn, "server", server_round, args.updates, args.rounds, False),
        ]
        print(f"goal: captured >= 50 % of bare for single-field updates: client {ratios[0]:.0%}"
              f" ({'met' if ratios[0] >= 0.5 else 'NOT met'})")
        pull_rate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE bench_docs")


if __name__ == "__main__":
    main()

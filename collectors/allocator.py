"""How long DuckDB's allocator keeps the memory it freed: set before DuckDB loads.

On 64-bit Linux DuckDB allocates through its own jemalloc (elsewhere through the system's,
and the setting below is ignored), built to hand freed pages back to the system within
about a second. A check frees and allocates again all the time (each entity range's
sort, then the lookups), so the same memory went back and was faulted in again: at 100M
events 4.2–4.4M page faults and 12–16 s of system CPU, against 1.5–1.6M and 4.2–5.5 s
when freed pages are kept for 30 s, at about the same peak (bench/detect.py; README, Speed).
Thirty seconds, not forever: `audit serve` runs for days, and what it freed still goes
back then.

jemalloc reads its options once, when the library loads, from `DUCKDB_JE_MALLOC_CONF`
(DuckDB's name for `MALLOC_CONF`): `configure` must run before the first `import duckdb`,
which is why this module imports nothing of DuckDB's. The command line calls it first
(frontends/cli); a program using the Python API may call it before importing anything else
of ours. A value the user set is left as it is.
"""

from __future__ import annotations

import os
import sys

ENV = "DUCKDB_JE_MALLOC_CONF"
SETTING = "dirty_decay_ms:30000,muzzy_decay_ms:30000"


def configure() -> bool:
    """Ask for `SETTING` unless DuckDB is loaded already or the user chose their own; whether
    it was set. Processes started from here inherit it."""
    if "duckdb" in sys.modules or ENV in os.environ:
        return False
    os.environ[ENV] = SETTING
    return True

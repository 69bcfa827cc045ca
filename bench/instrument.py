"""Instrumentation cost: what tracking adds to a write, and what the sinks can take.

1. The time added to a tracked write of a 53-leaf nested document with one changed field,
   spool sink on, OpenTelemetry off, against the bare function and against the same
   tracking with a DeepDiff-based diff (goal: <= 15 us median added); the same with the
   list's elements carrying ids, so that it is diffed by key (docs/diff.md), with exclude
   patterns configured, and inside an active OpenTelemetry SDK span (goal: <= 25 us), with
   and without span events.
2. Spool throughput with 8 writer processes (events/s, all of them sealed and countable):
   tracked writes, and events already built (the emission and the spool alone). Besides
   the rate, the writers' CPU time per event, which a shared machine disturbs less, and the
   rate it would give on the cores of this machine (goal: >= 200,000 events/s on 2 cores).
3. The in-process DuckDB sink's throughput (events/s until they are queryable).

Prints figures and ratios; no assertions.

    python bench/instrument.py [--writes 20000] [--procs 8] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import audit  # noqa: E402
import audit.track  # noqa: E402
from audit.diff import MISSING  # noqa: E402


def document(keyed: bool = False) -> dict:
    """A workflow block with 53 leaves, nested three deep; ``keyed``: the list's elements
    are named by an ``id`` instead of an ``index_name`` (same size), so it is keyed."""
    name = "id" if keyed else "index_name"
    return {
        "id": "block-A",
        "type": "text",
        "content": "hello world",
        "flags": {"pinned": True, "locked": False, "archived": None},
        "indexingList": [
            {"status": "processing", name: f"idx{i}", "chunks": i,
             "meta": {"k": i, "v": "x"}}
            for i in range(8)
        ],
        "edges": ["e1", "e2", "e3", "e4"],
        "position": {"x": 1.5, "y": 2.5},
        "updated_at": "2025-01-01T00:00:00Z",
    }


def leaves(value) -> int:
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaves(v) for v in value)
    return 1


def bare(block: dict, i: int) -> dict:
    block["indexingList"][3]["status"] = f"done-{i}"
    return block


def bare_two(block: dict, i: int) -> dict:
    """Two fields in two places: past the one-field shortcut (audit/leaf_diff.py), the
    full diff of the state before (audit/diff.py)."""
    block["indexingList"][3]["status"] = f"done-{i}"
    block["position"]["x"] = i
    return block


def deepdiff_diff(old, new, *, rules=None, booleans=True):
    """The same change list, computed by DeepDiff (what the hand-written walk replaces);
    positional lists, the stamp left out."""
    from deepdiff import DeepDiff

    out = []
    tree = DeepDiff(old, new, view="tree", zip_ordered_iterables=True,
                    threshold_to_diff_deeper=0, exclude_paths=["root['_meta']"])
    for report, levels in tree.items():
        for level in levels:
            path = ".".join(str(p) for p in level.path(output_format="list")) or "$"
            if report.endswith("_added"):
                out.append((path, "added", MISSING, level.t2))
            elif report.endswith("_removed"):
                out.append((path, "removed", level.t1, MISSING))
            else:
                out.append((path, "changed", level.t1, level.t2))
    return out


def per_call_us(fn, n: int, keyed: bool = False) -> list[float]:
    doc = document(keyed)
    times = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(n):
            t0 = clock()
            fn(doc, i)
            times.append((clock() - t0) / 1000)
    finally:
        gc.enable()
    return times


def _in_span(tracked, n: int) -> float:
    """Median per-call time of the tracked write inside an active, recording SDK span."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("bench")  # no exporter: only the span's own cost
    times: list[float] = []
    doc = document()
    clock = time.perf_counter_ns
    for start in range(0, n, 100):  # a span holds at most 128 events
        with tracer.start_as_current_span("write"):
            for i in range(start, min(start + 100, n)):
                t0 = clock()
                tracked(doc, i)
                times.append((clock() - t0) / 1000)
    return statistics.median(times)


def write_cost(n: int, spool_dir: Path) -> None:
    from collectors.spool import SpoolSink

    spool = SpoolSink(spool_dir)
    audit.configure(sink=spool, otel=False)
    tracked = audit.tracked(entity_type="block")(bare)
    print(f"1. tracked write of a {leaves(document())}-leaf document, one field changed, "
          f"spool on ({n} writes each, median of the per-call times)")
    with audit.writer("workflow", actor="bench"):
        per_call_us(tracked, min(n, 2000))  # warm up: imports, the structlog chain
        base = statistics.median(per_call_us(bare, n))
        ours = statistics.median(per_call_us(tracked, n))
        two = statistics.median(per_call_us(audit.tracked(entity_type="block")(bare_two), n))
        base_two = statistics.median(per_call_us(bare_two, n))
        real_diff, real_leaf = audit.track.diff, audit.track.leaf_change
        audit.track.diff, audit.track.leaf_change = deepdiff_diff, lambda *args: None
        try:
            dd = statistics.median(per_call_us(tracked, max(n // 10, 200)))
        finally:
            audit.track.diff, audit.track.leaf_change = real_diff, real_leaf
        noop = statistics.median(per_call_us(audit.tracked(lambda d, i: d), n))
        keyed = statistics.median(per_call_us(tracked, n, keyed=True))
        audit.configure(exclude=["*.position", "flags.archived", "indexingList[*].meta.v"])
        excluding = statistics.median(per_call_us(tracked, n, keyed=True))
        audit.configure(exclude=[], otel=True)
        otel_idle = statistics.median(per_call_us(tracked, n))
        otel_span = _in_span(tracked, n)
        audit.configure(span_events=True)
        span_events = _in_span(tracked, n)
        audit.configure(span_events=False)
    spool.close()
    added, dd_added = ours - base, dd - base
    print(f"   bare function            {base:9.2f} us")
    print(f"   tracked (ours)           {ours:9.2f} us   added {added:8.2f} us (goal <= 15)")
    print(f"   tracked, DeepDiff diff   {dd:9.2f} us   added {dd_added:8.2f} us "
          f"({dd_added / added:.0f}x ours)")
    print(f"   tracked, nothing changed {noop:9.2f} us   (no event, no stamp)")
    print(f"   tracked, two fields      {two:9.2f} us   added {two - base_two:8.2f} us "
          f"(two events; the full diff)")
    print(f"   tracked, list keyed by id{keyed:9.2f} us   added {keyed - base:8.2f} us "
          f"({keyed / ours:.2f}x ours)")
    print(f"   ... and 3 exclude patterns{excluding:8.2f} us   added {excluding - base:8.2f} us "
          f"({excluding / ours:.2f}x ours)")
    print(f"   tracked, OTel on, no span{otel_idle:9.2f} us   added {otel_idle - base:8.2f} us")
    print(f"   tracked, in an SDK span  {otel_span:9.2f} us   added {otel_span - base:8.2f} us "
          f"(the span's ids on the event; goal <= 25)")
    print(f"   ... with span events     {span_events:9.2f} us   added {span_events - base:8.2f} us "
          f"(configure(span_events=True): span.add_event too)")
    print(f"   events written: {audit.stats()['sinks']['spool']['sent']}, "
          f"dropped: {audit.stats()['sinks']['spool']['dropped']}")


def _spool_process(directory: str, writes: int, start, name: str, built: bool) -> None:
    from audit.emit import emit
    from collectors.spool import SpoolSink

    audit.configure(sink=SpoolSink(directory), otel=False)
    tracked = audit.tracked(entity_type="block")(bare)
    doc = document()
    doc["id"] = name
    change = [("indexingList.3.status", "changed", "processing", "done")]
    start.wait()
    with audit.writer(name):
        if built:  # what a write emits, without the diff: the emission and the spool alone
            for _ in range(writes):
                emit(audit.track.build_events(name, change, writer=name, entity_type="block"))
        else:
            for i in range(writes):
                tracked(doc, i)


def spool_throughput(procs: int, writes: int, directory: Path, built: bool) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    workers = [
        ctx.Process(target=_spool_process, args=(str(directory), writes, start, f"w{i}", built))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    start.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    files = list(directory.glob("*.jsonl"))
    lines = sum(f.read_bytes().count(b"\n") for f in files)
    expected = procs * writes
    cores = multiprocessing.cpu_count()
    what = "events already built" if built else "tracked writes"
    print(f"2{'b' if built else 'a'}. spool, {procs} writer processes x {writes} {what} "
          f"(one event each), on {cores} cores")
    print(f"   {lines / elapsed:12,.0f} events/s   ({lines:,} events in {len(files)} sealed "
          f"files, {elapsed:.2f} s; expected {expected:,}, "
          f"{'none lost' if lines == expected else f'{expected - lines} missing'})")
    # The writers' CPU time (process start and exit included) is what the machine's other
    # work disturbs least: the rate it gives on all cores is the capacity of the spool path.
    print(f"   writers' CPU {cpu / lines * 1e6:6.2f} us/event: {cores * lines / cpu:12,.0f} "
          f"events/s on {cores} free cores")


def duckdb_throughput(events: int, db: Path) -> None:
    from collectors.duckdb_sink import DuckDBSink

    sink = DuckDBSink(db)
    audit.configure(sink=sink, otel=False)
    tracked = audit.tracked(entity_type="block")(bare)
    doc = document()
    with audit.writer("workflow"):
        t0 = time.perf_counter()
        for i in range(events):
            tracked(doc, i)
        t_writes = time.perf_counter() - t0
        sink.flush(timeout=None)
        elapsed = time.perf_counter() - t0
    stored = audit.stats()["sinks"]["duckdb"]
    sink.close()
    print(f"3. in-process DuckDB sink, {events:,} tracked writes (one event each)")
    print(f"   {events / elapsed:12,.0f} events/s until queryable ({elapsed:.2f} s; the writes "
          f"themselves took {t_writes:.2f} s); stored {stored['sent']:,}, "
          f"dropped {stored['dropped']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=20000, help="timed writes per variant")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--proc-writes", type=int, default=25000)
    parser.add_argument("--duckdb-events", type=int, default=100000)
    parser.add_argument("--quick", action="store_true", help="a tenth of everything")
    args = parser.parse_args()
    if args.quick:
        args.writes, args.proc_writes, args.duckdb_events = (
            args.writes // 10, args.proc_writes // 10, args.duckdb_events // 10)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_cost(args.writes, tmp / "spool-1")
        audit.reset()
        spool_throughput(args.procs, args.proc_writes, tmp / "spool-n", built=False)
        spool_throughput(args.procs, args.proc_writes, tmp / "spool-b", built=True)
        duckdb_throughput(args.duckdb_events, tmp / "bench.duckdb")
        audit.reset()


if __name__ == "__main__":
    main()

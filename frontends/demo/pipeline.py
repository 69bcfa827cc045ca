"""The demo end to end: simulate, spool, ingest, check, score against the ground truth.

Each run (unsafe: the service as it is; safe: with the fix) has its own store, because the
two runs write the same blocks. Events take the path they would in production: the
instrumented store writes them to a per-process spool, the spool is ingested into DuckDB,
and the detectors run there. Nothing here reaches into the events to help the detectors.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

import audit
from audit.config import Config
from audit.errors import AuditError, first_line
from collectors.spool import SpoolSink
from collectors.store import connect, foreign_file
from frontends.demo.scoring import Score, score
from frontends.demo.simulation import Simulation, Workload, simulate
from queries.finding import Finding

MODES = ("unsafe", "safe")
DEFAULT_DB = Path("demo.duckdb")
DEMO_MARK = "demo"  # key in the store's meta table: this store was made by `audit demo`
WORKDIR_MARK = ".audit-demo"  # file in a run's work folder: the demo made it, may clear it
# The detectors whose findings can mean data was lost or contradicted: the demo shows their
# names in red and weighs them more when it picks the stretch of timeline to show.
SERIOUS = ("lost_update", "stale_overwrite", "version_conflict")


@dataclass(frozen=True)
class DemoOptions:
    workload: Workload = field(default_factory=Workload)
    db: Path = DEFAULT_DB
    modes: tuple[str, ...] = MODES
    config: Config = field(default_factory=Config)
    workdir: Path | None = None  # keep block files and spools here (default: temporary)
    html: bool = True

    def db_for(self, mode: str) -> Path:
        """The unsafe run (or the only run) uses ``db``; the safe one sits beside it."""
        if mode == self.modes[0]:
            return self.db
        return self.db.with_name(f"{self.db.stem}-{mode}{self.db.suffix or '.duckdb'}")


@dataclass
class RunResult:
    mode: str
    db: Path
    simulation: Simulation
    findings: list[Finding]
    scores: dict[str, Score]
    ingested: int
    rejected_lines: int
    html: Path | None = None
    worst_entity: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.scores.values())

    def found(self, detector: str) -> int:
        return self.scores[detector].found if detector in self.scores else 0

    @property
    def errors(self) -> int:
        """Findings of severity error: data lost or contradicted (a lost update whose
        writes left the same value is a warning)."""
        return sum(1 for f in self.findings if f.severity == "error")


@dataclass
class DemoResult:
    options: DemoOptions
    runs: list[RunResult]
    seconds: float = 0.0

    def run(self, mode: str) -> RunResult | None:
        return next((r for r in self.runs if r.mode == mode), None)


class Progress:
    """What the pipeline tells a display while it works; the default tells nobody."""

    def phase(self, mode: str, name: str) -> None:
        pass

    def tick(self, mode: str, fraction: float, saves: int) -> None:
        pass

    def done(self, run: RunResult) -> None:
        pass


def run_demo(options: DemoOptions, progress: Progress | None = None) -> DemoResult:
    """Run the workload once per mode in ``options.modes`` and audit each run."""
    progress = progress or Progress()
    prepare(options)
    started = time.perf_counter()
    own = tempfile.TemporaryDirectory(prefix="audit-demo-") if options.workdir is None else None
    workdir = Path(own.name) if own else options.workdir
    try:
        runs = [
            _run(mode, options, workdir / mode, progress) for mode in options.modes
        ]
    finally:
        if own:
            own.cleanup()
    return DemoResult(options, runs, time.perf_counter() - started)


def prepare(options: DemoOptions) -> None:
    """Check the options and clear the stores of an earlier demo; raises AuditError."""
    for mode in options.modes:
        if mode not in MODES:
            raise AuditError(f"unknown demo mode {mode!r}; choose from {', '.join(MODES)}")
        prepare_db(options.db_for(mode))
        if options.workdir is not None:
            folder = options.workdir / mode
            if folder.exists() and not (folder / WORKDIR_MARK).exists():
                raise AuditError(
                    f"{folder} exists and was not made by `audit demo`; refusing to clear it "
                    "(pass another --workdir)"
                )


def prepare_db(path: Path) -> None:
    """Start from an empty store, but never replace one the demo did not make."""
    if not path.parent.is_dir():
        raise AuditError(f"directory {path.parent} does not exist")
    if not path.exists():
        return
    why = foreign_file(path)
    if why is not None:
        raise AuditError(f"cannot replace {path}: {why}; pass another --db")
    try:
        con = connect(path, read_only=True)
    except duckdb.Error as exc:
        raise AuditError(
            f"cannot replace {path}: {first_line(exc)}; pass another --db"
        ) from None
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        ours = "meta" in tables and con.execute(
            "SELECT count(*) FROM meta WHERE key = ?", [DEMO_MARK]
        ).fetchall()[0][0]
    finally:
        con.close()
    if tables and not ours:
        raise AuditError(
            f"{path} exists and was not made by `audit demo`; refusing to replace it "
            "(pass another --db)"
        )
    path.unlink()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.unlink()


def _run(mode: str, options: DemoOptions, workdir: Path, progress: Progress) -> RunResult:
    from collectors.ingest import ingest
    from collectors.store import open_store
    from queries.history import owners, timeline
    from queries.runner import check

    if workdir.exists():
        shutil.rmtree(workdir)  # an earlier demo's (prepare checked the mark)
    spool_dir = workdir / "spool"
    spool_dir.mkdir(parents=True)
    (workdir / WORKDIR_MARK).touch()
    seconds: dict[str, float] = {}

    progress.phase(mode, "simulate")
    t = time.perf_counter()
    sim = _simulate_instrumented(
        mode, options, workdir / "blocks", spool_dir,
        lambda fraction, saves: progress.tick(mode, fraction, saves),
    )
    seconds["simulate"] = time.perf_counter() - t

    db = options.db_for(mode)
    con = open_store(db)
    try:
        progress.phase(mode, "ingest")
        t = time.perf_counter()
        summary = ingest(con, [str(spool_dir)])
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [DEMO_MARK, json.dumps({"mode": mode, "seed": options.workload.seed})],
        )
        seconds["ingest"] = time.perf_counter() - t

        progress.phase(mode, "check")
        t = time.perf_counter()
        findings = check(con, config=options.config)
        scores = score(findings, sim.truth.incidents())
        worst = worst_entity(findings)
        run = RunResult(
            mode, db, sim, findings, scores, summary.ingested, summary.rejected,
            worst_entity=worst,
            timeline=timeline(con, worst, config=options.config) if worst else [],
            owners=owners(con),
        )
        seconds["check"] = time.perf_counter() - t

        if options.html:
            progress.phase(mode, "report")
            t = time.perf_counter()
            run.html = _write_report(con, db, findings)
            seconds["report"] = time.perf_counter() - t
    finally:
        con.close()
    run.seconds = seconds
    progress.done(run)
    return run


def _simulate_instrumented(
    mode: str,
    options: DemoOptions,
    blocks_dir: Path,
    spool_dir: Path,
    tick: Callable[[float, int], None],
) -> Simulation:
    """Point the instrumentation at a spool for the length of one run, as a service would
    at start-up, and put the previous settings back afterwards."""
    sink = SpoolSink(spool_dir)
    previous = audit.configure()
    audit.configure(
        sink=sink, field_stamps=True, config=options.config, otel=False,
        processors=previous.processors,
    )
    try:
        return simulate(
            options.workload, blocks_dir, safe=mode == "safe", config=options.config, tick=tick
        )
    finally:
        audit.flush()
        sink.close()
        audit.configure(
            sink=list(previous.sinks), field_stamps=previous.field_stamps,
            config=previous.config, otel=previous.otel, processors=previous.processors,
        )


def worst_entity(findings: list[Finding]) -> str | None:
    """The entity with the most data-losing findings, severity error (then the most)."""
    if not findings:
        return None
    serious = Counter(f.entity for f in findings if f.severity == "error")
    total = Counter(f.entity for f in findings)
    return max(total, key=lambda e: (serious[e], total[e], e))


def _write_report(con: duckdb.DuckDBPyConnection, db: Path, findings: list[Finding]) -> Path:
    """The HTML report of the findings already in hand (running the detectors again would
    double the cost of a run)."""
    from frontends.report import build_report, write_html

    path = db.with_suffix(".html")
    write_html(build_report(con, findings, source=db.name), path)
    return path

"""`audit demo`: racing writers on a simulated workspace, audited, then fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from frontends.cli.options import ConfigOption


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        seed: Annotated[int, typer.Option(help="Seed of the writers' plans.")] = 7,
        duration: Annotated[
            float,
            typer.Option(min=0.05, max=600, help="Seconds the writers race, per run."),
        ] = 5.0,
        blocks: Annotated[
            int, typer.Option(min=1, max=10_000, help="Blocks in the workspace.")
        ] = 12,
        writers: Annotated[
            int,
            typer.Option(min=1, max=64,
                         help="Concurrent writers of each kind (workflow, instantiation, "
                              "polling_sync, user)."),
        ] = 1,
        safe: Annotated[
            bool, typer.Option("--safe", help="Only the run with the fix.")
        ] = False,
        unsafe_only: Annotated[
            bool, typer.Option("--unsafe-only", help="Only the run without the fix.")
        ] = False,
        db: Annotated[
            Path,
            typer.Option(
                "--db", dir_okay=False,
                help="Store for the (first) run; the safe run goes beside it as NAME-safe. "
                     "Replaced if the demo made it, refused otherwise. Not $AUDIT_DB: the "
                     "demo never touches your own store.",
            ),
        ] = Path("demo.duckdb"),
        config: ConfigOption = None,
        html: Annotated[
            bool, typer.Option("--html/--no-html", help="Write an HTML report per run.")
        ] = True,
        workdir: Annotated[
            Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option(
                "--workdir", file_okay=False,
                help="Keep the block files and event spools here (default: temporary).",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the scores as JSON instead.")
        ] = False,
    ) -> int:
        """Simulate racing writers, audit them, and show the fix.

        Four writers race over a workspace whose store saves whole documents (last write
        wins): a workflow engine streaming block updates, a template instantiation waiting
        for embeddings, a poller syncing external storage, a user editing. The store is
        instrumented; its events are spooled, ingested and checked, and the findings are
        scored against the ground truth the store kept itself. Then the same workload runs
        with compare-and-swap and writer priorities. Exit status 0 when the audit matched
        the ground truth exactly, 1 when it did not.
        """
        from audit.config import load_config
        from audit.errors import AuditError
        from frontends.demo import show
        from frontends.demo.pipeline import MODES, DemoOptions, prepare, run_demo
        from frontends.demo.simulation import Workload

        if safe and unsafe_only:
            raise AuditError("--safe and --unsafe-only exclude each other")
        modes = ("safe",) if safe else ("unsafe",) if unsafe_only else MODES
        options = DemoOptions(
            workload=Workload(seed=seed, duration=duration, blocks=blocks, writers=writers),
            db=db, modes=modes, config=load_config(config), workdir=workdir, html=html,
        )
        prepare(options)  # a bad --db is one line of error before anything is shown
        if as_json:
            result = run_demo(options)
            print(json.dumps(summary(result), indent=2))
        else:
            out = show.console()
            out.print(
                f"[bold]conflict-audit demo[/]: {4 * writers} writers race over {blocks} "
                f"blocks for {duration:g} s per run (seed {seed})"
            )
            progress = show.TerminalProgress(out)
            try:
                result = run_demo(options, progress)
            finally:
                progress.close()
            show.render(result, out)
        return 0 if all(run.exact for run in result.runs) else 1


def summary(result) -> dict:
    """The demo's outcome for scripts: per run, per detector, truth against findings."""
    return {
        "seconds": round(result.seconds, 3),
        "runs": [
            {
                "mode": run.mode,
                "db": str(run.db),
                "html": str(run.html) if run.html else None,
                "events": run.ingested,
                "stats": run.simulation.stats,
                "unseen_overwrites": len(run.simulation.truth.unseen_overwrites()),
                "hidden_by_forks": len(run.simulation.truth.hidden_by_forks()),
                "exact": run.exact,
                "worst_entity": run.worst_entity,
                "detectors": {
                    name: {
                        "truth": s.truth,
                        "found": s.found,
                        "correct": s.true_positives,
                        "false_positives": len(s.false_positives),
                        "missed": len(s.missed),
                    }
                    for name, s in run.scores.items()
                },
            }
            for run in result.runs
        ],
    }

"""`audit demo`: racing writers on a simulated workspace, audited end to end.

A small workspace service (blocks kept as JSON files, saved whole, last write wins) is
driven by four concurrent writers: a workflow engine streaming block updates, a template
instantiation uploading files and waiting for embeddings, a poller syncing external
storage, and a user editing content. The store is instrumented with the toolkit's public
API, as a user would instrument their own; independently of the events it also keeps the
ground truth of what happened, so the demo can score the detectors' findings against it.
The safe run does the same work with compare-and-swap and writer priorities, the fix.

    from frontends.demo import DemoOptions, Workload, run_demo
    result = run_demo(DemoOptions(workload=Workload(seed=7, duration=2.0)))
    assert all(run.exact for run in result.runs)

Modules, in the order data flows: ``writers`` (who writes what, from a seeded plan),
``client`` (how a writer saves: whole copy, or compare-and-swap with retry),
``workspace`` (the instrumented file store), ``truth`` (the store's own account),
``simulation`` (the threads), ``pipeline`` (spool, ingest, check, score), ``scoring``,
``show`` (the terminal).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DemoOptions", "DemoResult", "RunResult", "Workload", "run_demo"]


def __getattr__(name: str) -> Any:
    # Lazily, so `import frontends.demo.workspace` (say) does not load DuckDB and the detectors.
    if name == "Workload":
        from frontends.demo.simulation import Workload

        return Workload
    if name in __all__:
        from frontends.demo import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

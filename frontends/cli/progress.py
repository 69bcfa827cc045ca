"""A progress bar on stderr for work long enough to wait for, on a terminal; else nothing.

The Python API reports progress as ``progress(done, total)`` calls (`import_snapshots`,
`check`); the commands hand it `ProgressBar.advance`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class ProgressBar:
    """``with ProgressBar("importing snapshots", start_at=200) as advance:``; a total below
    ``start_at`` draws nothing (done before a bar would be worth drawing)."""

    def __init__(self, label: str, *, start_at: int = 2) -> None:
        self._label = label
        self._start_at = start_at
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        return self.advance

    def advance(self, done: int, total: int) -> None:
        if total < self._start_at or not sys.stderr.isatty():
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                self._label, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=total, completed=done)
        self._bar.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

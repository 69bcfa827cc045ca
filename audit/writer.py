"""Who is writing: the writer (and actor) in effect, carried on a context variable.

A context variable, not a thread-local, so the writer flows into asyncio tasks created
inside the scope and stays apart between concurrent requests, tasks and threads.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Writer(NamedTuple):
    """The writer in effect; ``parent`` is the scope it was entered from."""

    name: str
    actor: str | None = None
    priority: int | None = None
    parent: Writer | None = None


_current: ContextVar[Writer | None] = ContextVar("audit_writer", default=None)


def current_writer() -> Writer | None:
    """The innermost writer scope, or None outside any."""
    return _current.get()


class writer:  # noqa: N801 - used like a function: `with audit.writer("user"):`
    """Set the writer for the code inside: ``with writer("workflow", actor="engine-1"):``.

    Also a decorator for sync and async functions (``@writer("polling_sync")``): each call
    enters its own scope. One instance may be entered from many threads or tasks at once,
    because the scope lives in the context variable, not on the instance.
    """

    __slots__ = ("name", "actor", "priority")

    def __init__(self, name: str, actor: str | None = None, *, priority: int | None = None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"writer name must be a non-empty string, got {name!r}")
        self.name = name
        self.actor = actor
        self.priority = priority

    def __enter__(self) -> Writer:
        scope = Writer(self.name, self.actor, self.priority, _current.get())
        _current.set(scope)
        return scope

    def __exit__(self, *exc: object) -> None:
        # Restore the parent rather than keeping a token on the instance, which would
        # mix up scopes of one instance entered concurrently.
        scope = _current.get()
        _current.set(scope.parent if scope is not None else None)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await fn(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"writer({self.name!r}, actor={self.actor!r})"

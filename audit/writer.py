"""Who is writing: the writer (and actor) in effect, carried on a context variable.

A context variable, not a thread-local, so the writer flows into asyncio tasks created
inside the scope and stays apart between concurrent requests, tasks and threads. Where the
process propagates OpenTelemetry context, the writer also goes into its baggage, so that
it follows the request to other services (`audit.propagation`).
"""

from __future__ import annotations

import functools
import inspect
import sys
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


class _Baggage(NamedTuple):
    """The OpenTelemetry context a scope attached, to be detached when it ends."""

    scope: Writer
    token: object
    outer: _Baggage | None


_baggage: ContextVar[_Baggage | None] = ContextVar("audit_writer_baggage", default=None)
# Imported by whatever injects context into outgoing requests; until then baggage would
# go nowhere, and a scope costs a context-variable set.
_PROPAGATES = "opentelemetry.propagate"


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
        if _PROPAGATES in sys.modules:
            from audit import propagation

            try:
                token = propagation.attach(self.name, self.actor)
            except Exception:  # never into the service: the writer is still set here
                return scope
            _baggage.set(_Baggage(scope, token, _baggage.get()))
        return scope

    def __exit__(self, *exc: object) -> None:
        # Restore the parent rather than keeping a token on the instance, which would
        # mix up scopes of one instance entered concurrently.
        scope = _current.get()
        _current.set(scope.parent if scope is not None else None)
        attached = _baggage.get()
        if attached is not None and attached.scope is scope:
            from audit import propagation

            propagation.detach(attached.token)
            _baggage.set(attached.outer)

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

"""Who is writing: scopes on contextvars, kept apart between threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

import audit

pytestmark = pytest.mark.usefixtures("fresh_audit")


def test_context_manager_nests_and_restores():
    assert audit.current_writer() is None
    with audit.writer("workflow", actor="engine-1") as w:
        assert (w.name, w.actor) == ("workflow", "engine-1")
        with audit.writer("user", actor="u-7"):
            assert audit.current_writer().name == "user"
        assert audit.current_writer().name == "workflow"
    assert audit.current_writer() is None


def test_decorator_on_sync_and_async_functions():
    @audit.writer("polling_sync")
    def sync_fn():
        return audit.current_writer().name

    @audit.writer("instantiation", actor="task-1")
    async def async_fn():
        await asyncio.sleep(0)
        return audit.current_writer()

    assert sync_fn() == "polling_sync"
    w = asyncio.run(async_fn())
    assert (w.name, w.actor) == ("instantiation", "task-1")
    assert audit.current_writer() is None


def test_threads_keep_their_own_writer_even_with_one_shared_scope_object():
    shared = {name: audit.writer(name) for name in ("user", "workflow")}
    barrier = threading.Barrier(8)
    seen: dict[int, list[str]] = {}

    def worker(i: int) -> None:
        name = "user" if i % 2 else "workflow"
        with shared[name]:
            barrier.wait()  # every thread is inside its scope at once
            seen[i] = [audit.current_writer().name]
            barrier.wait()
        seen[i].append(audit.current_writer())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(8))  # every thread got through
    for i, (inside, after) in seen.items():
        assert inside == ("user" if i % 2 else "workflow")
        assert after is None


def test_asyncio_tasks_keep_their_own_writer_and_children_inherit_it():
    async def request(name: str, started: asyncio.Event, go: asyncio.Event) -> tuple:
        with audit.writer(name, actor=f"{name}-actor"):
            started.set()
            await go.wait()  # the other request runs in between

            async def child():
                return audit.current_writer().name

            inherited = await asyncio.create_task(child())
            return audit.current_writer().name, inherited

    async def main():
        go = asyncio.Event()
        e1, e2 = asyncio.Event(), asyncio.Event()
        t1 = asyncio.create_task(request("user", e1, go))
        t2 = asyncio.create_task(request("workflow", e2, go))
        await e1.wait()
        await e2.wait()
        go.set()
        return await t1, await t2, audit.current_writer()

    r1, r2, outside = asyncio.run(main())
    assert r1 == ("user", "user")
    assert r2 == ("workflow", "workflow")
    assert outside is None


def test_tracked_events_carry_the_writer_of_their_own_task(sink):
    @audit.tracked(entity_type="block")
    async def apply(doc, value):
        await asyncio.sleep(0)
        doc["content"] = value

    async def main():
        docs = [{"id": f"b{i}"} for i in range(6)]

        async def one(i):
            with audit.writer("user" if i % 2 else "workflow", actor=str(i)):
                await apply(docs[i], f"v{i}")

        await asyncio.gather(*(one(i) for i in range(6)))

    asyncio.run(main())
    assert len(sink.events) == 6
    for e in sink.events:
        i = int(e["entity"][1:])
        assert e["writer"] == ("user" if i % 2 else "workflow")
        assert e["actor"] == str(i)


def test_default_writer_outside_any_scope_is_configurable(sink):
    audit.record("e", {"a": 1}, {"a": 2})
    audit.configure(writer="batch-job")
    audit.record("e", {"a": 2}, {"a": 3})
    assert [e["writer"] for e in sink.events] == ["unknown", "batch-job"]


def test_writer_name_must_be_a_string():
    with pytest.raises(TypeError):
        audit.writer("")


def test_import_audit_stays_cheap():
    code = (
        "import sys, audit\n"
        "heavy = ['duckdb', 'pyarrow', 'sentry_sdk', 'structlog', 'deepdiff', 'opentelemetry',"
        " 'collectors', 'queries', 'frontends', 'typer', 'rich']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

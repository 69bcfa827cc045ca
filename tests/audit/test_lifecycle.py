"""audit.lifecycle: any sink with close() and after_fork_in_child() is looked after."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from audit import lifecycle

ROOT = Path(__file__).resolve().parents[2]


class Sink:
    def __init__(self):
        self.closed = 0
        self.forked = 0

    def close(self):
        self.closed += 1

    def after_fork_in_child(self):
        self.forked += 1


def test_a_forked_child_is_told_first_thing_and_the_parent_is_not():
    sink = Sink()
    lifecycle.register(sink)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw, leave without running any exit handler
        os.write(write, f"{sink.forked} {sink.closed}".encode())
        os._exit(0)
    os.close(write)
    seen = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert seen == "1 0"
    assert (sink.forked, sink.closed) == (0, 0)


def test_sinks_are_closed_when_the_process_ends_also_a_multiprocessing_child(tmp_path):
    code = textwrap.dedent(f"""
        import multiprocessing, pathlib
        from audit import lifecycle

        class Sink:
            def __init__(self, name):
                self.name = name
            def close(self):
                pathlib.Path({str(tmp_path)!r}, self.name).write_text("closed")
            def after_fork_in_child(self):
                pass

        def child():
            global kept
            kept = Sink("child")
            lifecycle.register(kept)  # leaves through os._exit: no atexit

        if __name__ == "__main__":
            kept = Sink("parent")
            lifecycle.register(kept)
            p = multiprocessing.get_context("fork").Process(target=child)
            p.start()
            p.join()
    """)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child", "parent"]


def test_a_sink_is_held_weakly():
    import gc
    import weakref

    sink = Sink()
    lifecycle.register(sink)
    ref = weakref.ref(sink)
    del sink
    gc.collect()
    assert ref() is None

"""The one-way flow at package level: instrument (audit) -> collectors -> queries -> frontends.

A service installs only the instrumentation (`pip install conflict-audit`); the auditing side
is the `cli` extra. These tests keep both promises true as the code grows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["audit", "collectors", "queries", "frontends"]
AUDITING_SIDE = ["duckdb", "pyarrow", "numpy", "sentry_sdk", "typer", "rich"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_imports_a_later_stage():
    wrong = []
    for i, package in enumerate(ORDER):
        later = set(ORDER[i + 1 :])
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path) & later:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_the_base_install_holds_none_of_the_auditing_side():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split(">")[0].split("[")[0].replace("-", "_") for d in project["dependencies"]}
    assert base.isdisjoint(AUDITING_SIDE)
    assert {"duckdb", "typer"} <= {
        d.split(">")[0].replace("-", "_") for d in project["optional-dependencies"]["cli"]
    }


# rich is left out: `import structlog` loads it when it happens to be installed (its dev
# console renderer), which a base install does not have.
HEAVY = [m for m in AUDITING_SIDE if m != "rich"] + ["queries", "frontends"]


def test_a_tracked_write_into_the_spool_loads_nothing_of_the_auditing_side(tmp_path):
    code = f"""
import sys, audit
from collectors.spool import SpoolSink
sink = SpoolSink({str(tmp_path)!r})
audit.configure(sink=sink)
doc = {{"id": "block-A", "status": "idle"}}
with audit.writer("workflow"), audit.tracking(doc):
    doc["status"] = "done"
sink.close()
heavy = {HEAVY!r}
print(",".join(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
    (sealed,) = tmp_path.glob("*.jsonl")
    assert b'"field":"status"' in sealed.read_bytes()

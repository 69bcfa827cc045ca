"""The snapshot file each imported event came from, as `audit check` and `audit timeline`
show it: the example workspace saves imported, checked and looked at through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run

EXAMPLE = Path(__file__).parents[3] / "examples" / "workspace-snapshots"
UI = ("nodes[*].position", "nodes[*].measured", "nodes[*].selected", "nodes[*].dragging",
      "*.isLoading", "viewport")  # what the editor's UI changes and nobody audits (README)
USER_EDIT = "ws-onboarding_2025-05-01T10-01-05Z.json"  # the user's new welcome text
STALE_SAVE = "ws-onboarding_2025-05-01T10-01-40Z.json"  # the workflow's stale whole save


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("snapshot_views") / "audit.duckdb"
    result = run("import", "snapshots", EXAMPLE, "--split", "nodes:id", "--writer-key",
                 "savedBy", "--entity-type", "workspace",
                 *(a for p in UI for a in ("--exclude", p)), "--db", db)
    assert result.returncode == 0, result.stderr
    return db


def test_check_json_names_the_snapshot_of_each_witness(db):
    result = run("check", "--db", db, "-f", "json", "--entity", "ws-onboarding/block-A")
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    assert findings and all(f["field"] == "data.content" for f in findings)
    for f in findings:
        attrs = [w["attrs"] for w in f["witnesses"]]
        assert [Path(a["snapshot"]).name for a in attrs] == [USER_EDIT, STALE_SAVE]
        assert [Path(a["previous_snapshot"]).name for a in attrs] == [
            "ws-onboarding_2025-05-01T10-00-40Z.json", USER_EDIT]
        assert Path(attrs[0]["snapshot"]).parent == EXAMPLE


def test_timeline_shows_the_snapshot_file_of_each_change(db):
    table = run("timeline", "ws-onboarding/block-A", "--field", "data.content", "--db", db,
                columns=160)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    # each file under its writer, in the writer's column
    for writer, snapshot in (("user", USER_EDIT), ("workflow", STALE_SAVE)):
        (at,) = [i for i, line in enumerate(lines) if f"│ {writer} " in line]
        column = lines[at].index(f"│ {writer} ")
        assert lines[at + 1][column:].startswith(f"│ {snapshot} ")
    assert lines[-1] == ("under the writer: the snapshot file each change was imported from, "
                         f"in {EXAMPLE}")
    rows = json.loads(run("timeline", "ws-onboarding/block-A", "--field", "data.content",
                          "--db", db, "-f", "json").stdout)
    assert [Path(r["attrs"]["snapshot"]).name for r in rows] == [USER_EDIT, STALE_SAVE]

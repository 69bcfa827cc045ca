"""`audit import snapshots`: saved documents into events, checked like any other history."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.diff import diff
from collectors.snapshots import Options, Split, import_snapshots, name_timestamp, read, transitions
from collectors.store import open_store
from frontends.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "workspace-snapshots"
# What a workflow editor's UI changes all the time and nobody audits (README, "Importing").
UI = ("nodes[*].position", "nodes[*].measured", "nodes[*].selected", "nodes[*].dragging",
      "*.isLoading", "viewport")
IMPORT = ["import", "snapshots", "--split", "nodes:id", "--writer-key", "savedBy",
          "--entity-type", "workspace", *(a for p in UI for a in ("--exclude", p))]


def audit(capsys, *args) -> tuple[int, str, str]:
    """The command line in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def stored_attrs(db: Path, event_ids: list[str]) -> list[dict]:
    con = open_store(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT event_id, attrs::VARCHAR FROM events WHERE list_contains(?, event_id)",
            [event_ids],
        ).fetchall()
    finally:
        con.close()
    by_id = {event_id: json.loads(attrs) for event_id, attrs in rows}
    return [by_id[e] for e in event_ids]


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, str, list[dict]]:
    """The example folder imported once, and `audit check --format json` of it."""
    db = tmp_path_factory.mktemp("snapshots") / "audit.duckdb"
    out, err = io.StringIO(), io.StringIO()  # a module fixture cannot take capsys
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for args in ([*IMPORT, EXAMPLE, "--db", db], ["check", "--format", "json", "--db", db]):
            with contextlib.suppress(SystemExit):
                main([str(a) for a in args])
    summary, findings = out.getvalue().split("\n", 1)
    return db, summary + "\n" + err.getvalue(), json.loads(findings)


def test_a_planted_whole_document_revert_is_named_with_its_writers_and_snapshots(imported):
    """The engine saved the whole workspace from the copy it had read before the user's
    edit: the user's new welcome text and the workspace's new name went back. The check
    names both fields, both writers, and the witnesses lead to the two snapshot files."""
    db, printed, findings = imported
    assert "6 file(s), 6 documents of 4 entities" in printed
    assert "in the order of the timestamps in the file names" in printed
    by_field = {}
    for f in findings:
        by_field.setdefault((f["entity"], f["field"]), set()).add(f["detector"])
        assert f["writers"] == ["user", "workflow"]
    assert by_field == {
        ("ws-onboarding/block-A", "data.content"): {"oscillation", "priority_inversion"},
        ("ws-onboarding", "name"): {"oscillation", "priority_inversion"},
    }
    lost = next(f for f in findings if f["field"] == "data.content")
    assert lost["witnesses"][0]["new"].startswith("Welcome aboard")
    assert lost["witnesses"][1]["new"].startswith("Hello {{name}}")
    snapshots = [Path(a["snapshot"]).name for a in stored_attrs(db, lost["event_ids"])]
    assert snapshots == ["ws-onboarding_2025-05-01T10-01-05Z.json",
                         "ws-onboarding_2025-05-01T10-01-40Z.json"]
    previous = stored_attrs(db, lost["event_ids"][1:])[0]["previous_snapshot"]
    assert Path(previous).name == "ws-onboarding_2025-05-01T10-01-05Z.json"


def test_importing_the_same_snapshots_again_doubles_nothing(imported, tmp_path, capsys):
    db, _, _ = imported
    copied = tmp_path / "elsewhere"
    shutil.copytree(EXAMPLE, copied)  # another path, other modification times: same ids
    code, out, err = audit(capsys, *IMPORT, copied, "--db", db)
    assert code == 0, err
    assert "21 events from 5 writes; 0 ingested, 21 duplicates skipped, 0 rejected" in out


def test_the_events_are_the_instrumentations_diff_of_each_pair():
    """Same rules as audit.diff: a move of every node (the last save) brings nothing, the
    first save brings each field as added, split elements are diffed on their own."""
    options = Options(splits=(Split("nodes", "id"),), writer_key="savedBy", exclude=UI)
    docs, _, _ = read([EXAMPLE], options)
    events = list(transitions(docs, options))
    last = sorted(EXAMPLE.iterdir())[-1]
    assert not [e for e in events if e["attrs"]["snapshot"] == str(last)]
    first = [e for e in events if "previous_snapshot" not in e["attrs"]]
    assert {(e["entity"], e["field"]) for e in first} >= {
        ("ws-onboarding", "name"), ("ws-onboarding/block-B", "data")}
    assert {e["change"] for e in first} == {"added"}
    files = sorted(EXAMPLE.iterdir())
    b1, b2 = (next(n for n in json.loads(f.read_text())["nodes"] if n["id"] == "block-B")
              for f in files[:2])
    expected = diff(b1, b2, rules=options.rules(), prefix="nodes[block-B]")
    got = [e for e in events if e["entity"] == "ws-onboarding/block-B"
           and e["attrs"]["snapshot"] == str(files[1])]
    assert [(e["field"], e["old"], e["new"]) for e in got] == [c[:1] + c[2:] for c in expected]
    assert {e["write_id"] for e in events if e["attrs"]["snapshot"] == str(files[1])} == {
        got[0]["write_id"]}  # one save, one write, whichever entities it touched
    assert len({e["event_id"] for e in events}) == len(events)


def test_json_lines_of_row_versions_in_time_order_by_key(tmp_path, capsys):
    """A table's row versions, exported out of order; the time is in the rows (naive is
    UTC, epoch milliseconds work too), the writer fixed."""
    rows = [
        {"id": 7, "status": "done", "updated_at": "2025-05-01T10:00:20"},
        {"id": 7, "status": "processing", "updated_at": "2025-05-01T10:00:00Z"},
        {"id": 8, "status": "new", "updated_at": 1746093600000},
        {"id": 7, "status": "processing", "updated_at": "2025-05-01T10:00:30+00:00"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    db = tmp_path / "a.duckdb"
    code, out, err = audit(capsys, "import", "snapshots", path, "--ts-key", "updated_at",
                           "--writer", "sync", "--db", db, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["documents"], summary["entities"], summary["events"]) == (4, 2, 6)
    con = open_store(db, read_only=True)
    try:
        history = con.execute(
            "SELECT entity, field, old::VARCHAR, new::VARCHAR, ts, writer FROM events "
            "WHERE field = 'status' ORDER BY entity, ts").fetchall()
    finally:
        con.close()
    assert [(e, o, n, w) for e, _, o, n, _, w in history] == [
        ("7", None, '"processing"', "sync"), ("7", '"processing"', '"done"', "sync"),
        ("7", '"done"', '"processing"', "sync"), ("8", None, '"new"', "sync")]
    assert history[1][4] == datetime(2025, 5, 1, 10, 0, 20, tzinfo=UTC)


def test_integers_beyond_64_bits_stay_exact(tmp_path, capsys):
    """orjson reads 2**64 and beyond as a float: 10**21 + 1 once came out as 1e21."""
    big = 10**21 + 1
    (tmp_path / "1.json").write_text(json.dumps([{"id": "x", "n": big, "l": [1]}]))
    (tmp_path / "2.json").write_text(json.dumps({"id": "x", "n": big + 1, "l": [big]}))
    db = tmp_path / "a.duckdb"
    code, _, err = audit(capsys, "import", "snapshots", tmp_path / "1.json", tmp_path / "2.json",
                         "--db", db)
    assert code == 0, err
    con = open_store(db, read_only=True)
    try:
        rows = con.execute("SELECT field, old, new FROM events WHERE old IS NOT NULL "
                           "ORDER BY field").fetchall()
    finally:
        con.close()
    assert rows == [("l.0", "1", str(big)), ("n", str(big), str(big + 1))]


def test_without_a_time_the_documents_go_in_the_order_given(tmp_path):
    for n, status in ((10, "c"), (2, "b"), (1, "a")):
        (tmp_path / f"snap-{n}.json").write_text(json.dumps({"id": "x", "s": status}))
    options = Options()
    docs, order, files = read([tmp_path], options)
    assert files == 3 and order.startswith("the order given")
    events = [e for e in transitions(docs, options) if e["field"] == "s"]
    assert [(e.get("old"), e["new"]) for e in events] == [(None, "a"), ("a", "b"), ("b", "c")]
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_split_elements_come_and_go_as_entities(tmp_path):
    (tmp_path / "1.jsonl").write_text(
        json.dumps({"id": "w", "graph": {"nodes": [{"key": "a", "v": 1}], "zoom": 1}}) + "\n"
        + json.dumps({"id": "w", "graph": {"nodes": [{"key": "b", "v": 2}], "zoom": 1}}) + "\n"
    )
    options = Options(splits=(Split.parse("graph.nodes:key"),))
    docs, _, _ = read([tmp_path / "1.jsonl"], options)
    got = [(e["entity"], e["field"], e["change"]) for e in transitions(docs, options)]
    assert got == [
        ("w/a", "key", "added"), ("w/a", "v", "added"), ("w", "id", "added"),
        ("w", "graph", "added"), ("w/a", "key", "removed"), ("w/a", "v", "removed"),
        ("w/b", "key", "added"), ("w/b", "v", "added")]


@pytest.mark.parametrize(("content", "args", "message"), [
    ('{"name": "no id"}', [], 'no "id" key holding a string or an integer'),
    ('{"id": "w"', [], "not JSON"),
    ("[1]", [], "a document is a JSON object, not a number"),
    ('{"id": "w", "nodes": [{"v": 1}]}', ["--split", "nodes:id"],
     'an element of "nodes" has no "id"'),
    ('{"id": "w", "nodes": 3}', ["--split", "nodes:id"], '"nodes" is not a list'),
    ('{"id": "w"}', ["--split", "nodes"], "--split nodes: expected LISTPATH:KEY"),
    ('{"id": "w"}', ["--ts-key", "at"], 'no "at" (see --ts-key)'),
    ('{"id": "w", "at": "soon"}', ["--ts-key", "at"], "'soon' is no timestamp"),
    ('{"id": "w"}', ["--writer", "a", "--writer-key", "b"], "give one of them"),
    ('{"id": "w"}', ["--list-key", "nodes"], "expected PATTERN=KEY"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, content, args, message):
    path = tmp_path / "doc.json"
    path.write_text(content)
    code, out, err = audit(capsys, "import", "snapshots", path, *args,
                           "--db", tmp_path / "a.duckdb")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_a_missing_path_is_one_line(tmp_path, capsys):
    code, _, err = audit(capsys, "import", "snapshots", tmp_path / "nope", "--db",
                         tmp_path / "a.duckdb")
    assert code == 2 and err == f"error: no such file or folder: {tmp_path / 'nope'}\n"


@pytest.mark.parametrize(("name", "expected"), [
    ("ws-1_2025-05-01T10-00-00Z.json", "2025-05-01T10:00:00+00:00"),
    ("2025-05-01T12:00:00.25+02:00.json", "2025-05-01T10:00:00.250000+00:00"),
    ("backup-20250501-100000.json", "2025-05-01T10:00:00+00:00"),
    ("daily-2025-05-01.json", "2025-05-01T00:00:00+00:00"),
    ("autosave-1746093600000.json", "2025-05-01T10:00:00+00:00"),
    ("snap-10.json", None),
    ("ws-20250501.json", None),  # eight digits alone could be an id
    ("v2025-13-01.json", None),
])
def test_timestamps_in_file_names(name, expected):
    ts = name_timestamp(name)
    assert (ts.isoformat() if ts else None) == expected


def test_the_python_api_stores_in_batches_through_the_ingest(tmp_path, con, monkeypatch):
    import collectors.ingest
    import collectors.snapshots as snapshots

    monkeypatch.setattr(snapshots, "BATCH_LINES", 4)
    batches = []

    def load_lines(con, lines, source):  # the real ingest, each batch's size noted
        batches.append(len(lines))
        return real_load_lines(con, lines, source)

    real_load_lines = collectors.ingest.load_lines
    monkeypatch.setattr(collectors.ingest, "load_lines", load_lines)
    seen = []
    summary = import_snapshots(con, [EXAMPLE], Options(), progress=lambda d, n: seen.append(d))
    assert seen == list(range(1, 7))
    (stored,) = con.execute("SELECT count(*) FROM events").fetchone()
    assert stored == summary.ingested == summary.events > 4
    assert len(batches) > 1 and max(batches) == 4 and sum(batches) == summary.events

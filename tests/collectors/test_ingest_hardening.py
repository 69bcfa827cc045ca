"""Inputs that used to stop the ingest or got stored in a form the readers could not take.

Each test reproduces one defect found by probing `audit ingest` as a new user would.
"""

from __future__ import annotations

import json

import pytest
from sample_event import event

from collectors.ingest import ingest, load_lines

HEAD = '{"event":"field.transition","ts":"2026-01-01T10:00:00Z","entity":"e","field":"f",'


def line(tail: str) -> str:
    """An event line whose last keys (old, new, writer, …) are written by hand."""
    return HEAD + tail + "}"


def rejects(con) -> list[tuple[int, str]]:
    return con.execute("SELECT line, reason FROM rejected_events ORDER BY line").fetchall()


@pytest.mark.parametrize("depth", [255, 300, 1023, 1024, 5000])
def test_a_value_nested_past_the_parsers_limits_is_rejected_and_the_ingest_goes_on(con, depth):
    deep = "[" * depth + "]" * depth
    lines = [
        json.dumps(event(new="before")),
        line(f'"writer":"w","old":1,"new":{deep}'),
        line(f'"writer":"w","old":{deep},"new":1'),
        json.dumps(event(new="after")),
    ]
    summary = load_lines(con, lines, "deep")
    assert (summary.ingested, summary.rejected) == (2, 2)
    assert rejects(con) == [
        (2, "nested deeper than 64 levels"),
        (3, "nested deeper than 64 levels"),
    ]


def test_a_deep_line_in_one_file_does_not_stop_the_files_after_it(con, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        line('"writer":"w","old":1,"new":' + "[" * 255 + "]" * 255) + "\n"
    )
    (folder / "b.jsonl").write_text(json.dumps(event()) + "\n")
    summary = ingest(con, [folder])
    assert (summary.files, summary.ingested, summary.rejected) == (2, 1, 1)
    again = ingest(con, [folder])  # nothing is left half-done for the next run
    assert (again.unchanged_files, again.ingested, again.rejected) == (2, 0, 0)

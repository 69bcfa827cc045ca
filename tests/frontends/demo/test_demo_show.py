"""The demo's timeline view on a store's real timeline rows."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

from rich.console import Console

from collectors.ingest import ingest
from frontends.demo.show import timeline_table
from queries.history import timeline


def test_the_timeline_shows_a_blind_writes_old_value_as_not_read(con, tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in [
        {"event_id": "b1", "ts": "2026-03-01T12:00:00Z", "entity": "block-A", "field": "status",
         "change": "added", "new": "draft", "writer": "user", "version": 1},
        {"event_id": "b2", "ts": "2026-03-01T12:00:01Z", "entity": "block-A", "field": "status",
         "change": "changed", "new": "done", "writer": "workflow", "version": 2},
    ]))
    ingest(con, [str(log)])
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(
        timeline_table(SimpleNamespace(timeline=timeline(con, "block-A"))))
    text = out.getvalue()
    assert "(absent) → 'draft'" in text  # added: there was no value
    assert "(not read) → 'done'" in text  # blind: there was one, its writer did not read it

"""The planted store that bench/detect.py measures: each layout plants the same anomalies in
the same entities, so that figures on either layout are of the same work."""

from __future__ import annotations

import pytest
from planted_store import LAYOUTS, expected, generate

from collectors.store import open_store
from queries.runner import check

EVENTS = 20_000


def test_every_layout_plants_the_same_anomalies(tmp_path):
    found = {}
    for layout in LAYOUTS:
        path = tmp_path / f"{layout}.duckdb"
        generate(path, EVENTS, layout)
        with open_store(path, read_only=True) as con:
            found[layout] = sorted((f.detector, f.entity, f.field) for f in check(con))
            [(entities, spread)] = con.execute(
                "SELECT count(DISTINCT entity), max(span) FROM ("
                "  SELECT entity, max(seq) - min(seq) AS span FROM events GROUP BY entity)"
            ).fetchall()
        assert entities == EVENTS // 10
        # clustered: an entity's ten events follow one another; interleaved: they span
        # nine tenths of the store
        assert spread == {"clustered": 9, "interleaved": EVENTS * 9 // 10}[layout]
    counts = {d: sum(1 for f in found["interleaved"] if f[0] == d) for d in expected(EVENTS)}
    assert counts == expected(EVENTS)
    assert found["interleaved"] == found["clustered"]


def test_an_interleaved_store_needs_whole_entities(tmp_path):
    with pytest.raises(ValueError, match="multiple of 10"):
        generate(tmp_path / "s.duckdb", EVENTS + 3, "interleaved")

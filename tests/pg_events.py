"""The events a PostgreSQL capture holds, as `audit pg pull` stores them: what the tests of
tests/pg look at (the capture table holds row images, not events)."""

from __future__ import annotations

import json

from collectors.pg import pull
from collectors.store import open_store


def pulled(dsn: str) -> list[dict]:
    """Every event the capture in ``dsn`` holds, as `audit pg pull` stores them (a fresh
    in-memory store), in capture order. ``old``/``new`` are left out where absent; ``op`` and
    ``capture_id`` come from attrs.pg, ``attrs`` is the rest of attrs (None when empty)."""
    con = open_store(":memory:")
    try:
        pull(dsn, con)
        cur = con.execute(
            "SELECT entity, entity_type, field, change, old::VARCHAR AS old, "
            "new::VARCHAR AS new, writer, actor, write_id, base_version, version, source_ts, "
            "attrs::VARCHAR AS attrs FROM events ORDER BY seq")
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    for row in rows:
        for side in ("old", "new"):
            if row[side] is None:
                del row[side]
            else:
                row[side] = json.loads(row[side])
        attrs = json.loads(row["attrs"])
        pg = attrs.pop("pg")
        row.update(op=pg["op"], capture_id=pg["capture_id"], attrs=attrs or None)
    return rows

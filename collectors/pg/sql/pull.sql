-- The captured row changes a pull reads (collectors/pg/pull.py says which, and why by
-- transaction), oldest first; collectors/pg/transitions.py turns each into transitions.
--
-- Parameters: %(since)s (the last pull's xmin, or NULL for everything).
SELECT id, xid::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       installation, op, old, new, writer, actor, source_ts, base_version
FROM conflict_audit.row_changes
WHERE %(since)s::xid8 IS NULL OR xid >= %(since)s::xid8
ORDER BY id

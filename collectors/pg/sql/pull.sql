-- The captured transitions a pull reads, as event lines of docs/contract.md §1.
--
-- Capture ids are taken before commit, so they do not commit in order: a transaction
-- holding id 10 can commit after one holding id 11 was pulled. The pull therefore tracks
-- transactions, not ids. It runs in one REPEATABLE READ snapshot and remembers that
-- snapshot's xmin: every transaction older than it had finished, so its rows were read
-- (or it rolled back). The next pull reads again every row of a transaction from xmin on;
-- the rows it had already read are duplicates the store skips by event id.
--
-- Parameters: %(source)s (this capture's source_id), %(since)s (the last pull's xmin, or
-- NULL for everything).
SELECT (jsonb_strip_nulls(jsonb_build_object(  -- only scalars here: stripping is safe
            'event', 'field.transition',
            'event_id', 'pg-' || %(source)s || '-' || t.id,
            'ts', to_char(t.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'entity', t.entity,
            'entity_type', t.entity_type,
            'field', t.field,
            'change', t.change,
            'writer', t.writer,
            'actor', t.actor,
            'write_id', 'pg-' || %(source)s || '-' || t.write_id,
            'base_version', t.base_version,
            'version', t.version,
            'source_ts', t.source_ts))
        -- old and new may hold JSON nulls of their own: absent only when the column is NULL
        || CASE WHEN t.old IS NULL THEN '{}' ELSE jsonb_build_object('old', t.old) END
        || CASE WHEN t.new IS NULL THEN '{}' ELSE jsonb_build_object('new', t.new) END
        || jsonb_build_object('attrs', coalesce(t.attrs, '{}') || jsonb_build_object(
               'pg', jsonb_build_object('op', t.op, 'xid', t.xid::text, 'capture_id', t.id)))
       )::text
FROM conflict_audit.transitions AS t
WHERE %(since)s::xid8 IS NULL OR t.xid >= %(since)s::xid8
ORDER BY t.id

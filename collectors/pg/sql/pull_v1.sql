-- Transitions captured by schema version 1, whose trigger diffed in the database: the
-- table stays after an upgrade (collectors/pg/upgrade.py) until every store has pulled it.
-- Read as event lines of docs/contract.md §1, by transaction like pull.sql.
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

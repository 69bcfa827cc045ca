-- transitions: every event in commit order, with the transition before it (prev) and the
-- one before that (prev2) of the same entity and field. Every detector reads this table.
--
-- Commit order (CONTRACT.md §2): the writes of one entity are ordered by `version` when
-- every write of that entity has one (ties by `ts`), otherwise by `ts`; remaining ties by
-- ingest order (`seq`). It is defined here and nowhere else.
--
-- Run it first, then any detector, in the DuckDB shell on a store made by `audit ingest`:
--   duckdb -readonly audit.duckdb -c ".read queries/transitions.sql" \
--                                 -c ".read queries/lost_update.sql"
--
-- Scope (optional; unset = the whole store), so that --entity/--since/--until cut the work
-- before the window sort rather than after it:
--   SET VARIABLE audit_entity = 'block-A';
--   SET VARIABLE audit_since = TIMESTAMPTZ '2025-01-01 00:00:00+00';
--   SET VARIABLE audit_until = TIMESTAMPTZ '2025-01-02 00:00:00+00';
-- A time range keeps every event of the entities written in it: the writes just before the
-- range are the context that prev() needs.
--
-- Only the columns the detectors test are carried through the sort (its cost grows with
-- the width of a row); witnesses' other facts are looked up by `seq` afterwards.
CREATE OR REPLACE TEMP TABLE transitions AS
WITH touched AS (
    -- entities written within --since/--until; folded away when neither is set
    SELECT DISTINCT entity FROM events
    WHERE (getvariable('audit_since') IS NOT NULL OR getvariable('audit_until') IS NOT NULL)
      AND ts >= coalesce(getvariable('audit_since')::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
      AND ts <= coalesce(getvariable('audit_until')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
),
scoped AS (
    SELECT seq, entity, field, ts, writer, write_id, change, old, new,
           version, base_version, source_ts, priority
    FROM events
    WHERE (getvariable('audit_entity') IS NULL OR entity = getvariable('audit_entity'))
      AND ((getvariable('audit_since') IS NULL AND getvariable('audit_until') IS NULL)
           OR entity IN (SELECT entity FROM touched))
),
-- Entities where some writes carry a version and some do not: ordered by ts alone. Usually
-- few, so the membership test below is a cheap probe into a small set. Computed from the
-- events table rather than `scoped` so that DuckDB does not materialise `scoped` twice.
mixed AS (
    SELECT entity FROM events
    WHERE getvariable('audit_entity') IS NULL OR entity = getvariable('audit_entity')
    GROUP BY entity
    HAVING count(version) BETWEEN 1 AND count(*) - 1
),
keyed AS (
    SELECT *,
           -- the version that orders this write: NULL for an entity that is not fully
           -- versioned, so that its writes fall back to ts order
           CASE WHEN entity IN (SELECT entity FROM mixed) THEN NULL ELSE version END
               AS order_version
    FROM scoped
)
SELECT
    seq, entity, field, ts, writer, write_id, change, old, new,
    version, base_version, source_ts, priority, order_version,
    row_number() OVER w AS rn,             -- position in the field's history, from 1
    lag(seq) OVER w AS p_seq,              -- prev(e); NULL for the field's first transition
    lag(ts) OVER w AS p_ts,
    lag(writer) OVER w AS p_writer,
    lag(write_id) OVER w AS p_write_id,
    lag(old) OVER w AS p_old,
    lag(new) OVER w AS p_new,
    lag(version) OVER w AS p_version,
    lag(source_ts) OVER w AS p_source_ts,
    lag(priority) OVER w AS p_priority,
    lag(seq, 2) OVER w AS pp_seq,          -- prev(prev(e)), for oscillation
    lag(ts, 2) OVER w AS pp_ts,
    lag(writer, 2) OVER w AS pp_writer
FROM keyed
WINDOW w AS (PARTITION BY entity, field ORDER BY order_version, ts, seq);

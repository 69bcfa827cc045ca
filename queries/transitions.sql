-- transitions: events in commit order, each with the transition before it (prev) of the
-- same entity and field. Every detector reads this table.
--
-- Commit order (docs/contract.md §2): the writes of one entity are ordered by `version` when
-- every write of that entity has one (ties by `ts`), otherwise by `ts`; remaining ties by
-- ingest order (`seq`). It is defined here and nowhere else.
--
-- Run it first, after the settings (queries/defaults.sql), then any detector, in the DuckDB
-- shell on a store made by `audit ingest`:
--   duckdb -readonly audit.duckdb -c ".read queries/defaults.sql" \
--       -c ".read queries/transitions.sql" -c ".read queries/lost_update.sql"
--
-- Scope (optional; unset = the whole store), so that --entity/--since/--until cut the work
-- before the sort rather than after it:
--   SET VARIABLE audit_entities = ['block-A', 'block-B'];
--   SET VARIABLE audit_since = TIMESTAMPTZ '2025-01-01 00:00:00+00';
--   SET VARIABLE audit_until = TIMESTAMPTZ '2025-01-02 00:00:00+00';
-- A time range keeps every event of the entities written in it: the writes just before the
-- range are the context that prev() needs.
--
-- Suspects only (`SET VARIABLE audit_suspects_only = true`, what `audit check` does): keep
-- only the transitions a detector can name as a witness (the WHERE clause of bucket_suspects),
-- instead of materialising the whole history. On a large store that is most of the cost
-- of a check.
--
-- One entity range (`SET VARIABLE audit_bucket_from = 'block-3'; SET VARIABLE
-- audit_bucket_to = 'block-6';`): only the entities from audit_bucket_from (included) up
-- to audit_bucket_to (excluded) go through the sort; an unset bound leaves that side open.
-- Every detector reads one entity's events only, so the suspects of ranges that together
-- hold every entity once are the suspects of the whole scope: `audit check` on a large
-- store sorts range by range, adding each range's rows to `suspect_rows`
-- (queries/commit_order.py), so that the memory of the sort follows the range, not the
-- store; version_conflict, which reads the events themselves (`range_events`), runs range
-- by range too. A range rather than a hash of the entity: the scan itself skips the rows
-- outside a range, where a hash was computed on every event of the store for every range.
-- Unset: the whole scope at once.

-- The sort is most of the cost, and its cost grows with the width of a row: it carries only
-- what the suspect test below reads. What only the detectors read (write ids, prev's old) is
-- looked up for the suspects afterwards, as the runner looks up witnesses' other facts by
-- `seq`. Each window function has a cost of its own, so prev's columns travel as one struct,
-- unpacked after.

-- Without the settings the detectors would quietly find nothing: stop here instead.
SET VARIABLE audit_settings_checked = CASE
    WHEN getvariable('audit_oscillation_window_s') IS NULL
      OR getvariable('audit_oscillation_min_changes') IS NULL
      OR getvariable('audit_priority_window_s') IS NULL
      OR getvariable('audit_default_priority') IS NULL
      OR getvariable('audit_writer_priorities') IS NULL
    THEN error('the detector settings are not set: read queries/defaults.sql first')
    ELSE true END;

-- The events in scope. version_conflict also reads it: a fork spans fields. Only applied
-- writes (the store's applied_events view leaves out those a compare-and-swap refused).
CREATE OR REPLACE TEMP VIEW scoped_events AS
SELECT seq, entity, field, ts, writer, write_id, change, old, new,
       change = 'added' AS added,
       -- a blind write: `changed` without `old`, its writer did not read the value
       -- (docs/contract.md §1). Its old is unknown, so no rule compares it.
       change = 'changed' AND old IS NULL AS blind,
       version, base_version, source_ts, priority
FROM applied_events
WHERE (getvariable('audit_entities') IS NULL
       OR entity IN (SELECT unnest(getvariable('audit_entities'))))
  AND ((getvariable('audit_since') IS NULL AND getvariable('audit_until') IS NULL)
       OR entity IN (
           -- folded away when neither bound is set
           SELECT DISTINCT entity FROM applied_events
           WHERE (getvariable('audit_since') IS NOT NULL
                  OR getvariable('audit_until') IS NOT NULL)
             AND ts >= coalesce(getvariable('audit_since')::TIMESTAMPTZ,
                                '-infinity'::TIMESTAMPTZ)
             AND ts <= coalesce(getvariable('audit_until')::TIMESTAMPTZ,
                                'infinity'::TIMESTAMPTZ)));

-- The events of the entity range set (all of scoped_events when none is): what one sort
-- reads, and version_conflict too.
CREATE OR REPLACE TEMP VIEW range_events AS
SELECT * FROM scoped_events
WHERE (getvariable('audit_bucket_from') IS NULL OR entity >= getvariable('audit_bucket_from'))
  AND (getvariable('audit_bucket_to') IS NULL OR entity < getvariable('audit_bucket_to'));

-- What the sort and version_conflict need to know of an entity, from one pass over the
-- events; only the entities with something to tell are listed (usually few; more where
-- writes span several fields, as one write claims its version once a field):
--   mixed          some of its writes carry a version and some do not: ordered by ts alone.
--   repeats_version  two of its events may claim one version: only there can two writes
--                  fork. Each version sets one bit of 64 (version & 63); two events with
--                  one version set the same bit, so fewer bits than versioned events are
--                  set. Never misses a repeat; also lists an entity whose distinct
--                  versions share a bit (more than 64 of them, or 64 apart), which
--                  version_conflict then checks exactly.
--   version_not_newer  a write's version is not above the version it read.
-- version_conflict reads only the entities with one of the last two
-- (queries/version_conflict.sql says why).
-- A table of its own, because as a CTE of the statement below it slows the sort.
CREATE OR REPLACE TEMP TABLE entity_flags AS
SELECT *
FROM (
    SELECT entity,
           count(version) BETWEEN 1 AND count(*) - 1 AS mixed,
           bit_count(bit_or(1::UBIGINT << (version & 63))) < count(version)
               AS repeats_version,
           count(CASE WHEN version <= base_version THEN 1 END) > 0 AS version_not_newer
    FROM scoped_events
    GROUP BY entity
)
WHERE mixed OR repeats_version OR version_not_newer;

-- The suspect transitions of one entity range (all of them when no range is set).
CREATE OR REPLACE TEMP VIEW bucket_suspects AS
WITH keyed AS (
    SELECT seq, entity, field, ts, writer, added, old, new, blind, version, base_version,
           source_ts, priority,
           -- the version that orders this write: NULL for an entity that is not fully
           -- versioned, so that its writes fall back to ts order
           CASE WHEN entity IN (SELECT entity FROM entity_flags WHERE mixed) THEN NULL
                ELSE version END
               AS order_version
    FROM range_events
),
ordered AS (
    SELECT *,
        row_number() OVER w AS rn,             -- position in the field's history, from 1
        -- prev(e); NULL for the field's first
        lag({'seq': seq, 'ts': ts, 'writer': writer, 'new': new, 'version': version,
             'source_ts': source_ts, 'priority': priority}) OVER w AS p,
        -- the value before prev: whether prev changed anything (oscillation)
        lag(new, 2) OVER w AS pp_new
    FROM keyed
    WINDOW w AS (PARTITION BY entity, field ORDER BY order_version, ts, seq)
),
unpacked AS (
    SELECT * EXCLUDE (p),
           p.seq AS p_seq, p.ts AS p_ts, p.writer AS p_writer, p.new AS p_new,
           p.version AS p_version, p.source_ts AS p_source_ts, p.priority AS p_priority
    FROM ordered
)
SELECT *
FROM unpacked
WHERE NOT coalesce(getvariable('audit_suspects_only'), false)
   OR (p_seq IS NOT NULL AND (
       -- suspect: not a plain continuation of prev. Either the chain does not link up
       -- (an unknown old links with anything),
       (NOT blind AND (old IS DISTINCT FROM p_new OR (added AND p_new IS NOT NULL)))
       -- or the writer had read an older version, or carries older data,
       OR base_version < p_version
       OR source_ts < p_source_ts
       -- or, close in time to prev, the field changed hands. Close: within the widest
       -- window any detector looks back over. Oscillation looks two changes back (W1, W2,
       -- W1 within its window), so the change before may be up to twice its window away
       -- from its own predecessor and must still be kept. (A constant here: as a one-row
       -- table joined in, it cost ~0.1 s a 9M-event range.)
       OR (abs(epoch(ts) - epoch(p_ts))
               <= greatest(2 * getvariable('audit_oscillation_window_s'),
                           getvariable('audit_priority_window_s'))::DOUBLE
           AND (writer <> p_writer OR priority IS DISTINCT FROM p_priority))
       -- or, for oscillation, which steps over writes that changed nothing: the write
       -- changed nothing, or the one before it did not.
       OR new IS NOT DISTINCT FROM p_new
       OR (rn > 2 AND p_new IS NOT DISTINCT FROM pp_new)));

-- The suspects of the range set (of the whole scope, when none is); the runner adds the
-- other ranges' (`INSERT INTO suspect_rows SELECT * FROM bucket_suspects`) before the
-- statement below.
CREATE OR REPLACE TEMP TABLE suspect_rows AS SELECT * FROM bucket_suspects;

-- What only the detectors read is looked up for the suspects, once for all ranges.
CREATE OR REPLACE TEMP TABLE transitions AS
SELECT s.seq, s.entity, s.field, s.ts, s.writer, e.write_id, s.added, s.old, s.new, s.blind,
       s.base_version, s.source_ts, s.priority, s.order_version,
       s.rn, s.p_seq, s.p_ts, s.p_writer, p.write_id AS p_write_id, p.old AS p_old, s.p_new,
       p.blind AS p_blind, s.p_version, s.p_source_ts, s.p_priority, s.pp_new,
       -- an effective change: the field did not already hold the value written
       -- (docs/contract.md §3, oscillation)
       s.p_seq IS NULL OR s.new IS DISTINCT FROM s.p_new AS effective
FROM suspect_rows s
JOIN scoped_events e ON e.seq = s.seq
LEFT JOIN scoped_events p ON p.seq = s.p_seq;

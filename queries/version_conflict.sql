-- version_conflict: the version numbers of an entity contradict each other.
--
-- Why it is a bug: a version is meant to name one state of the entity. When two different
-- writes both produced version N, both saved without compare-and-swap and one silently
-- replaced the other (a fork: two saves of a workspace from the same version).
-- When a write's version is not above the version it read, versions are not being
-- advanced at all, so no reader can detect that it is stale.
--
-- Fires for
--   rule fork:       two different writes of one entity produced the same version;
--   rule not_newer:  a write's version <= its base_version.
-- One finding per fork (per version) or per write; `field` is the field the witnesses
-- write when they all write one, else `$` (the entity as a whole).
--
-- Example (workspace-1):
--   t1  user           read v1, content: "a" -> "b"           -> version 2
--   t2  instantiation  read v1, indexingList: [] -> ["item"]   -> version 2
--   => two writes both claim version 2.
--
-- Reads the `range_events` view that transitions.sql makes (a fork spans fields, so it
-- needs every write of the entity, not only the suspect transitions): every event in scope,
-- or one entity range's when the runner sorts in ranges (it then runs this once a range,
-- queries/runner.py). Of those, only the entities that transitions.sql's one pass over
-- the events found a rule could fire for (`entity_flags`): a version claimed by two
-- events, or one not above the version read. Grouping every event by version was most
-- of this detector's cost. Witnesses in commit order. The other columns are the finding's
-- facts (read_version: not_newer only).
WITH candidates AS (
    SELECT entity, field, seq, ts, write_id, version, base_version
    FROM range_events
    WHERE version IS NOT NULL
      AND entity IN (SELECT entity FROM entity_flags
                     WHERE repeats_version OR version_not_newer)
),
forked AS (
    -- versions claimed by more than one write: events without write_id are writes of
    -- their own; one write of several fields claims its version once a field
    SELECT entity, version
    FROM candidates
    GROUP BY entity, version
    HAVING count(*) > 1 AND (count(write_id) < count(*) OR min(write_id) <> max(write_id))
),
forks AS (
    SELECT t.entity, t.version,
           'fork' AS rule,
           list(t.seq ORDER BY t.ts, t.seq) AS seqs,
           list_distinct(list(t.field)) AS fields,
           count(DISTINCT coalesce(t.write_id, 'seq:' || t.seq)) AS writes,
           NULL::BIGINT AS read_version,
           min(t.ts) AS first_ts
    FROM candidates t
    SEMI JOIN forked f ON t.entity = f.entity AND t.version = f.version
    GROUP BY t.entity, t.version
),
not_newer AS (
    SELECT entity, version,
           'not_newer' AS rule,
           list(seq ORDER BY ts, seq) AS seqs,
           list_distinct(list(field)) AS fields,
           1 AS writes,
           base_version AS read_version,
           min(ts) AS first_ts
    FROM candidates
    WHERE version <= base_version
    GROUP BY entity, version, base_version, coalesce(write_id, 'seq:' || seq)
)
SELECT
    entity,
    CASE WHEN len(fields) = 1 THEN fields[1] ELSE '$' END AS field,
    seqs,
    rule,
    version,
    writes,
    read_version
FROM (SELECT * FROM forks UNION ALL SELECT * FROM not_newer)
ORDER BY entity, first_ts, version, rule;

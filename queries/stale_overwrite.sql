-- stale_overwrite: older data replaced newer data.
--
-- Why it is a bug: the field ends up holding information that is already out of date,
-- typically a poller or a delayed event delivering a snapshot taken before the change it
-- now overwrites, or a save from a stale read putting back a value another writer had
-- already replaced. Nobody decided to go back; the newer state is simply gone.
--
-- Fires for e2 with e1 = prev(e2), unless e2 leaves the value e1 set (e2.new == e1.new:
-- nothing was replaced), when
--   rule source_ts: e2.source_ts < e1.source_ts (e2's data was produced before e1's), or
--   rule revert:    e2 sets the field back to a value it held before e1 while
--                   e2.base_version < e1.version (e2's writer had not seen e1).
-- A blind write's unknown old is not a value the field is known to have held.
--
-- Example (field content of workspace-1):
--   v2  workflow       read v1, content: "draft" -> "final"          -> version 2
--   v3  instantiation  read v1, content: "final" -> "draft" (whole-document save) -> v3
--   => "final" was replaced by the older "draft" from instantiation's stale read.
--
-- Reads the `transitions` table that transitions.sql makes; witnesses are [e1, e2]. The
-- other columns are the finding's facts.
WITH candidates AS (
    SELECT entity, field, rn, seq, p_seq, new, p_old, p_blind, source_ts, p_source_ts,
           base_version, p_version, p_ts, order_version
    FROM transitions
    WHERE p_seq IS NOT NULL
      AND new IS DISTINCT FROM p_new
      AND (source_ts < p_source_ts OR base_version < p_version)
),
-- values from further back than e1.old: any value the field held before e1, looked up in
-- the events (the transitions table may hold only the suspects), in commit order
reverted AS (
    SELECT DISTINCT c.seq
    FROM candidates c
    JOIN scoped_events t ON t.entity = c.entity AND t.field = c.field
    WHERE c.base_version < c.p_version
      AND (t.new IS NOT DISTINCT FROM c.new
           OR (NOT t.blind AND t.old IS NOT DISTINCT FROM c.new))
      AND CASE WHEN c.order_version IS NULL
               THEN (t.ts, t.seq) < (c.p_ts, c.p_seq)
               ELSE (t.version, t.ts, t.seq) < (c.p_version, c.p_ts, c.p_seq) END
)
SELECT
    c.entity,
    c.field,
    [c.p_seq, c.seq] AS seqs,
    CASE WHEN c.source_ts < c.p_source_ts THEN 'source_ts' ELSE 'revert' END AS rule,
    c.source_ts,
    c.p_source_ts AS overwritten_source_ts,
    c.base_version AS read_version,
    c.p_version AS overwritten_version
FROM candidates c
WHERE c.source_ts < c.p_source_ts
   OR (c.base_version < c.p_version AND NOT c.p_blind AND c.new IS NOT DISTINCT FROM c.p_old)
   OR c.seq IN (SELECT seq FROM reverted)
ORDER BY c.entity, c.field, c.rn;

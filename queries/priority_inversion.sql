-- priority_inversion: a less authoritative writer overwrote a more authoritative one.
--
-- Why it is a bug: the writer-priority rule (audit.merge_by_priority) ranks writers,
-- user 100 > workflow 80 > instantiation 60 > polling_sync 40, so that a background sync
-- can never undo what a person or the engine just set. A lower-priority write shortly
-- after a higher-priority one is exactly what that rule refuses, whether or not the writer
-- had seen the value.
--
-- Fires for e2 with e1 = prev(e2) when priority(e2) < priority(e1) and
-- abs(e2.ts - e1.ts) < window (commit order can disagree with clocks), unless e2 leaves the
-- value e1 set (e2.new == e1.new: what the more authoritative writer set stands). An
-- event's own `priority` wins over its writer's; writers not listed get the default.
--
-- Settings (queries/defaults.sql): audit_priority_window_s, audit_default_priority,
-- audit_writer_priorities.
--
-- Example (field content of block-A):
--   12:00:00  user          content: "v1" -> "my edit"
--   12:00:40  polling_sync  content: "my edit" -> "v1 from the server"
--   => polling_sync (40) overwrote user (100) 40 s later.
--
-- Reads the `transitions` table that transitions.sql makes; witnesses are [e1, e2]. The
-- other columns are the finding's facts (seconds_after < 0: e2's clock was behind e1's).
WITH params AS (
    SELECT getvariable('audit_priority_window_s')::DOUBLE AS win,
           getvariable('audit_default_priority')::INTEGER AS default_priority,
           getvariable('audit_writer_priorities')::MAP(VARCHAR, INTEGER) AS writers
),
close AS (
    SELECT t.entity, t.field, t.rn, t.seq, t.p_seq, t.ts, t.p_ts,
           coalesce(t.priority, params.writers[t.writer], params.default_priority)
               AS priority,
           coalesce(t.p_priority, params.writers[t.p_writer], params.default_priority)
               AS overwritten_priority
    FROM transitions t, params
    WHERE t.p_seq IS NOT NULL
      AND (t.writer <> t.p_writer OR t.priority IS DISTINCT FROM t.p_priority)
      AND t.new IS DISTINCT FROM t.p_new
      AND abs(epoch(t.ts) - epoch(t.p_ts)) < params.win
)
SELECT
    entity,
    field,
    [p_seq, seq] AS seqs,
    priority,
    overwritten_priority,
    round(epoch(ts) - epoch(p_ts), 3) AS seconds_after
FROM close
WHERE priority < overwritten_priority
ORDER BY entity, field, rn;

-- chain_break: a transition whose "before" value is not what the field last held.
--
-- Why it is a bug: the chain old -> new -> old -> new of a field must link up. When e2
-- says it changed the field from X but the previous recorded transition (e1) left Y, then
-- either e2's writer replaced a value it never observed (a stale write), or some write to
-- the field was not recorded at all (a gap in the instrumentation). Either way the history
-- cannot explain the value.
--
-- Fires for e2 with e1 = prev(e2) when
--   rule old:    e2.old != e1.new;
--   rule added:  e2 says `added` while e1 left a value.
-- A blind write (docs/contract.md §1) says nothing about the value before: never a break.
-- Severity warning: it is often the shadow of a lost_update on the same pair.
--
-- Example (field status of block-A):
--   t1  workflow      status: "processing" -> "done"
--   t2  polling_sync  status: "processing" -> "error"
--   => polling_sync replaced "done", which it never saw.
--
-- Reads the `transitions` table that transitions.sql makes; witnesses are [e1, e2]. The
-- other columns are the finding's facts.
SELECT
    entity,
    field,
    [p_seq, seq] AS seqs,
    CASE WHEN added AND p_new IS NOT NULL THEN 'added' ELSE 'old' END AS rule
FROM transitions
WHERE p_seq IS NOT NULL
  AND NOT blind
  AND (old IS DISTINCT FROM p_new OR (added AND p_new IS NOT NULL))
ORDER BY entity, field, rn;

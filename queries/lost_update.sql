-- lost_update: a write that overwrote another writer's change without having seen it.
--
-- Why it is a bug: the earlier change (e1) vanishes although nobody decided to undo it;
-- the later writer (e2) read the entity before e1 and wrote back its own stale copy. This
-- is the read-modify-write race, which compare-and-swap on a version would have refused.
--
-- Fires for e2 with e1 = prev(e2), when e1 and e2 belong to different writes and
--   rule version:  e2.base_version < e1.version         (e2 read an older version)
--   rule value:    without versions, e2.old == e1.old and e2.old != e1.new (both read the
--                  same value); never on a blind write's unknown old (docs/contract.md §1)
--
-- Severity error; warning when the writes converge (e2.new == e1.new): the field holds what
-- both wanted, and an effect is lost only if the writes were relative (two increments that
-- both read 10 and wrote 11 lose one).
--
-- Example (field indexingList.1 of block-A):
--   v1  instantiation  read v1, added  indexingList.1 = "item2"   -> version 2
--   v2  workflow       read v1, added  indexingList.1 = "item3"   -> version 3
--   => item2 is lost: workflow had read version 1 and never saw version 2.
--
-- Reads the `transitions` table that transitions.sql makes; witnesses are [e1, e2]. The
-- other columns are the finding's facts.
SELECT
    entity,
    field,
    [p_seq, seq] AS seqs,
    CASE WHEN new IS NOT DISTINCT FROM p_new THEN 'warning' ELSE 'error' END AS severity,
    CASE WHEN base_version IS NOT NULL AND p_version IS NOT NULL
         THEN 'version' ELSE 'value' END AS rule,
    base_version AS read_version,
    p_version AS overwritten_version,
    new IS NOT DISTINCT FROM p_new AS convergent
FROM transitions
WHERE p_seq IS NOT NULL
  -- different writes: a NULL write_id makes the event a write of its own
  AND (write_id IS NULL OR p_write_id IS NULL OR write_id <> p_write_id)
  AND CASE WHEN base_version IS NOT NULL AND p_version IS NOT NULL
           THEN base_version < p_version
           ELSE NOT blind AND NOT p_blind
                AND old IS NOT DISTINCT FROM p_old AND old IS DISTINCT FROM p_new
      END
ORDER BY entity, field, rn;

-- oscillation: a field that flaps between values or between writers within a short time.
--
-- Why it is a bug: two sources that both believe they own a field keep overwriting each
-- other (an SSE stream and a poller, say), so what users see flickers and what is saved
-- depends on who wrote last: in a browser, a status that flickers between what the SSE
-- stream and the poller last said.
--
-- A transition e, within the window of p = prev(e), is a flip when
--   it returns the field to the value it had before p (A -> B -> A), or
--   its writer hands the field back to the writer of pp = prev(p), itself within the
--   window of e (W1, W2, W1).
-- Flips that overlap or touch form one burst; a burst is reported once, when it contains
-- a return to an earlier value, or has at least `min_changes` changes with writers
-- alternating (alternation needs three changes at least).
--
-- Settings: SET VARIABLE audit_oscillation_window_s = 60;      (seconds)
--           SET VARIABLE audit_oscillation_min_changes = 3;
--
-- Example (field indexingList.0.status of block-A):
--   12:00:00  workflow      "processing" -> "done"    (SSE)
--   12:00:02  polling_sync  "done"       -> "error"   (a poll answer from before)
--   12:00:03  workflow      "error"      -> "done"    (SSE again)
--
-- Reads the `transitions` table that transitions.sql makes; witnesses are the burst's
-- transitions in commit order.
WITH params AS (
    SELECT coalesce(getvariable('audit_oscillation_window_s'), 60)::DOUBLE AS win,
           coalesce(getvariable('audit_oscillation_min_changes'), 3)::BIGINT AS min_changes
),
near AS (
    -- transitions close to prev that went back to prev's old value or changed hands
    SELECT t.*
    FROM transitions t, params
    WHERE t.p_seq IS NOT NULL
      AND abs(epoch(t.ts) - epoch(t.p_ts)) <= params.win
      AND (t.new IS NOT DISTINCT FROM t.p_old OR t.writer <> t.p_writer)
),
flips AS (
    SELECT t.*,
           p.p_seq AS pp_seq,
           (t.new IS NOT DISTINCT FROM t.p_old AND t.p_old IS DISTINCT FROM t.p_new)
               AS returned,
           -- prev's own prev (pp) is found through prev's row
           coalesce(t.writer <> t.p_writer AND t.writer = p.p_writer
                    AND abs(epoch(t.ts) - epoch(p.p_ts)) <= params.win, false) AS handed_back
    FROM near t
    CROSS JOIN params
    LEFT JOIN transitions p ON p.seq = t.p_seq
),
linked AS (
    SELECT entity, field, rn, seq, p_seq, pp_seq, ts, returned, handed_back,
           -- the first transition this flip involves
           CASE WHEN handed_back THEN rn - 2 ELSE rn - 1 END AS start_rn
    FROM flips
    WHERE returned OR handed_back
),
marked AS (
    SELECT *,
           -- a new burst starts when this flip does not reach back to the previous one
           CASE WHEN start_rn <= lag(rn) OVER (PARTITION BY entity, field ORDER BY rn)
                THEN 0 ELSE 1 END AS starts_burst
    FROM linked
),
numbered AS (
    SELECT *,
           sum(starts_burst) OVER (PARTITION BY entity, field ORDER BY rn
                                   ROWS UNBOUNDED PRECEDING) AS burst
    FROM marked
),
bursts AS (
    SELECT entity, field, burst,
           min(start_rn) AS first_rn,
           max(rn) AS last_rn,
           count(*) AS flips,
           count(*) FILTER (WHERE returned) AS returns,
           count(*) FILTER (WHERE handed_back) AS handbacks,
           -- (rn, seq) of every transition involved, to list them in commit order
           list_sort(list_distinct(flatten(list(
               CASE WHEN handed_back THEN [[rn - 2, pp_seq], [rn - 1, p_seq], [rn, seq]]
                    ELSE [[rn - 1, p_seq], [rn, seq]] END)))) AS members
    FROM numbered
    GROUP BY entity, field, burst
)
SELECT
    b.entity,
    b.field,
    list_transform(b.members, lambda m: m[2]) AS seqs,
    b.flips,
    b.returns,
    b.last_rn - b.first_rn + 1 AS changes,
    p.win AS window_s
FROM bursts b, params p
WHERE b.returns > 0 OR (b.handbacks > 0 AND b.last_rn - b.first_rn + 1 >= p.min_changes)
ORDER BY b.entity, b.field, b.first_rn;

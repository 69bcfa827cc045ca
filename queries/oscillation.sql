-- oscillation: a field that flaps between values or between writers within a short time.
--
-- Why it is a bug: two sources that both believe they own a field keep overwriting each
-- other (an SSE stream and a poller, say), so what users see flickers and what is saved
-- depends on who wrote last: in a browser, a status that flickers between what the SSE
-- stream and the poller last said.
--
-- Only effective changes count: a write whose new value the field already held changed
-- nothing (a poller echoing the status it just read) and is stepped over. An effective
-- change e, within the window of c1 (the effective change before it), is a flip when
--   returned:     e puts back the value the field held before c1 (A -> B -> A), and e's
--                 writer is not c1's: one writer undoing its own change (a re-run, a
--                 retry) is no conflict;
--   handed back:  e's writer takes the field back from c1's writer, who had taken it from
--                 e's writer in c2, the change before c1, itself within the window of e
--                 (W1, W2, W1).
-- Flips that overlap or touch form one burst; a burst is reported once, when it contains
-- a return, or has at least `min_changes` changes with writers alternating (alternation
-- needs three changes at least).
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
-- changes in commit order. The other columns are the finding's facts: flips, returns,
-- handbacks, changes, window_s and span_s (seconds from the first change to the last).
WITH params AS (
    SELECT coalesce(getvariable('audit_oscillation_window_s'), 60)::DOUBLE AS win,
           coalesce(getvariable('audit_oscillation_min_changes'), 3)::BIGINT AS min_changes
),
islands AS (
    -- `transitions` may hold only the suspects; a run of consecutive positions (an island)
    -- is a complete stretch of the field's history, and it holds every change a flip
    -- compares (transitions.sql keeps them)
    SELECT *, rn - row_number() OVER (PARTITION BY entity, field ORDER BY rn) AS island
    FROM transitions
),
effective_changes AS (
    SELECT entity, field, island, rn, seq, ts, writer, new,
           -- the value the field held before this change; unknown before a blind write
           -- that opens the recorded history
           CASE WHEN p_seq IS NOT NULL THEN p_new ELSE old END AS before,
           p_seq IS NULL AND blind AS before_unknown
    FROM islands
    WHERE effective
),
changes AS (
    SELECT *,
           lag(seq) OVER c AS c1_seq,
           lag(rn) OVER c AS c1_rn,
           lag(ts) OVER c AS c1_ts,
           lag(writer) OVER c AS c1_writer,
           lag(before) OVER c AS c1_before,
           lag(before_unknown) OVER c AS c1_before_unknown,
           lag(seq, 2) OVER c AS c2_seq,
           lag(rn, 2) OVER c AS c2_rn,
           lag(ts, 2) OVER c AS c2_ts,
           lag(writer, 2) OVER c AS c2_writer
    FROM effective_changes
    WINDOW c AS (PARTITION BY entity, field, island ORDER BY rn)
),
hands AS (
    SELECT changes.*,
           writer <> c1_writer AND abs(epoch(ts) - epoch(c1_ts)) <= params.win
               AS changed_hands
    FROM changes, params
    WHERE c1_seq IS NOT NULL
),
flips AS (
    SELECT hands.*,
           changed_hands AND NOT c1_before_unknown
               AND new IS NOT DISTINCT FROM c1_before AS returned,
           coalesce(changed_hands AND writer = c2_writer
                    AND abs(epoch(ts) - epoch(c2_ts)) <= params.win, false) AS handed_back
    FROM hands, params
    WHERE changed_hands
),
linked AS (
    SELECT *,
           -- the first change this flip involves
           CASE WHEN handed_back THEN c2_rn ELSE c1_rn END AS start_rn
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
           count(*) AS flips,
           count(*) FILTER (WHERE returned) AS returns,
           count(*) FILTER (WHERE handed_back) AS handbacks,
           -- (rn, seq) of every change involved, to list them in commit order
           list_sort(list_distinct(flatten(list(
               CASE WHEN handed_back THEN [[c2_rn, c2_seq], [c1_rn, c1_seq], [rn, seq]]
                    ELSE [[c1_rn, c1_seq], [rn, seq]] END)))) AS members,
           max(greatest(epoch(ts), epoch(c1_ts),
                        CASE WHEN handed_back THEN epoch(c2_ts) END))
             - min(least(epoch(ts), epoch(c1_ts),
                         CASE WHEN handed_back THEN epoch(c2_ts) END)) AS span_s
    FROM numbered
    GROUP BY entity, field, burst
)
SELECT
    b.entity,
    b.field,
    list_transform(b.members, lambda m: m[2]) AS seqs,
    b.flips,
    b.returns,
    b.handbacks,
    len(b.members) AS changes,
    p.win AS window_s,
    round(b.span_s, 3) AS span_s
FROM bursts b, params p
WHERE b.returns > 0 OR (b.handbacks > 0 AND len(b.members) >= p.min_changes)
ORDER BY b.entity, b.field, b.first_rn;

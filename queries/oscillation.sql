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
-- Settings (queries/defaults.sql): audit_oscillation_window_s (the window, in seconds),
-- audit_oscillation_min_changes.
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
    SELECT getvariable('audit_oscillation_window_s')::DOUBLE AS win,
           getvariable('audit_oscillation_min_changes')::BIGINT AS min_changes
),
positions AS (
    -- `transitions` may hold only the suspects. A run of consecutive positions (an island)
    -- is a complete stretch of the field's history: the writes that changed nothing, and
    -- the write after each, are always there (transitions.sql).
    SELECT *, rn - row_number() OVER (PARTITION BY entity, field ORDER BY rn) AS island,
           -- the change prev made, told by this row when prev did change the value: who,
           -- when, and the value the field held before it (unknown before a blind write
           -- that opens the recorded history)
           CASE WHEN p_seq IS NOT NULL AND (rn = 2 OR p_new IS DISTINCT FROM pp_new)
                THEN {'seq': p_seq, 'rn': rn - 1, 'ts': p_ts, 'writer': p_writer,
                      'before': CASE WHEN rn = 2 THEN p_old ELSE pp_new END,
                      'before_unknown': rn = 2 AND p_blind} END AS prev_change
    FROM transitions
),
stepped AS (
    -- c1: the change before this write, stepping back over the writes in between that
    -- changed nothing (they are in this island, and the one after c1 tells of it)
    SELECT *,
           last_value(prev_change IGNORE NULLS) OVER (
               PARTITION BY entity, field, island ORDER BY rn
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c1
    FROM positions
),
changes AS (
    SELECT entity, field, rn, seq, ts, writer, new, c1 FROM stepped WHERE effective
),
pairs AS (
    -- c2: the change before c1, which c1 itself tells of. When c1 took the field from
    -- another writer close enough to be handed back, c1 is a suspect and here.
    SELECT e.*, before_c1.c1 AS c2,
           e.writer <> e.c1.writer AND abs(epoch(e.ts) - epoch(e.c1.ts)) <= params.win
               AS changed_hands
    FROM changes e
    CROSS JOIN params
    LEFT JOIN changes before_c1 ON before_c1.seq = e.c1.seq
    WHERE e.c1 IS NOT NULL
),
flips AS (
    SELECT pairs.*,
           changed_hands AND NOT c1.before_unknown AND new IS NOT DISTINCT FROM c1.before
               AS returned,
           coalesce(changed_hands AND writer = c2.writer
                    AND abs(epoch(ts) - epoch(c2.ts)) <= params.win, false) AS handed_back
    FROM pairs, params
),
linked AS (
    SELECT entity, field, rn, seq, ts, returned, handed_back,
           c1.seq AS c1_seq, c1.rn AS c1_rn, c1.ts AS c1_ts,
           c2.seq AS c2_seq, c2.rn AS c2_rn, c2.ts AS c2_ts,
           -- the first change this flip involves
           CASE WHEN handed_back THEN c2.rn ELSE c1.rn END AS start_rn
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

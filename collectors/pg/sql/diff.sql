-- The jsonb diff of docs/diff.md in SQL: which fields one row change changed.
--
-- The capture trigger (capture.sql) diffs the row before and after as one JSON document
-- whose top-level keys are the columns, so a jsonb column's inside gets dotted paths
-- (`preview_json.nodes[block-A].data.content`), keyed lists by `id` by default.
--
-- Patterns (list keys and excludes) arrive already turned into LIKE patterns (`*` -> `%`,
-- with `%`, `_` and `\` escaped; collectors/pg/capture.py), so that a path is tested with a
-- plain `LIKE`. List keys come as two arrays, patterns and keys, first match first; a NULL
-- key means "by position".
--
-- Where the SQL side differs from docs/diff.md: nowhere in the rules. In the values:
-- numbers are PostgreSQL numerics (no float rounding; 1e2 is 100, an integer key), and
-- non-JSON column types are written as to_jsonb writes them (timestamps as ISO text).
--
-- Written for the trigger's hot path, where every statement and every PL/pgSQL expression
-- has a fixed cost: `diff` is one recursive query, which PostgreSQL inlines into the
-- trigger's INSERT (one statement per row change), and it walks only into the children that
-- differ. The PL/pgSQL functions run only for lists and for values that must lose excluded
-- parts. (bench/pg.py measures what it costs a writer.)

DO $$
BEGIN
    IF to_regtype('conflict_audit.change') IS NULL THEN
        CREATE TYPE conflict_audit.change AS (field text, change text, old jsonb, new jsonb);
    END IF;
END
$$;

-- Whether an array may be diffed by `k`: every element an object holding `k` with a string
-- or integer value (not a boolean, not a float), and no key text twice. An empty array may.
CREATE OR REPLACE FUNCTION conflict_audit.keyed(arr jsonb, k text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (SELECT coalesce(
                bool_and(coalesce(jsonb_typeof(e -> k) = 'string'
                                  OR (jsonb_typeof(e -> k) = 'number' AND e ->> k ~ '^-?[0-9]+$'),
                                  false))
                AND count(DISTINCT e ->> k) = count(*),
                true)
            FROM jsonb_array_elements(arr) AS e);
END
$$;

-- The key an array at `path` is diffed by: the first list_keys pattern that matches the
-- path names it, and every element of the arrays given must carry it (NULL: by position).
CREATE OR REPLACE FUNCTION conflict_audit.list_key(path text, patterns text[], keys text[],
                                                   a jsonb, b jsonb DEFAULT '[]')
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(patterns), 0) LOOP
        IF path LIKE patterns[i] THEN
            IF keys[i] IS NOT NULL AND conflict_audit.keyed(a, keys[i])
               AND conflict_audit.keyed(b, keys[i]) THEN
                RETURN keys[i];
            END IF;
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The path of an element of the array at `path`: by key in brackets (`\` and `]` escaped),
-- else by index after a dot (no dot before the first step).
CREATE OR REPLACE FUNCTION conflict_audit.element_path(path text, key text, index bigint)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN key IS NOT NULL
                THEN path || '[' || replace(replace(key, '\', '\\'), ']', '\]') || ']'
                WHEN path = '' THEN index::text
                ELSE path || '.' || index END
$$;

-- A value an event carries, without its excluded parts. Inside it, an array's elements are
-- addressed by key when the keyed rule accepts that array on its own, else by index.
CREATE OR REPLACE FUNCTION conflict_audit.strip(v jsonb, path text, list_patterns text[],
                                                list_keys text[], excl text[])
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    live  text[];   -- the patterns that may match a path below this one
    key   text;
    item  record;
    p     text;
    out   jsonb;
BEGIN
    IF excl IS NULL OR jsonb_typeof(v) NOT IN ('object', 'array') OR v IS NULL THEN
        RETURN v;
    END IF;
    -- A pattern whose literal start (up to its first wildcard or escape) leads elsewhere
    -- cannot match below here: dropping it keeps a large inserted document from being
    -- walked for a pattern such as `content._meta`.
    live := ARRAY(SELECT x FROM unnest(excl) AS x
                  WHERE starts_with(path, substring(x FROM '^[^%\\]*'))
                     OR starts_with(substring(x FROM '^[^%\\]*'), path));
    IF cardinality(live) = 0 THEN
        RETURN v;
    END IF;
    IF jsonb_typeof(v) = 'object' THEN
        out := '{}';
        FOR item IN SELECT e.key AS k, e.value AS val FROM jsonb_each(v) AS e LOOP
            p := CASE WHEN path = '' THEN item.k ELSE path || '.' || item.k END;
            CONTINUE WHEN p LIKE ANY (live);
            out := out || jsonb_build_object(item.k, conflict_audit.strip(
                item.val, p, list_patterns, list_keys, live));
        END LOOP;
        RETURN out;
    END IF;
    key := conflict_audit.list_key(path, list_patterns, list_keys, v);
    out := '[]';
    FOR item IN
        SELECT conflict_audit.element_path(path, e ->> key, n - 1) AS p, e
        FROM jsonb_array_elements(v) WITH ORDINALITY AS t(e, n)
        ORDER BY n
    LOOP
        CONTINUE WHEN item.p LIKE ANY (live);
        out := out || jsonb_build_array(conflict_audit.strip(item.e, item.p, list_patterns,
                                                             list_keys, live));
    END LOOP;
    RETURN out;
END
$$;

-- The children of two arrays at `path` that differ, with their paths: by key where the
-- list keys and the elements allow it, else by position (a value NULL: absent on that side).
CREATE OR REPLACE FUNCTION conflict_audit.elements(path text, a jsonb, b jsonb,
                                                   list_patterns text[], list_keys text[])
RETURNS TABLE (child_path text, va jsonb, vb jsonb) LANGUAGE plpgsql STABLE AS $$
DECLARE
    key  text := conflict_audit.list_key(path, list_patterns, list_keys, a, b);
BEGIN
    IF key IS NULL THEN
        RETURN QUERY
            SELECT conflict_audit.element_path(path, NULL, coalesce(x.n, y.n) - 1), x.e, y.e
            FROM jsonb_array_elements(a) WITH ORDINALITY AS x(e, n)
                 FULL JOIN jsonb_array_elements(b) WITH ORDINALITY AS y(e, n) ON x.n = y.n
            WHERE x.e IS DISTINCT FROM y.e;
    ELSE  -- wherever the elements stand
        RETURN QUERY
            SELECT conflict_audit.element_path(path, coalesce(x.k, y.k), NULL), x.e, y.e
            FROM (SELECT e ->> key AS k, e FROM jsonb_array_elements(a) AS e) AS x
                 FULL JOIN (SELECT e ->> key AS k, e FROM jsonb_array_elements(b) AS e) AS y
                 ON x.k = y.k
            WHERE x.e IS DISTINCT FROM y.e;
    END IF;
END
$$;

-- The changes that turn document `a` into `b`: (field, change, old, new), NULL = absent.
-- `walk` holds every pair of values that differ, from the root down: the children of two
-- containers of one kind are walked into (object keys; list elements), anything else that
-- differs is a change at its path ('' is the root, `$`).
CREATE OR REPLACE FUNCTION conflict_audit.diff(a jsonb, b jsonb, list_patterns text[],
                                               list_keys text[], excl text[])
RETURNS SETOF conflict_audit.change LANGUAGE sql STABLE AS $$
    WITH RECURSIVE walk (path, va, vb) AS (
        SELECT '', a, b
        UNION ALL
        SELECT c.path, c.va, c.vb
        FROM walk AS w
        CROSS JOIN LATERAL (
            -- (each branch runs only for its kind of container: its condition names no
            -- column of its own, so it gates the branch)
            -- object keys whose values differ, or that only `vb` has
            SELECT CASE WHEN w.path = '' THEN y.key ELSE w.path || '.' || y.key END AS path,
                   w.va -> y.key AS va, y.value AS vb
            FROM jsonb_each(w.vb) AS y
            WHERE jsonb_typeof(w.va) = 'object' AND w.va -> y.key IS DISTINCT FROM y.value
            UNION ALL
            -- object keys only `va` has (if any: then va || vb has more than vb)
            SELECT CASE WHEN w.path = '' THEN x.key ELSE w.path || '.' || x.key END,
                   x.value, NULL
            FROM jsonb_each(w.va) AS x
            WHERE jsonb_typeof(w.va) = 'object' AND (w.va || w.vb) <> w.vb AND NOT w.vb ? x.key
            UNION ALL
            SELECT * FROM conflict_audit.elements(w.path, w.va, w.vb, list_patterns, list_keys)
            WHERE jsonb_typeof(w.va) = 'array'
        ) AS c
        WHERE jsonb_typeof(w.va) IN ('object', 'array') AND jsonb_typeof(w.va) = jsonb_typeof(w.vb)
          AND w.va <> w.vb
          AND (excl IS NULL OR NOT c.path LIKE ANY (excl))
    )
    SELECT coalesce(nullif(path, ''), '$'),
           CASE WHEN va IS NULL THEN 'added' WHEN vb IS NULL THEN 'removed' ELSE 'changed' END,
           CASE WHEN excl IS NOT NULL AND jsonb_typeof(va) IN ('object', 'array')
                THEN conflict_audit.strip(va, path, list_patterns, list_keys, excl) ELSE va END,
           CASE WHEN excl IS NOT NULL AND jsonb_typeof(vb) IN ('object', 'array')
                THEN conflict_audit.strip(vb, path, list_patterns, list_keys, excl) ELSE vb END
    FROM walk
    -- jsonb equality is JSON equality: 1 = 1.0, true <> 1, key order ignored
    WHERE va IS NULL OR vb IS NULL
       OR (va <> vb AND NOT (jsonb_typeof(va) IN ('object', 'array')
                             AND jsonb_typeof(va) = jsonb_typeof(vb)))
$$;

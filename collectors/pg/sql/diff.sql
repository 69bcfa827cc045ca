-- The jsonb diff of docs/diff.md in SQL: which fields one row change changed.
--
-- The capture trigger (capture.sql) diffs the row before and after as one JSON document
-- whose top-level keys are the columns, so a jsonb column's inside gets dotted paths
-- (`preview_json.nodes[block-A].data.content`), keyed lists by `id` by default.
--
-- Patterns (list keys and excludes) arrive already turned into LIKE patterns (`*` -> `%`,
-- with `%`, `_` and `\` escaped; collectors/pg/capture.py), so that a path is tested
-- with a plain `LIKE`. list_keys is a JSON array of [pattern, key] pairs, first match first
-- (a jsonb object would not keep their order); a null key means "by position".
--
-- Where the SQL side differs from docs/diff.md: nowhere in the rules. In the values:
-- numbers are PostgreSQL numerics (no float rounding; 1e2 is 100, an integer key), and
-- non-JSON column types are written as to_jsonb writes them (timestamps as ISO text).

-- The key of the first list_keys pattern that matches the array's path (NULL: positional).
CREATE OR REPLACE FUNCTION conflict_audit.list_key(path text, list_keys jsonb)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT pair ->> 1
    FROM jsonb_array_elements(list_keys) WITH ORDINALITY AS p(pair, n)
    WHERE path LIKE pair ->> 0
    ORDER BY n
    LIMIT 1
$$;

-- Whether an array may be diffed by `k`: every element an object holding `k` with a string
-- or integer value (not a boolean, not a float), and no key text twice. An empty array may.
CREATE OR REPLACE FUNCTION conflict_audit.keyed(arr jsonb, k text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        bool_and(coalesce(jsonb_typeof(e -> k) = 'string'
                          OR (jsonb_typeof(e -> k) = 'number' AND e ->> k ~ '^-?[0-9]+$'),
                          false))
        AND count(DISTINCT e ->> k) = count(*),
        true)
    FROM jsonb_array_elements(arr) AS e
$$;

-- The path of a child: `a.b` for an object key or a list index, `l[key]` for a keyed element
-- (with `\` and `]` escaped inside the brackets); no dot before the first step.
CREATE OR REPLACE FUNCTION conflict_audit.child_path(path text, step text, keyed boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN keyed THEN path || '[' || replace(replace(step, '\', '\\'), ']', '\]') || ']'
        WHEN path = '' THEN step
        ELSE path || '.' || step
    END
$$;

-- The pairs of children of two containers of one kind that differ, with their paths:
-- object keys, list elements by position, or list elements by key. NULL = absent.
CREATE OR REPLACE FUNCTION conflict_audit.children(a jsonb, b jsonb, path text, key text)
RETURNS TABLE (child_path text, before_value jsonb, after_value jsonb)
LANGUAGE sql IMMUTABLE AS $$
    SELECT conflict_audit.child_path(path, coalesce(x.key, y.key), false), x.value, y.value
    FROM jsonb_each(a) AS x FULL JOIN jsonb_each(b) AS y ON x.key = y.key
    WHERE jsonb_typeof(a) = 'object' AND x.value IS DISTINCT FROM y.value
    UNION ALL
    SELECT conflict_audit.child_path(path, (coalesce(x.n, y.n) - 1)::text, false), x.e, y.e
    FROM jsonb_array_elements(a) WITH ORDINALITY AS x(e, n)
         FULL JOIN jsonb_array_elements(b) WITH ORDINALITY AS y(e, n) ON x.n = y.n
    WHERE jsonb_typeof(a) = 'array' AND key IS NULL AND x.e IS DISTINCT FROM y.e
    UNION ALL
    SELECT conflict_audit.child_path(path, coalesce(x.k, y.k), true), x.e, y.e
    FROM (SELECT e ->> key AS k, e FROM jsonb_array_elements(a) AS e) AS x
         FULL JOIN (SELECT e ->> key AS k, e FROM jsonb_array_elements(b) AS e) AS y
         ON x.k = y.k
    WHERE jsonb_typeof(a) = 'array' AND key IS NOT NULL AND x.e IS DISTINCT FROM y.e
$$;

-- A value an event carries, without its excluded parts. Inside it, an array's elements are
-- addressed by key when the keyed rule accepts that array on its own, else by index.
CREATE OR REPLACE FUNCTION conflict_audit.strip(v jsonb, path text, list_keys jsonb,
                                                excl text[])
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    live  text[];   -- the patterns that may match a path below this one
    key   text;
    item  record;
    out   jsonb;
BEGIN
    IF excl IS NULL OR jsonb_typeof(v) NOT IN ('object', 'array') THEN
        RETURN v;
    END IF;
    -- A pattern whose literal start (up to its first wildcard or escape) leads elsewhere
    -- cannot match below here: dropping it keeps a large inserted document from being
    -- walked for a pattern such as `content._meta`.
    live := ARRAY(SELECT p FROM unnest(excl) AS p
                  WHERE starts_with(path, substring(p FROM '^[^%\\]*'))
                     OR starts_with(substring(p FROM '^[^%\\]*'), path));
    IF cardinality(live) = 0 THEN
        RETURN v;
    END IF;
    IF jsonb_typeof(v) = 'object' THEN
        out := '{}';
        FOR item IN SELECT e.key AS k, e.value AS val FROM jsonb_each(v) AS e LOOP
            CONTINUE WHEN conflict_audit.child_path(path, item.k, false) LIKE ANY (live);
            out := out || jsonb_build_object(item.k, conflict_audit.strip(
                item.val, conflict_audit.child_path(path, item.k, false), list_keys, live));
        END LOOP;
        RETURN out;
    END IF;
    key := conflict_audit.list_key(path, list_keys);
    IF key IS NOT NULL AND NOT conflict_audit.keyed(v, key) THEN
        key := NULL;
    END IF;
    out := '[]';
    FOR item IN
        SELECT conflict_audit.child_path(path, coalesce(e ->> key, (n - 1)::text),
                                         key IS NOT NULL) AS p, e AS val
        FROM jsonb_array_elements(v) WITH ORDINALITY AS t(e, n)
        ORDER BY n
    LOOP
        CONTINUE WHEN item.p LIKE ANY (live);
        out := out || jsonb_build_array(conflict_audit.strip(item.val, item.p, list_keys, live));
    END LOOP;
    RETURN out;
END
$$;

-- The changes that turn `a` into `b` below `path` ('' at the root, reported as `$`).
CREATE OR REPLACE FUNCTION conflict_audit.diff(a jsonb, b jsonb, path text, list_keys jsonb,
                                               excl text[])
RETURNS TABLE (field text, change text, old_value jsonb, new_value jsonb)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    kind  text := jsonb_typeof(a);
    key   text;
    c     record;
BEGIN
    IF a = b THEN  -- jsonb equality is JSON equality: 1 = 1.0, true <> 1, key order ignored
        RETURN;
    END IF;
    IF kind NOT IN ('object', 'array') OR kind <> jsonb_typeof(b) THEN
        RETURN QUERY SELECT coalesce(nullif(path, ''), '$'), 'changed',
                            conflict_audit.strip(a, path, list_keys, excl),
                            conflict_audit.strip(b, path, list_keys, excl);
        RETURN;
    END IF;
    IF kind = 'array' THEN
        key := conflict_audit.list_key(path, list_keys);
        IF key IS NOT NULL AND NOT (conflict_audit.keyed(a, key) AND conflict_audit.keyed(b, key))
        THEN
            key := NULL;
        END IF;
    END IF;
    FOR c IN SELECT * FROM conflict_audit.children(a, b, path, key) LOOP
        CONTINUE WHEN excl IS NOT NULL AND c.child_path LIKE ANY (excl);
        IF c.before_value IS NULL THEN
            RETURN QUERY SELECT c.child_path, 'added', NULL::jsonb,
                                conflict_audit.strip(c.after_value, c.child_path, list_keys, excl);
        ELSIF c.after_value IS NULL THEN
            RETURN QUERY SELECT c.child_path, 'removed',
                                conflict_audit.strip(c.before_value, c.child_path, list_keys, excl),
                                NULL::jsonb;
        ELSIF jsonb_typeof(c.before_value) IN ('object', 'array')
              AND jsonb_typeof(c.before_value) = jsonb_typeof(c.after_value) THEN
            RETURN QUERY SELECT * FROM conflict_audit.diff(c.before_value, c.after_value,
                                                           c.child_path, list_keys, excl);
        ELSE  -- two scalars, or a scalar against a container: one change, no call deeper
            RETURN QUERY SELECT c.child_path, 'changed',
                                conflict_audit.strip(c.before_value, c.child_path, list_keys, excl),
                                conflict_audit.strip(c.after_value, c.child_path, list_keys, excl);
        END IF;
    END LOOP;
END
$$;

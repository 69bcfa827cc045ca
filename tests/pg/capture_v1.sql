-- The capture objects of schema version 1, exactly as `audit pg install` created them before
-- the diff moved from the trigger to the pull (schema.sql, diff.sql and capture.sql of that
-- version, one after the other). tests/pg/test_pg_upgrade.py installs them to prove that a
-- database captured that way is upgraded without losing a row.

-- The capture side of `audit pg` in a PostgreSQL database: a schema of its own, the
-- append-only table the triggers write transitions into, and a little bookkeeping.
--
-- Safe to run again: every statement leaves existing objects (and captured rows) alone.
-- Nothing here is granted to PUBLIC: the capture trigger runs as the role that installed it
-- (SECURITY DEFINER, see capture.sql), so the roles that write the audited tables need no
-- access to this schema and cannot forge captured rows.

CREATE SCHEMA IF NOT EXISTS conflict_audit;

-- source_id names this capture in event ids, so that two databases pulled into one store
-- never share an id; schema_version is for upgrades of these objects.
CREATE TABLE IF NOT EXISTS conflict_audit.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO conflict_audit.meta (key, value)
VALUES ('source_id', left(replace(gen_random_uuid()::text, '-', ''), 16)),
       ('schema_version', '1')
ON CONFLICT (key) DO NOTHING;

-- Numbers the row changes: write_id = '<transaction id>.<row change>'.
CREATE SEQUENCE IF NOT EXISTS conflict_audit.row_changes;

-- One row per field one row change changed: the transition event of docs/contract.md §1,
-- minus what the pull adds (event ids, attrs.pg).
CREATE TABLE IF NOT EXISTS conflict_audit.transitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. Ids are taken before commit, so they do not commit in order;
    -- the pull tracks transactions instead (pull.sql).
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- clock_timestamp() at the row change, taken while the row is locked: for one row,
    -- the order of these times is the order in which the changes committed.
    ts           timestamptz NOT NULL,
    op           text NOT NULL,        -- INSERT | UPDATE | DELETE
    entity       text NOT NULL,        -- TABLE:KEY
    entity_type  text,
    field        text NOT NULL,        -- column, or column.path into a jsonb column
    change       text NOT NULL,        -- changed | added | removed
    old          jsonb,                -- NULL: absent (JSON null is 'null')
    new          jsonb,
    writer       text NOT NULL,
    actor        text,
    write_id     text NOT NULL,
    base_version bigint,
    version      bigint,
    source_ts    text,                 -- audit.source_ts as set; the ingest validates it
    attrs        jsonb                 -- settings that could not be used, with their values
);
CREATE INDEX IF NOT EXISTS transitions_xid ON conflict_audit.transitions (xid);

-- Append-only: a captured row is never changed. Deleting rows every store has pulled
-- (to keep the table small) is the owner's business and stays possible.
CREATE OR REPLACE FUNCTION conflict_audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'conflict_audit.transitions is append-only: captured rows are not updated';
END
$$;
CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE ON conflict_audit.transitions
    FOR EACH ROW EXECUTE FUNCTION conflict_audit.refuse_change();

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

-- The capture trigger: every insert, update and delete of an audited table becomes one
-- conflict_audit.transitions row per changed field (docs/contract.md §6).
--
-- Installed per table by `audit pg install` as
--   CREATE TRIGGER conflict_audit_capture AFTER INSERT OR UPDATE OR DELETE ON <table>
--   FOR EACH ROW EXECUTE FUNCTION conflict_audit.capture(<entity prefix>, <entity type>,
--       <key columns>, <version column>, <exclude patterns>, <list patterns>, <list keys>)
-- with array literals for the lists (`\d <table>` shows a table's settings).
--
-- Who wrote, read from the writing transaction (`SET LOCAL audit.writer = 'workflow'`):
--   writer        audit.writer, else application_name, else the role (SET ROLE's, else the
--                 login role: the function runs as its owner, so current_user would lie)
--   actor         audit.actor
--   source_ts     audit.source_ts
--   base_version  audit.base_version, else version - 1
-- A setting that is not usable (base_version not an integer, source_ts not RFC 3339) is
-- left out and kept in attrs.invalid_settings: the trigger never fails the writer's
-- statement over it.
--
-- Versions (with a version column): `version` is the column's new value, or its old value
-- + 1 for a delete (a delete is one more write); without one, none are claimed.
--
-- A rewrite: with a version column, an UPDATE that changes no captured field and does not
-- move the version forward still claims a version, one that was there already. That is
-- what the read-modify-write race looks like from inside the database: two writers read
-- version 4 with value 10, both write value 11 and version 5, and the second finds the row
-- already so. Its write is recorded as one `changed` event per captured column with
-- old = new (attrs.rewrite), so that `lost_update` pairs it with the write it overwrote
-- unseen. A trigger cannot know which columns or paths the statement meant, so these events
-- are per column, jsonb columns whole. Without a version column an UPDATE that changes
-- nothing records nothing.
--
-- Cost: bench/pg.py; README "Capturing at the database".

-- A row written as it was: every captured column, rewritten with its own value.
CREATE OR REPLACE FUNCTION conflict_audit.rewritten(doc jsonb, list_patterns text[],
                                                    list_keys text[], excl text[])
RETURNS SETOF conflict_audit.change LANGUAGE sql STABLE AS $$
    SELECT e.key, 'changed', kept.value, kept.value
    FROM jsonb_each(doc) AS e
    CROSS JOIN LATERAL (
        SELECT CASE WHEN excl IS NOT NULL AND jsonb_typeof(e.value) IN ('object', 'array')
                    THEN conflict_audit.strip(e.value, e.key, list_patterns, list_keys, excl)
                    ELSE e.value END AS value
    ) AS kept
    WHERE excl IS NULL OR NOT e.key LIKE ANY (excl)
$$;

-- The entity key of a row: its key column's value, or its key columns' joined by ','. A
-- NULL (a nullable --key column) is written as nothing: the row's write must not fail.
CREATE OR REPLACE FUNCTION conflict_audit.key_text(row_doc jsonb, key_columns text[])
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF cardinality(key_columns) = 1 THEN  -- a plain expression: a subquery would run as a query
        RETURN coalesce(row_doc ->> key_columns[1], '');
    END IF;
    RETURN array_to_string(ARRAY(SELECT row_doc ->> k FROM unnest(key_columns) AS k), ',', '');
END
$$;

-- An integer (bigint) from text, or NULL when it is not one: never an error.
CREATE OR REPLACE FUNCTION conflict_audit.integer_or_null(value text)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value ~ '^\s*-?[0-9]{1,18}\s*$' THEN value::bigint END
$$;

CREATE OR REPLACE FUNCTION conflict_audit.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
-- A fixed search_path, as a SECURITY DEFINER function needs; generic plans: the INSERT
-- below, planned again for each row, would cost more than the rest of the trigger.
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    prefix          text := TG_ARGV[0];
    entity_type     text := nullif(TG_ARGV[1], '');
    key_columns     text[] := TG_ARGV[2]::text[];
    version_column  text := nullif(TG_ARGV[3], '');
    excl            text[] := nullif(TG_ARGV[4]::text[], '{}');
    list_patterns   text[] := TG_ARGV[5]::text[];
    list_keys       text[] := TG_ARGV[6]::text[];
    before_row      jsonb;
    after_row       jsonb;
    before_key      text;
    after_key       text;
    version         bigint;
    old_version     bigint;
    base_version    bigint;
    setting         text;
    source_ts       text;
    invalid         jsonb;
    writer          text;
    entity          text;
    before_doc      jsonb;   -- what is diffed: the row less its key and version
    after_doc       jsonb;
    may_rewrite     boolean;
    attrs           jsonb;
    write_id        text;
BEGIN
    -- The row as a document; the key and the version are the entity's identity and the
    -- event's version, not fields.
    IF TG_OP <> 'INSERT' THEN
        before_row := to_jsonb(OLD);
        before_key := conflict_audit.key_text(before_row, key_columns);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        after_row := to_jsonb(NEW);
        after_key := conflict_audit.key_text(after_row, key_columns);
    END IF;
    IF before_row = after_row AND version_column IS NULL THEN  -- not even a rewrite
        RETURN NULL;
    END IF;

    IF version_column IS NOT NULL THEN
        -- (install checked that the column holds integers; should it have changed since,
        -- a value that is not one is no version rather than a failed write)
        old_version := conflict_audit.integer_or_null(before_row ->> version_column);
        version := CASE WHEN after_row IS NOT NULL
                        THEN conflict_audit.integer_or_null(after_row ->> version_column)
                        ELSE old_version + 1 END;
        setting := nullif(current_setting('audit.base_version', true), '');
        base_version := conflict_audit.integer_or_null(setting);
        IF base_version IS NULL THEN
            base_version := version - 1;
            IF setting IS NOT NULL THEN
                invalid := jsonb_build_object('audit.base_version', setting);
            END IF;
        END IF;
    END IF;
    source_ts := nullif(current_setting('audit.source_ts', true), '');
    IF source_ts !~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$' THEN
        invalid := coalesce(invalid, '{}') || jsonb_build_object('audit.source_ts', source_ts);
        source_ts := NULL;
    END IF;

    writer := coalesce(nullif(current_setting('audit.writer', true), ''),
                       nullif(current_setting('application_name'), ''),
                       CASE current_setting('role') WHEN 'none' THEN session_user::text
                            ELSE current_setting('role') END);

    before_row := before_row - key_columns - coalesce(version_column, '');
    after_row := after_row - key_columns - coalesce(version_column, '');
    may_rewrite := TG_OP = 'UPDATE' AND version <= old_version;
    IF invalid IS NOT NULL THEN
        attrs := jsonb_build_object('invalid_settings', invalid);
    END IF;
    write_id := pg_current_xact_id()::text || '.' || nextval('conflict_audit.row_changes');
    entity := coalesce(before_key, after_key);
    IF TG_OP = 'UPDATE' AND before_key IS DISTINCT FROM after_key THEN
        -- A new key is a new entity: the old one ends (here), the new one begins (below),
        -- in one write.
        after_doc := '{}';
        may_rewrite := false;
    END IF;
    before_doc := coalesce(before_row, '{}');
    after_doc := coalesce(after_doc, after_row, '{}');
    LOOP
        WITH changes AS MATERIALIZED (
            SELECT d.*, false AS rewrite
            FROM conflict_audit.diff(before_doc, after_doc, list_patterns, list_keys, excl) AS d
        )
        INSERT INTO conflict_audit.transitions
            (ts, op, entity, entity_type, field, change, old, new, writer, actor, write_id,
             base_version, version, source_ts, attrs)
        SELECT clock_timestamp(), TG_OP, prefix || ':' || entity, entity_type, c.field, c.change,
               c.old, c.new, writer, nullif(current_setting('audit.actor', true), ''), write_id,
               base_version, version, source_ts,
               CASE WHEN c.rewrite THEN coalesce(attrs, '{}') || '{"rewrite": true}' ELSE attrs END
        FROM (SELECT * FROM changes
              UNION ALL
              SELECT r.*, true
              FROM conflict_audit.rewritten(after_doc, list_patterns, list_keys, excl) AS r
              WHERE may_rewrite AND NOT EXISTS (SELECT FROM changes)) AS c;
        EXIT WHEN entity = after_key OR after_key IS NULL;
        entity := after_key;  -- the new entity of a new key
        before_doc := '{}';
        after_doc := after_row;
    END LOOP;
    RETURN NULL;
END
$$;

-- Only triggers run it: another role attaching it to a table of its own would append rows
-- as the owner.
REVOKE ALL ON FUNCTION conflict_audit.capture() FROM PUBLIC;


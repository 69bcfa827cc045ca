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

-- The capture trigger: every insert, update and delete of an audited table becomes one
-- conflict_audit.transitions row per changed field (docs/contract.md §6).
--
-- Installed per table by `audit pg install` as
--   CREATE TRIGGER conflict_audit_capture AFTER INSERT OR UPDATE OR DELETE ON <table>
--   FOR EACH ROW EXECUTE FUNCTION conflict_audit.capture(<entity prefix>, <entity type>,
--       <key columns>, <version column>, <exclude patterns>, <list keys>)
-- with JSON arrays for the lists (see `\d <table>` for a table's settings).
--
-- Who wrote, read from the writing transaction (`SET LOCAL audit.writer = 'workflow'`):
--   writer        audit.writer, else application_name, else the role (SET ROLE's, else the
--                 session's: the function runs as its owner, so current_user would lie)
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
-- move the version forward still claims a version, one that was there already. That is what
-- the read-modify-write race looks like from inside the database: two writers read version 4 with value 10, both write
-- value 11 and version 5, and the second finds the row already so. Its write is recorded as
-- one `changed` event per captured column with old = new (attrs.rewrite), so that
-- `lost_update` pairs it with the write it overwrote unseen. A trigger cannot know which
-- columns or paths the statement meant, so these events are per column, jsonb columns whole.
-- Without a version column an UPDATE that changes nothing records nothing.

-- A row written as it was: every captured column, rewritten with its own value.
CREATE OR REPLACE FUNCTION conflict_audit.rewritten(doc jsonb, list_keys jsonb, excl text[])
RETURNS TABLE (field text, change text, old_value jsonb, new_value jsonb)
LANGUAGE sql IMMUTABLE AS $$
    SELECT c.key, 'changed', v, v
    FROM jsonb_each(doc) AS c,
         LATERAL conflict_audit.strip(c.value, c.key, list_keys, excl) AS v
    WHERE excl IS NULL OR NOT c.key LIKE ANY (excl)
$$;

-- One row change of one entity: diff the row before and after (NULL: no row) and append.
CREATE OR REPLACE FUNCTION conflict_audit.append_changes(
    op text, entity text, entity_type text, write_id text, version_column text,
    hidden text[], list_keys jsonb, excl text[], before_row jsonb, after_row jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    version       bigint;
    base_version  bigint;
    setting       text;
    source_ts     text;
    invalid       jsonb;
    may_rewrite   boolean := false;
BEGIN
    IF version_column IS NOT NULL THEN
        version := CASE WHEN after_row IS NOT NULL THEN (after_row ->> version_column)::bigint
                        ELSE (before_row ->> version_column)::bigint + 1 END;
        setting := nullif(current_setting('audit.base_version', true), '');
        IF setting ~ '^\s*-?[0-9]{1,18}\s*$' THEN
            base_version := setting::bigint;
        ELSE
            base_version := version - 1;
            IF setting IS NOT NULL THEN
                invalid := jsonb_build_object('audit.base_version', setting);
            END IF;
        END IF;
        may_rewrite := op = 'UPDATE' AND version <= (before_row ->> version_column)::bigint;
    END IF;
    source_ts := nullif(current_setting('audit.source_ts', true), '');
    IF source_ts !~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$' THEN
        invalid := coalesce(invalid, '{}') || jsonb_build_object('audit.source_ts', source_ts);
        source_ts := NULL;
    END IF;

    WITH changes AS (
        SELECT d.*, false AS rewrite
        FROM conflict_audit.diff(coalesce(before_row - hidden, '{}'),
                                 coalesce(after_row - hidden, '{}'), '', list_keys, excl) AS d
    ), rewrites AS (
        SELECT r.*, true AS rewrite
        FROM conflict_audit.rewritten(after_row - hidden, list_keys, excl) AS r
        WHERE may_rewrite AND NOT EXISTS (SELECT FROM changes)
    )
    INSERT INTO conflict_audit.transitions
        (ts, op, entity, entity_type, field, change, old, new, writer, actor, write_id,
         base_version, version, source_ts, attrs)
    SELECT clock_timestamp(), op, entity, entity_type, d.field, d.change, d.old_value,
           d.new_value,
           coalesce(nullif(current_setting('audit.writer', true), ''),
                    nullif(current_setting('application_name'), ''),
                    CASE current_setting('role') WHEN 'none' THEN session_user::text
                         ELSE current_setting('role') END),
           nullif(current_setting('audit.actor', true), ''),
           write_id, base_version, version, source_ts,
           nullif(jsonb_strip_nulls(jsonb_build_object(
               'invalid_settings', invalid,
               'rewrite', CASE WHEN d.rewrite THEN true END)), '{}')
    FROM (SELECT * FROM changes UNION ALL SELECT * FROM rewrites) AS d;
END
$$;

CREATE OR REPLACE FUNCTION conflict_audit.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    prefix          text := TG_ARGV[0];
    entity_type     text := nullif(TG_ARGV[1], '');
    key_columns     text[] := ARRAY(SELECT jsonb_array_elements_text(TG_ARGV[2]::jsonb));
    version_column  text := nullif(TG_ARGV[3], '');
    excl            text[] := nullif(ARRAY(SELECT jsonb_array_elements_text(TG_ARGV[4]::jsonb)),
                                     '{}');
    list_keys       jsonb := TG_ARGV[5]::jsonb;
    -- The key and the version are the entity's identity and the event's version, not fields.
    hidden          text[] := key_columns || coalesce(version_column, '');
    before_row      jsonb;
    after_row       jsonb;
    before_key      text;
    after_key       text;
    write_id        text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        before_row := to_jsonb(OLD);
        before_key := (SELECT string_agg(before_row ->> k, ',') FROM unnest(key_columns) AS k);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        after_row := to_jsonb(NEW);
        after_key := (SELECT string_agg(after_row ->> k, ',') FROM unnest(key_columns) AS k);
    END IF;
    IF before_row = after_row AND version_column IS NULL THEN  -- not even a rewrite
        RETURN NULL;
    END IF;
    write_id := pg_current_xact_id()::text || '.' || nextval('conflict_audit.row_changes');
    IF TG_OP = 'UPDATE' AND before_key IS DISTINCT FROM after_key THEN
        -- A new key is a new entity: the old one ends, the new one begins, in one write.
        PERFORM conflict_audit.append_changes('DELETE', prefix || ':' || before_key,
            entity_type, write_id, version_column, hidden, list_keys, excl, before_row, NULL);
        PERFORM conflict_audit.append_changes('INSERT', prefix || ':' || after_key,
            entity_type, write_id, version_column, hidden, list_keys, excl, NULL, after_row);
    ELSE
        PERFORM conflict_audit.append_changes(TG_OP,
            prefix || ':' || coalesce(after_key, before_key), entity_type, write_id,
            version_column, hidden, list_keys, excl, before_row, after_row);
    END IF;
    RETURN NULL;
END
$$;

-- Only triggers run these: another role attaching capture() to a table of its own, or
-- calling append_changes, would append rows as the owner.
REVOKE ALL ON FUNCTION conflict_audit.capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION conflict_audit.append_changes(text, text, text, text, text, text[],
                                                     jsonb, text[], jsonb, jsonb) FROM PUBLIC;

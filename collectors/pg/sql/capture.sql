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
    END IF;
    source_ts := nullif(current_setting('audit.source_ts', true), '');
    IF source_ts !~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$' THEN
        invalid := coalesce(invalid, '{}') || jsonb_build_object('audit.source_ts', source_ts);
        source_ts := NULL;
    END IF;

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
           CASE WHEN invalid IS NOT NULL THEN jsonb_build_object('invalid_settings', invalid) END
    FROM conflict_audit.diff(coalesce(before_row - hidden, '{}'), coalesce(after_row - hidden, '{}'),
                             '', list_keys, excl) AS d;
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
    IF before_row = after_row THEN  -- an UPDATE that changed nothing
        RETURN NULL;
    END IF;
    write_id := pg_current_xact_id()::text || '.' || nextval('conflict_audit.row_changes');
    IF TG_OP = 'UPDATE' AND before_key IS DISTINCT FROM after_key THEN
        -- A new key is a new entity: the old one ends, the new one begins, in one write.
        PERFORM conflict_audit.append_changes(TG_OP, prefix || ':' || before_key, entity_type,
            write_id, version_column, hidden, list_keys, excl, before_row, NULL);
        PERFORM conflict_audit.append_changes(TG_OP, prefix || ':' || after_key, entity_type,
            write_id, version_column, hidden, list_keys, excl, NULL, after_row);
    ELSE
        PERFORM conflict_audit.append_changes(TG_OP, prefix || ':' || coalesce(after_key, before_key),
            entity_type, write_id, version_column, hidden, list_keys, excl, before_row, after_row);
    END IF;
    RETURN NULL;
END
$$;

-- Only triggers run it: another role attaching it to a table of its own would append
-- rows as the owner.
REVOKE ALL ON FUNCTION conflict_audit.capture() FROM PUBLIC;

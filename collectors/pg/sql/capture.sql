-- The capture trigger: every insert, update and delete of an audited table becomes one
-- conflict_audit.row_changes row holding the row before and after (docs/contract.md §6).
-- `audit pg pull` turns it into transitions with the instrumentation's own diff
-- (collectors/pg/transitions.py), so the diff rules of docs/diff.md are written once.
--
-- Installed per table by `audit pg install` as
--   CREATE TRIGGER conflict_audit_capture AFTER INSERT OR UPDATE OR DELETE ON <table>
--   FOR EACH ROW EXECUTE FUNCTION conflict_audit.capture(<installation id>
--       [, <excluded columns>])
-- (`\d <table>` shows them; conflict_audit.installations holds the rest of the settings).
-- Excluded columns are left out of the stored rows, so that what `--exclude` names is never
-- copied.
--
-- Who wrote, read from the writing transaction (`SET LOCAL audit.writer = 'workflow'`):
--   writer        audit.writer, else application_name, else the role (SET ROLE's, else the
--                 login role: the function runs as its owner, so current_user would lie)
--   actor, source_ts, base_version
--                 audit.actor, audit.source_ts, audit.base_version as set: the pull checks
--                 them, so that a setting it cannot use never fails the writer's statement.
--
-- Cost: this runs inside every write of the table, so it is one INSERT and nothing the pull
-- can do instead; every statement and expression of a PL/pgSQL function has a fixed cost
-- (measured: bench/pg.py, README "Capturing at the database"). It has no WHEN clause: the
-- cheap row comparison a WHEN could make (`OLD *<> NEW`) cost as much as it saved, and with
-- a version column an update that changes nothing must be captured anyway (a rewrite,
-- collectors/pg/transitions.py).

CREATE OR REPLACE FUNCTION conflict_audit.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
-- A fixed search_path, as a SECURITY DEFINER function needs.
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    before_row  jsonb := to_jsonb(OLD);   -- NULL for an INSERT
    after_row   jsonb := to_jsonb(NEW);   -- NULL for a DELETE
BEGIN
    IF TG_NARGS > 1 THEN
        before_row := before_row - TG_ARGV[1]::text[];
        after_row := after_row - TG_ARGV[1]::text[];
    END IF;
    INSERT INTO conflict_audit.row_changes
        (installation, op, old, new, writer, actor, source_ts, base_version)
    VALUES (TG_ARGV[0]::integer, TG_OP, before_row, after_row,
            coalesce(nullif(current_setting('audit.writer', true), ''),
                     nullif(current_setting('application_name'), ''),
                     nullif(current_setting('role'), 'none'),  -- 'none': no SET ROLE
                     session_user),
            nullif(current_setting('audit.actor', true), ''),
            nullif(current_setting('audit.source_ts', true), ''),
            nullif(current_setting('audit.base_version', true), ''));
    RETURN NULL;
END
$$;

-- Only triggers run it: another role attaching it to a table of its own would append rows
-- as the owner.
REVOKE ALL ON FUNCTION conflict_audit.capture() FROM PUBLIC;

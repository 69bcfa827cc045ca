-- The capture side of `audit pg` in a PostgreSQL database: a schema of its own, the
-- append-only table the triggers write row changes into, and what the pull needs to turn
-- them into transitions.
--
-- Safe to run again: every statement leaves existing objects (and captured rows) alone.
-- Nothing here is granted to PUBLIC: the capture trigger runs as the role that installed it
-- (SECURITY DEFINER, see capture.sql), so the roles that write the audited tables need no
-- access to this schema and cannot forge captured rows.
--
-- Schema version 2 (conflict_audit.meta): the trigger stores row images and the pull diffs
-- them. Version 1 diffed in the trigger; collectors/pg/upgrade.py moves a database from it.

CREATE SCHEMA IF NOT EXISTS conflict_audit;

-- source_id names this capture in event ids, so that two databases pulled into one store
-- never share an id; schema_version is the version of these objects.
CREATE TABLE IF NOT EXISTS conflict_audit.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO conflict_audit.meta (key, value)
VALUES ('source_id', left(replace(gen_random_uuid()::text, '-', ''), 16)),
       ('schema_version', '2')
ON CONFLICT (key) DO NOTHING;

-- One row per `audit pg install`: how the row changes captured under it become transitions.
-- Installing again adds a row and points the trigger at it, so rows captured before keep the
-- settings they were captured with.
CREATE TABLE IF NOT EXISTS conflict_audit.installations (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    installed_at   timestamptz NOT NULL DEFAULT now(),
    table_name     text NOT NULL,      -- schema.table
    entity_prefix  text NOT NULL,      -- the TABLE of TABLE:KEY
    entity_type    text NOT NULL,
    key_columns    text[] NOT NULL,
    version_column text,
    exclude        text[] NOT NULL,    -- docs/diff.md patterns over column.path
    list_keys      jsonb NOT NULL      -- [[pattern, key or null], ...], first match first
);

-- One row per captured row change, as the trigger saw it (capture.sql).
--
-- No primary key: the identity is unique by itself, and the pull finds its rows by
-- transaction (the index below); a second index would cost every captured write (bench/pg.py).
CREATE TABLE IF NOT EXISTS conflict_audit.row_changes (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction. Ids are taken before commit, so they do not commit in order;
    -- the pull tracks transactions instead (collectors/pg/pull.py).
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- clock_timestamp() at the row change, taken while the row is locked: for one row,
    -- the order of these times is the order in which the changes committed.
    ts            timestamptz NOT NULL DEFAULT clock_timestamp(),
    installation  integer NOT NULL,    -- conflict_audit.installations (no foreign key: cost)
    op            text NOT NULL,       -- INSERT | UPDATE | DELETE
    old           jsonb,               -- the row before (NULL for an INSERT), as to_jsonb
    new           jsonb,               -- the row after (NULL for a DELETE)
    -- Who wrote, as the writing transaction said it (audit.writer, else application_name,
    -- else the role); the other settings as set, checked by the pull.
    writer        text NOT NULL,
    actor         text,
    source_ts     text,
    base_version  text
);
CREATE INDEX IF NOT EXISTS row_changes_xid ON conflict_audit.row_changes (xid);

-- Append-only: a captured row and the settings it was captured with are never changed.
-- Deleting rows every store has pulled (to keep the table small) is the owner's business
-- and stays possible.
CREATE OR REPLACE FUNCTION conflict_audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: captured rows are not updated', TG_TABLE_SCHEMA,
        TG_TABLE_NAME;
END
$$;
CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE ON conflict_audit.row_changes
    FOR EACH ROW EXECUTE FUNCTION conflict_audit.refuse_change();
CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE ON conflict_audit.installations
    FOR EACH ROW EXECUTE FUNCTION conflict_audit.refuse_change();

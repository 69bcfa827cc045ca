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

-- From schema version 1 (collectors/pg/upgrade.py runs this, then schema.sql and
-- capture.sql): drop what only version 1's diff in the trigger needed. Its sequence goes
-- too: its name is the row change table's now. conflict_audit.transitions and its rows stay.

DROP FUNCTION conflict_audit.rewritten(jsonb, text[], text[], text[]);
DROP FUNCTION conflict_audit.diff(jsonb, jsonb, text[], text[], text[]);
DROP FUNCTION conflict_audit.elements(text, jsonb, jsonb, text[], text[]);
DROP FUNCTION conflict_audit.strip(jsonb, text, text[], text[], text[]);
DROP FUNCTION conflict_audit.element_path(text, text, bigint);
DROP FUNCTION conflict_audit.list_key(text, text[], text[], jsonb, jsonb);
DROP FUNCTION conflict_audit.keyed(jsonb, text);
DROP FUNCTION conflict_audit.key_text(jsonb, text[]);
DROP FUNCTION conflict_audit.integer_or_null(text);
DROP TYPE conflict_audit.change;
DROP SEQUENCE conflict_audit.row_changes;

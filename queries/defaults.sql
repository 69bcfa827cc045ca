-- defaults: the detectors' settings and their default values, written here and nowhere else.
--
-- audit.toml overrides any of them ([oscillation], [priority], [priority.writers]:
-- docs/contract.md §3). audit/config.py reads its defaults from this file, and `audit check`
-- sets every variable itself. In the DuckDB shell, read this file before the others; a
-- variable set before it keeps its value:
--   duckdb -readonly audit.duckdb -c "SET VARIABLE audit_oscillation_window_s = 120" \
--       -c ".read queries/defaults.sql" -c ".read queries/transitions.sql" \
--       -c ".read queries/oscillation.sql"
-- One statement per setting, `SET VARIABLE audit_<setting> = coalesce(getvariable(…), value)`,
-- a number or a map of writer to priority: audit/config.py reads no other form.

-- oscillation: changes this many seconds apart or less can flip a field (see oscillation.sql)
SET VARIABLE audit_oscillation_window_s = coalesce(getvariable('audit_oscillation_window_s'), 60);
-- oscillation: a burst without a value put back is reported from this many changes on
SET VARIABLE audit_oscillation_min_changes =
    coalesce(getvariable('audit_oscillation_min_changes'), 3);
-- priority_inversion: a lower-priority write this many seconds after a higher one or less
SET VARIABLE audit_priority_window_s = coalesce(getvariable('audit_priority_window_s'), 300);
-- priority_inversion: the priority of a writer not listed below
SET VARIABLE audit_default_priority = coalesce(getvariable('audit_default_priority'), 50);
-- priority_inversion: writer priorities, higher wins (audit.merge_by_priority applies them
-- at write time)
SET VARIABLE audit_writer_priorities = coalesce(
    getvariable('audit_writer_priorities'),
    map(['user', 'workflow', 'instantiation', 'polling_sync'], [100, 80, 60, 40]));

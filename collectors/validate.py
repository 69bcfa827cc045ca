"""Validation and typing of raw event lines, as SQL generated from the event key table.

The bulk ingest hands DuckDB a batch of raw lines (``ingest_batch(line, raw)``). One
statement classifies each line (accepted / skipped as an ordinary log line / rejected with
the first reason that applies) and types the accepted ones.

Each line is parsed once, by ``json_transform`` into a struct of JSON fragments; every check
after that works on the fragments' text (a fragment's first byte is its JSON type), which
measured several times faster than asking DuckDB about each key separately. Generating the
SQL from ``audit.event.EVENT_KEYS`` keeps the schema defined in one place: add a key there
and it is checked here.
"""

from __future__ import annotations

from audit.event import (
    CHANGE_KINDS,
    EVENT_KEYS,
    HEX_PATTERN,
    MAX_DEPTH,
    RFC3339_PATTERN,
    TRANSITION,
)

KEYS = list(EVENT_KEYS)
ID_SEP = "\x1f"  # between the parts hashed into a derived event id
_MAX_SAFE_INT = 2**53
_TRANSFORM = "{" + ", ".join(f'"{k}": "JSON"' for k in KEYS) + "}"
STRING = '"'  # a JSON string's text starts with a quote


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _f(key: str) -> str:
    """The key's value as minified JSON text; NULL if absent.

    json_transform reads JSON null as SQL NULL. That is right for every key but old/new,
    where null is a value: their ``<key>_json`` columns tell null from absent.
    """
    if EVENT_KEYS[key][0] == "json":
        return f"({key}_json::VARCHAR)"
    return f"(r.{key}::VARCHAR)"


def _is(key: str, first: str) -> str:
    """Whether the value's JSON text starts with ``first`` (a byte test, no parsing)."""
    return f"starts_with({_f(key)}, {_lit(first)})"


def _type_name(key: str) -> str:
    """The value's JSON type as a user names it, for messages."""
    f = _f(key)
    return (
        f"CASE left({f}, 1) WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' "
        f"WHEN '[' THEN 'array' WHEN 'n' THEN 'null' WHEN 't' THEN 'boolean' "
        f"WHEN 'f' THEN 'boolean' "
        f"ELSE CASE WHEN regexp_full_match({f}, '-?[0-9]+') THEN 'integer' ELSE 'number' END END"
    )


def _s(key: str) -> str:
    """A string value without its quotes; only strings with escapes need a real parse."""
    f = _f(key)
    return f"CASE WHEN contains({f}, '\\') THEN r.{key}->>'$' ELSE {f}[2:-2] END"


def _present(key: str) -> str:
    kind, required, _ = EVENT_KEYS[key]
    if kind == "json" or required:
        return f"{_f(key)} IS NOT NULL"
    # JSON null in an optional key means "not given" (emitters write "actor": null); the
    # transform already made it NULL.
    return f"r.{key} IS NOT NULL"


def _optional_text(key: str) -> str:
    return f"CASE WHEN {_present(key)} THEN {_s(key)} END"


def _timestamp(key: str) -> str:
    # The cast is the costliest single check (~0.2 s per million): done once, used twice.
    return f"CASE WHEN {_present(key)} THEN TRY_CAST(upper({_s(key)}) AS TIMESTAMPTZ) END"


def _integer(key: str) -> str:
    f = _f(key)
    return f"TRY_CAST(CASE WHEN regexp_full_match({f}, '-?[0-9]+') THEN {f} END AS BIGINT)"


def _key_checks(key: str) -> list[str]:
    """CASE branches (WHEN … THEN reason) for one key; the first failing branch wins."""
    kind, required, _ = EVENT_KEYS[key]
    q = f'"{key}"'
    got = f" || {_type_name(key)}"
    checks: list[tuple[str, str]] = []  # (condition that fails, reason expression)
    if kind in ("string", "timestamp", "hex", "change"):
        checks.append((f"NOT {_is(key, STRING)}", _lit(f"{q} must be a string, got ") + got))
    if kind == "timestamp":
        bad = f"{key}_value IS NULL OR NOT regexp_full_match({_s(key)}, {_lit(RFC3339_PATTERN)})"
        why = _lit(f"{q} is not an RFC 3339 timestamp with offset: ") + f" || left({_s(key)}, 60)"
        checks.append((bad, why))
    elif kind == "hex":
        bad = f"NOT regexp_full_match({_s(key)}, {_lit(HEX_PATTERN)})"
        checks.append((bad, _lit(f"{q} must be a hex string")))
    elif kind == "change":
        kinds = ", ".join(_lit(k) for k in CHANGE_KINDS)
        allowed = ", ".join(CHANGE_KINDS)
        why = _lit(f"{q} must be one of {allowed}, got ") + f" || left({_s(key)}, 40)"
        checks.append((f"{_s(key)} NOT IN ({kinds})", why))
    elif kind == "integer":
        why = _lit(f"{q} must be a 64-bit integer, got ") + f" || left({_f(key)}, 30)"
        checks.append((f"{_integer(key)} IS NULL", why))
    elif kind == "object":
        checks.append((f"NOT {_is(key, '{')}", _lit(f"{q} must be an object, got ") + got))
    out = []
    if required:
        # A required key given as null: say so rather than "missing" (checked on few rows).
        out.append(
            f"WHEN r.{key} IS NULL THEN CASE WHEN json_exists(raw, {_lit('$.' + key)}) "
            f"THEN {_lit(f'{q} must be a string, got null')} "
            f"ELSE {_lit(f'missing required key {q}')} END"
        )
    out += [f"WHEN {_present(key)} AND ({bad}) THEN {why}" for bad, why in checks]
    return out


def _reason() -> str:
    branches = [
        f"WHEN too_deep THEN 'nested deeper than {MAX_DEPTH} levels'",
        "WHEN r IS NULL AND json_valid(raw) THEN 'not a JSON object'",
        "WHEN r IS NULL THEN 'invalid JSON'",
    ]
    for key in KEYS:
        branches += _key_checks(key)
    change = f"coalesce({_optional_text('change')}, 'changed')"
    branches += [
        f"WHEN {change} = 'added' AND new_json IS NULL THEN 'change \"added\" needs \"new\"'",
        f"WHEN {change} = 'removed' AND old_json IS NULL THEN 'change \"removed\" needs \"old\"'",
        f"WHEN {change} = 'changed' AND (old_json IS NULL OR new_json IS NULL) "
        "THEN 'change \"changed\" needs both \"old\" and \"new\"'",
    ]
    return "CASE\n            " + "\n            ".join(branches) + "\n        END"


def _canonical_scalar(key: str) -> str:
    # Integral numbers written as floats print as integers: 1.0 and 1 are one JSON value.
    # yyjson re-serialises strings, so escapes like \u00e9 are canonical already. Only a
    # number with a dot or an exponent can need it, and strings start with a quote.
    f = _f(key)
    as_double = f"TRY_CAST({f} AS DOUBLE)"
    return (
        f"CASE WHEN NOT {_is(key, STRING)} "
        f"AND (contains({f}, '.') OR contains({f}, 'e') OR contains({f}, 'E')) "
        f"AND {as_double} = trunc({as_double}) AND abs({as_double}) < {_MAX_SAFE_INT} "
        f"THEN TRY_CAST({as_double} AS BIGINT)::VARCHAR::JSON ELSE {key}_json END"
    )


def stage_sql() -> str:
    """``ingest_stage``: one row per non-blank line with reason, skipped, and typed columns.

    A derived event id hashes the line's identity (the JSON text of every contract key but
    ``event`` and ``event_id``, in fixed key order) with its canonical old and new. Rows whose
    old/new are containers are canonicalised afterwards in Python, so they keep ``id_prefix``
    for the hash to be finished then (``rehash_sql``).
    """
    identity = " || '\x1f' || ".join(
        f"coalesce({_f(k)}, '')" for k in KEYS if k not in ("event", "event_id", "old", "new")
    )
    json_values = ", ".join(
        # kept JSON-typed: a cast from VARCHAR to JSON parses the value again
        f"CASE WHEN r.{k} IS NOT NULL THEN r.{k} "
        f"WHEN r IS NOT NULL AND json_exists(raw, {_lit('$.' + k)}) THEN 'null'::JSON END "
        f"AS {k}_json"
        for k in KEYS
        if EVENT_KEYS[k][0] == "json"
    )
    skipped = (
        f"coalesce(NOT too_deep AND {_is('event', STRING)} "
        f"AND {_s('event')} <> {_lit(TRANSITION)}, false)"
    )
    sep = _lit(ID_SEP)
    is_container = (
        "coalesce(starts_with(old::VARCHAR, '{') OR starts_with(old::VARCHAR, '[') "
        "OR starts_with(new::VARCHAR, '{') OR starts_with(new::VARCHAR, '['), false)"
    )
    return f"""
CREATE OR REPLACE TEMP TABLE ingest_stage AS
WITH parsed AS (
    SELECT line, raw, line IN (SELECT line FROM ingest_too_deep) AS too_deep,
           CASE WHEN starts_with(raw, '{{') OR ltrim(raw, E' \\t\\r\\n')[1] = '{{'
                THEN TRY(json_transform(raw, {_lit(_TRANSFORM)})) END AS r
    FROM ingest_batch
    -- Blank lines are not events. Trimming every line is slow: test the first byte first.
    WHERE starts_with(raw, '{{') OR (raw <> '' AND trim(raw, E' \\t\\r\\n') <> '')
), with_values AS (
    SELECT *, {json_values},
           {_timestamp('ts')} AS ts_value, {_timestamp('source_ts')} AS source_ts_value
    FROM parsed
), classified AS (
    SELECT *, {skipped} AS skipped FROM with_values
), typed AS (
    SELECT *, CASE WHEN skipped THEN NULL ELSE {_reason()} END AS reason,
           {_canonical_scalar('old')} AS old, {_canonical_scalar('new')} AS new,
           {_optional_text('event_id')} AS event_id_given
    FROM classified
), identified AS (
    SELECT *, CASE WHEN event_id_given IS NULL THEN {identity} END AS id_prefix FROM typed
)
SELECT line, reason, skipped, ts_value AS ts, {_s('entity')} AS entity,
       {_optional_text('entity_type')} AS entity_type, {_s('field')} AS field,
       coalesce({_optional_text('change')}, 'changed') AS change,
       old, new,
       {_s('writer')} AS writer, {_optional_text('actor')} AS actor,
       {_optional_text('write_id')} AS write_id,
       {_integer('base_version')} AS base_version, {_integer('version')} AS version,
       source_ts_value AS source_ts, {_integer('priority')}::INTEGER AS priority,
       lower({_optional_text('trace_id')}) AS trace_id,
       lower({_optional_text('span_id')}) AS span_id,
       CASE WHEN {_is('attrs', '{')} THEN r.attrs END AS attrs,
       {is_container} AS needs_canonical,
       CASE WHEN event_id_given IS NOT NULL THEN event_id_given
            ELSE 'h-' || md5(id_prefix || {sep} || coalesce(old::VARCHAR, '') || {sep}
                             || coalesce(new::VARCHAR, ''))
       END AS event_id,
       id_prefix
FROM identified
"""


def rehash_sql() -> str:
    """Finish the derived ids of rows whose containers were canonicalised afterwards."""
    sep = _lit(ID_SEP)
    return f"""
UPDATE ingest_stage SET event_id = 'h-' || md5(id_prefix || {sep} || coalesce(old::VARCHAR, '')
                                            || {sep} || coalesce(new::VARCHAR, ''))
WHERE needs_canonical AND id_prefix IS NOT NULL
"""


def maybe_deep_sql() -> str:
    """Lines with more opening brackets than MAX_DEPTH: the only ones worth measuring."""
    return (
        "SELECT line, raw FROM ingest_batch "
        f"WHERE length(raw) - length(replace(replace(raw, '{{', ''), '[', '')) > {MAX_DEPTH}"
    )

"""Validation and typing of raw event lines, as SQL generated from the event key table.

The bulk ingest hands DuckDB a batch of raw lines (``ingest_batch(line, raw)``). One
statement classifies each line (accepted / skipped as an ordinary log line / rejected with
the first reason that applies) and types the accepted ones. Each line is parsed three times
in bulk (the JSON type of every key, its text, and the raw JSON of old/new/attrs); every check
after that is a cheap comparison of those lists, which measured ~3x faster than asking
DuckDB about each key separately. Generating the SQL from ``audit.event.EVENT_KEYS`` keeps
the schema defined in one place: add a key there and it is checked here.
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
_MAX_SAFE_INT = 2**53
ID_SEP = "\x1f"  # between the parts hashed into a derived event id
_TRANSFORM = "{" + ", ".join(f'"{k}": "JSON"' for k in KEYS) + "}"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _f(key: str) -> str:
    """The key's value as minified JSON text (NULL if absent), from the one parse per line.

    json_transform reads JSON null as SQL NULL; for old/new, where null is a value, the
    `parsed` step below tells null from absent (only on the rows where it is NULL).
    """
    if EVENT_KEYS[key][0] == "json":
        return f"{key}_json"
    return f"(r.{key}::VARCHAR)"


def _t(key: str) -> str:
    """The JSON type of the key's value, read off its first character: no second parse."""
    f = _f(key)
    return (
        f"CASE {f}[1] WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' WHEN '[' THEN 'array' "
        f"WHEN 'n' THEN 'null' WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean' "
        f"ELSE CASE WHEN regexp_full_match({f}, '-?[0-9]+') THEN 'integer' ELSE 'number' END END"
    )


def _s(key: str) -> str:
    """A string value without its quotes; only strings with escapes need a real parse."""
    f = _f(key)
    return f"CASE WHEN contains({f}, '\\') THEN r.{key}->>'$' ELSE {f}[2:-2] END"


def _present(key: str) -> str:
    kind, required, _ = EVENT_KEYS[key]
    # JSON null in an optional key means "not given" (emitters write "actor": null); in a
    # required key it is reported as the wrong type; in old/new it is a value.
    if kind == "json":
        return f"{_f(key)} IS NOT NULL"
    if required:
        return f"r.{key} IS NOT NULL"
    return f"coalesce({_f(key)} <> 'null', false)"


def _key_checks(key: str) -> list[str]:
    """CASE branches (WHEN … THEN reason) for one key; the first failing branch wins."""
    kind, required, _ = EVENT_KEYS[key]
    t, s, q = _t(key), _s(key), f'"{key}"'
    checks: list[tuple[str, str]] = []  # (condition that fails, reason expression)
    if kind in ("string", "timestamp", "hex", "change"):
        checks.append((f"{_f(key)}[1] <> '\"'", f"{_lit(f'{q} must be a string, got ')} || {t}"))
    if kind == "timestamp":
        checks.append(
            (
                f"NOT regexp_full_match({s}, {_lit(RFC3339_PATTERN)}) "
                f"OR TRY_CAST(upper({s}) AS TIMESTAMPTZ) IS NULL",
                f"{_lit(f'{q} is not an RFC 3339 timestamp with offset: ')} || left({s}, 60)",
            )
        )
    elif kind == "hex":
        checks.append(
            (f"NOT regexp_full_match({s}, {_lit(HEX_PATTERN)})", _lit(f"{q} must be a hex string"))
        )
    elif kind == "change":
        kinds = ", ".join(_lit(k) for k in CHANGE_KINDS)
        allowed = ", ".join(CHANGE_KINDS)
        checks.append(
            (
                f"{s} NOT IN ({kinds})",
                f"{_lit(f'{q} must be one of {allowed}, got ')} || left({s}, 40)",
            )
        )
    elif kind == "integer":
        checks.append(
            (
                f"TRY_CAST(CASE WHEN regexp_full_match({_f(key)}, '-?[0-9]+') THEN {_f(key)} END "
                f"AS BIGINT) IS NULL",
                f"{_lit(f'{q} must be a 64-bit integer, got ')} || left({_f(key)}, 30)",
            )
        )
    elif kind == "object":
        checks.append((f"{_f(key)}[1] <> '{{'", f"{_lit(f'{q} must be an object, got ')} || {t}"))
    out = (
        [
            f"WHEN r.{key} IS NULL THEN CASE WHEN json_exists(raw, {_lit(f'$.{key}')}) "
            f"THEN {_lit(f'{q} must be a string, got null')} "
            f"ELSE {_lit(f'missing required key {q}')} END"
        ]
        if required
        else []
    )
    out += [f"WHEN {_present(key)} AND ({cond}) THEN {reason}" for cond, reason in checks]
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
        'THEN \'change "changed" needs both "old" and "new"\'',
    ]
    return "CASE\n            " + "\n            ".join(branches) + "\n        END"


def _canonical_scalar(key: str) -> str:
    # Integral numbers written as floats print as integers: 1.0 and 1 are one JSON value.
    # (yyjson re-serialises strings, so escapes like \u00e9 are already canonical.)
    f = _f(key)
    as_double = f"TRY_CAST({f} AS DOUBLE)"
    return (
        f"CASE WHEN regexp_full_match({f}, '-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?') "
        f"AND NOT regexp_full_match({f}, '-?[0-9]+') AND {as_double} = trunc({as_double}) "
        f"AND abs({as_double}) < {_MAX_SAFE_INT} "
        f"THEN TRY_CAST({as_double} AS BIGINT)::VARCHAR ELSE {f} END"
    )


def _optional_text(key: str) -> str:
    return f"CASE WHEN {_present(key)} THEN {_s(key)} END"


def _timestamp(key: str) -> str:
    return f"TRY_CAST(upper({_s(key)}) AS TIMESTAMPTZ)"


def stage_sql() -> str:
    """``ingest_stage``: one row per non-blank line with reason, skipped, and typed columns.

    The derived event id hashes the line's identity (the JSON text of every contract key but
    ``event`` and ``event_id``, in fixed key order) and its canonical old and new; rows whose
    old/new are containers are canonicalised afterwards in Python, so they keep ``id_prefix``
    for the hash to be finished then (``rehash_sql``).
    """
    identity = " || '\x1f' || ".join(
        f"coalesce({_f(k)}, '')" for k in KEYS if k not in ("event", "event_id", "old", "new")
    )
    skipped = (
        f"coalesce(NOT too_deep AND {_f('event')}[1] = '\"' "
        f"AND {_s('event')} <> {_lit(TRANSITION)}, false)"
    )
    json_values = ", ".join(
        f"CASE WHEN r.{k} IS NOT NULL THEN r.{k}::VARCHAR "
        f"WHEN r IS NOT NULL AND json_exists(raw, {_lit(f'$.{k}')}) THEN 'null' END AS {k}_json"
        for k in KEYS
        if EVENT_KEYS[k][0] == "json"
    )
    sep = _lit(ID_SEP)
    return f"""
CREATE OR REPLACE TEMP TABLE ingest_stage AS
WITH parsed AS (
    SELECT line, raw, line IN (SELECT line FROM ingest_too_deep) AS too_deep,
           CASE WHEN starts_with(raw, '{{') OR ltrim(raw, E' \\t\\r\\n')[1] = '{{'
                THEN TRY(json_transform(raw, {_lit(_TRANSFORM)})) END AS r
    FROM ingest_batch
    -- Blank lines are not events. Trimming every line is slow: look at the first byte first.
    WHERE raw <> '' AND (NOT (starts_with(raw, E'\\n') OR raw[1] IN (' ', E'\\t', E'\\r'))
                         OR trim(raw, E' \\t\\r\\n') <> '')
), with_values AS (
    SELECT *, {json_values} FROM parsed
), classified AS (
    SELECT *, {skipped} AS skipped FROM with_values
), typed AS (
    SELECT *, CASE WHEN skipped THEN NULL ELSE {_reason()} END AS reason,
           {_canonical_scalar("old")} AS old, {_canonical_scalar("new")} AS new,
           {identity} AS identity,
           {_optional_text("event_id")} AS event_id_given
    FROM classified
)
SELECT line, reason, skipped,
       {_timestamp("ts")} AS ts, {_s("entity")} AS entity,
       {_optional_text("entity_type")} AS entity_type, {_s("field")} AS field,
       coalesce({_optional_text("change")}, 'changed') AS change,
       old::JSON AS old, new::JSON AS new,
       {_s("writer")} AS writer, {_optional_text("actor")} AS actor,
       {_optional_text("write_id")} AS write_id,
       TRY_CAST(CASE WHEN {_present("base_version")} THEN {_f("base_version")} END AS BIGINT)
           AS base_version,
       TRY_CAST(CASE WHEN {_present("version")} THEN {_f("version")} END AS BIGINT) AS version,
       {_timestamp("source_ts")} AS source_ts,
       TRY_CAST(CASE WHEN {_present("priority")} THEN {_f("priority")} END AS INTEGER)
           AS priority,
       lower({_optional_text("trace_id")}) AS trace_id,
       lower({_optional_text("span_id")}) AS span_id,
       CASE WHEN {_f("attrs")}[1] = '{{' THEN r.attrs END AS attrs,
       coalesce(old[1] IN ('{{', '[') OR new[1] IN ('{{', '['), false) AS needs_canonical,
       coalesce(event_id_given,
                'h-' || md5(identity || {sep} || coalesce(old, '') || {sep}
                            || coalesce(new, ''))) AS event_id,
       CASE WHEN event_id_given IS NULL THEN identity END AS id_prefix
FROM typed
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

"""Where a store is: what `--db` says (docs/contract.md §8).

    audit.duckdb                                   a DuckDB file (the default)
    chdb:DIR                                       an embedded ClickHouse store in DIR (chdb)
    clickhouse://USER:PASSWORD@HOST:PORT/DATABASE  a ClickHouse server or cluster

A server URL may end in options: `?cluster=NAME` (the store's tables are created ON
CLUSTER, events sharded by entity; the detectors run on each shard), `?secure=1` (HTTPS),
`?otel_logs=TABLE` (the events are the view over what the OpenTelemetry Collector's
ClickHouse exporter writes: collectors/stores/otel.py). `chdb:DIR?otel_logs=TABLE` too.
A location prints without its password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from audit.errors import AuditError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_SERVER_FORM = "clickhouse://USER:PASSWORD@HOST:PORT/DATABASE"
_OPTIONS = {"cluster", "secure", "otel_logs"}


@dataclass(frozen=True)
class ChdbLocation:
    """An embedded ClickHouse store (chdb) in a directory."""

    path: Path
    otel_logs: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def __str__(self) -> str:
        return f"chdb:{self.path}"


@dataclass(frozen=True)
class ServerLocation:
    """A ClickHouse server (or a cluster, through one of its nodes) over HTTP(S)."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = field(default="", repr=False)
    cluster: str | None = None
    secure: bool = False
    otel_logs: str | None = None

    @property
    def name(self) -> str:
        return self.database

    def __str__(self) -> str:
        who = f"{self.user}:***@" if self.password else f"{self.user}@"
        return f"clickhouse://{who}{self.host}:{self.port}/{self.database}"


Location = Path | ChdbLocation | ServerLocation


def parse_location(db: str | Path) -> Location:
    """The store ``db`` names; a URL that cannot be read is an AuditError naming the form."""
    if isinstance(db, Path):
        return db
    scheme = _SCHEME.match(db)
    if scheme is None:
        return Path(db)
    kind = scheme.group(1).lower()
    if kind == "chdb":
        rest, _, query = db[len("chdb:") :].partition("?")
        if not rest:
            raise AuditError("--db chdb: needs a directory: chdb:DIR")
        return ChdbLocation(Path(rest), **_options(query, {"otel_logs"}, "chdb:DIR"))
    if kind == "clickhouse":
        return _server(db)
    raise AuditError(
        f"--db: unknown store URL scheme {kind!r}; use a DuckDB file path, chdb:DIR or "
        f"{_SERVER_FORM}"
    )


def _server(url: str) -> ServerLocation:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AuditError(f"--db: cannot read the ClickHouse URL ({exc}); expected "
                         f"{_SERVER_FORM}") from None
    database = parts.path.strip("/")
    if not parts.hostname or not port or not database or "/" in database:
        raise AuditError(f"--db: a ClickHouse URL needs a host, a port and a database: "
                         f"{_SERVER_FORM}")
    options = _options(parts.query, _OPTIONS, _SERVER_FORM)
    secure = options.pop("secure", "0")
    if secure not in ("0", "1", "true", "false"):
        raise AuditError("--db: secure= takes 1 or 0")
    return ServerLocation(
        host=parts.hostname, port=port, database=unquote(database),
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        secure=secure in ("1", "true"), **options,
    )


def _options(query: str, allowed: set[str], form: str) -> dict[str, str]:
    found = parse_qs(query, keep_blank_values=True, strict_parsing=False) if query else {}
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise AuditError(f"--db: unknown option {unknown[0]!r} in {form} "
                         f"(known: {', '.join(sorted(allowed))})")
    out = {}
    for key, values in found.items():
        if len(values) != 1 or not values[0]:
            raise AuditError(f"--db: option {key} needs one value")
        out[key] = values[0]
    return out

"""A finding: one anomaly a detector found, in the contract's shape (docs/contract.md §3)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "error")


def fingerprint(detector: str, entity: str, field_path: str, event_ids: list[str]) -> str:
    """Stable across runs and stores: the same witnesses always give the same fingerprint."""
    key = "\x1f".join([detector, entity, field_path, *event_ids])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass
class Finding:
    detector: str
    entity: str
    field: str
    writers: list[str]
    event_ids: list[str]  # witnesses, in commit order
    first_ts: str  # RFC 3339
    last_ts: str
    severity: str  # info | warning | error
    message: str
    entity_type: str | None = None
    fingerprint: str = ""
    # Per-witness facts for alerts and reports: value, version, writer, trace id, ...
    witnesses: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.detector, self.entity, self.field, self.event_ids)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON shape (plus entity_type and witnesses)."""
        return asdict(self)

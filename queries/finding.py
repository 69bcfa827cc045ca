"""A finding: one anomaly a detector found, in the contract's shape (docs/contract.md §3).

A finding is data: what its detector measured (``facts``) and the transitions it names
(``witnesses``). Its ``message`` is rendered from those two (queries/explain.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

SEVERITIES = ("info", "warning", "error")


class Witness(TypedDict):
    """One transition a finding names, as the store holds it (docs/contract.md §1).

    ``old`` and ``new`` are JSON values. ``old`` is absent for ``change == "added"`` and
    unknown when ``blind`` (a ``changed`` event without ``old``: the writer did not read the
    value); ``new`` is absent for ``change == "removed"``. Otherwise None is JSON null.
    Times are RFC 3339 text. ``attrs`` is the event's ``attrs`` object, None without one.
    """

    event_id: str
    ts: str
    writer: str
    actor: str | None
    field: str
    change: str
    old: Any
    new: Any
    blind: bool
    version: int | None
    base_version: int | None
    source_ts: str | None
    priority: int | None
    trace_id: str | None
    span_id: str | None
    write_id: str | None
    attrs: dict[str, Any] | None


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
    # The transitions named by event_ids, in the same order.
    witnesses: list[Witness] = field(default_factory=list)
    # What the detector measured: its SQL file's own columns (the rule that fired, versions
    # read and overwritten, source times, priorities, an oscillation's flips and window, …).
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.detector, self.entity, self.field, self.event_ids)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON shape (plus entity_type, witnesses and facts)."""
        return asdict(self)

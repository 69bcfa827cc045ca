"""What the collector (``audit serve``) does to each event at the door, before the spool.

Each request becomes an `Intake`: the spool lines of its events, and what it left out.

- An event that lacks a required key (docs/contract.md §1) cannot become one and is
  refused, with a reason the client is told (``partial_success`` over OTLP). Everything
  else about an event (types, timestamps, nesting) is the ingest's to check, which records
  a rejection with its reason in the store.
- Lines or records that are not transitions (another ``event``) are skipped and counted.
- **Event ids.** An event without ``event_id`` gets ``c-`` and the MD5 of its canonical JSON
  (keys sorted) *as received*, so a client that sends a request again after a lost answer
  doubles nothing, and identical events are one event, as in the ingest. The ingest's own
  derived id (``h-…``, `collectors.validate.derived_id`) cannot serve here: it hashes what
  is stored, ``attrs`` included, and ``attrs.received_at`` differs between two deliveries.
  An event sent both through the collector and in a file gets two ids: send each event
  one way.
- Every event gets ``attrs.received_at``, the collector's clock (RFC 3339, UTC), beside the
  writer's ``ts``; an ``attrs`` that is not an object is left for the ingest to reject.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from audit import exact_json, timestamps
from audit.event import REQUIRED_KEYS, TRANSITION

MAX_REASONS = 10  # reasons kept per request: enough to fix a client, not a second copy of it
_BOM = b"\xef\xbb\xbf"
_REQUIRED = frozenset(REQUIRED_KEYS)


def received_now() -> str:
    """The collector's clock, as every event of one request gets it."""
    return timestamps.now()


def assigned_event_id(event: dict[str, Any]) -> str:
    """The id of an event that came without one: a hash of the event as received."""
    return "c-" + hashlib.md5(exact_json.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Intake:
    """One request's events as spool lines (``data``), with what was left out."""

    received_at: str
    data: bytearray = field(default_factory=bytearray)  # complete lines, newline-terminated
    events: int = 0
    skipped: int = 0  # not transitions
    refused: int = 0
    reasons: list[str] = field(default_factory=list)  # the first MAX_REASONS refusals

    def add(self, event: dict[str, Any], where: str) -> None:
        """Take one event (a dict the caller gives up), or refuse it saying ``where``."""
        if event.get("event", TRANSITION) != TRANSITION:
            self.skipped += 1
            return
        if not event.keys() >= _REQUIRED:
            missing = [key for key in REQUIRED_KEYS if key not in event]
            self.refuse(where, f"missing {', '.join(missing)}")
            return
        try:
            if "event_id" not in event:
                event["event_id"] = assigned_event_id(event)
            attrs = event.get("attrs")
            if attrs is None:
                event["attrs"] = {"received_at": self.received_at}
            elif isinstance(attrs, dict):
                attrs["received_at"] = self.received_at
            self.data += exact_json.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as exc:  # nested past orjson's limit, far past the ingest's
            self.refuse(where, f"cannot be written as JSON ({exc})")
            return
        self.events += 1

    def refuse(self, where: str, reason: str) -> None:
        self.refused += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{where}: {reason}")

    def refusals(self) -> str:
        """The refusals in one line: the first reasons, then how many more."""
        more = self.refused - len(self.reasons)
        return "; ".join(self.reasons + ([f"and {more} more"] if more else []))


def intake_lines(body: bytes, received_at: str) -> Intake:
    """A JSON Lines body (``POST /v1/events``): each non-blank line one event."""
    intake = Intake(received_at)
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    # One look at the whole body for integers beyond 64 bits, rather than one a line.
    loads = exact_json.loads if exact_json.has_long_digits(body) else orjson.loads
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            event = loads(line)
        except orjson.JSONDecodeError as exc:
            intake.refuse(f"line {number}", f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(event, dict):
            intake.refuse(f"line {number}", "not a JSON object")
            continue
        intake.add(event, f"line {number}")
    return intake

"""Findings as Sentry events: the payload of each envelope, built from the finding's data.

Each finding becomes one event: its level is the finding's severity, its fingerprint
``[detector, entity, field]`` (repeats of one problem group into one Sentry issue), its tags
say which detector and writers, and a ``conflict`` context carries what the detector measured
(the finding's ``facts``) and the witnesses. The event id derives from the finding's
fingerprint, so a resend is a duplicate Sentry discards.

Every payload is plain JSON: values Sentry's JSON cannot carry (NaN, infinities, timestamps
outside what the store's readers turn into datetimes) become text, and a witness's value
(or a fact) is cut at ``VALUE_MAX`` characters, so that a large document cannot make Sentry
refuse the event (and the finding stay unsent forever).
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from frontends.severity import level, rank
from queries.finding import Finding

# Event ids are uuid5(fingerprint) in this namespace: the same finding always has the same id.
_EVENT_NS = uuid.UUID("8f1c2b9e-4a43-4c6e-9a51-2f6f3e0c7d15")
TAG_MAX = 200  # Sentry truncates longer tag values; we cut them ourselves, visibly
VALUE_MAX = 2000  # characters of one witness value or fact in the conflict context
SUMMARY_LISTED = 100  # findings named in a summary event's context
LOGGER = "conflict-audit"
_HEX = re.compile(r"[0-9a-f]+")


def event_id_for(fingerprint: str) -> str:
    """The Sentry event id of a finding: fixed by its fingerprint, so a resend is a duplicate."""
    return uuid.uuid5(_EVENT_NS, fingerprint).hex


def _tag(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= TAG_MAX else text[: TAG_MAX - 1] + "…"


def writers_tag(writers: Sequence[str]) -> str:
    """Writers in witness order, consecutive repeats folded: ``workflow→instantiation``."""
    folded = [w for i, w in enumerate(writers) if i == 0 or w != writers[i - 1]]
    return _tag("→".join(folded))


def plain_json(value: Any, limit: int | None = None) -> Any:
    """``value`` as JSON can carry it: non-finite floats and other types as text, strings cut
    at ``limit`` characters (with how much was left out)."""
    if isinstance(value, str):
        if limit is not None and len(value) > limit:
            return value[:limit] + f"… ({len(value) - limit:,} more characters)"
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v, limit) for v in value]
    return plain_json(str(value), limit)


def _witness(witness: dict[str, Any]) -> dict[str, Any]:
    # Absent facts (no trace id, no source_ts) only clutter Sentry's context view.
    return {k: plain_json(v, VALUE_MAX) for k, v in witness.items() if v is not None}


def _trace_context(finding: Finding) -> dict[str, str] | None:
    """Link the event to the trace of the last witness that carries OpenTelemetry ids."""
    for witness in reversed(finding.witnesses):
        trace_id, span_id = witness.get("trace_id"), witness.get("span_id")
        if (
            isinstance(trace_id, str)
            and isinstance(span_id, str)
            and len(trace_id) == 32
            and len(span_id) == 16
            and _HEX.fullmatch(trace_id.lower())
            and _HEX.fullmatch(span_id.lower())
        ):
            return {"trace_id": trace_id.lower(), "span_id": span_id.lower()}
    return None


def event_for(finding: Finding) -> dict[str, Any]:
    """The Sentry event for one finding."""
    tags = {"detector": _tag(finding.detector), "writers": writers_tag(finding.writers)}
    if finding.entity_type:
        tags["entity_type"] = _tag(finding.entity_type)
    tags["entity"] = _tag(finding.entity)
    tags["field"] = _tag(finding.field)
    contexts: dict[str, Any] = {
        "conflict": {
            "detector": finding.detector,
            "entity": finding.entity,
            "entity_type": finding.entity_type,
            "field": finding.field,
            "writers": list(finding.writers),
            "event_ids": list(finding.event_ids),
            "first_ts": plain_json(finding.first_ts),
            "last_ts": plain_json(finding.last_ts),
            "finding_fingerprint": finding.fingerprint,
            "severity": finding.severity,
            "facts": plain_json(finding.facts, VALUE_MAX),
            "witnesses": [_witness(w) for w in finding.witnesses],
        }
    }
    trace = _trace_context(finding)
    if trace:
        contexts["trace"] = trace
    return {
        "event_id": event_id_for(finding.fingerprint),
        "level": level(finding.severity),
        "message": finding.message,
        "logger": LOGGER,
        "transaction": f"{finding.entity} {finding.field}",
        "fingerprint": [finding.detector, finding.entity, finding.field],
        "tags": tags,
        "contexts": contexts,
    }


def summary_event(findings: Sequence[Finding], max_events: int) -> dict[str, Any]:
    """One event standing for the findings over ``--max``."""
    by_detector = Counter(f.detector for f in findings)
    by_severity = Counter(f.severity for f in findings)
    counts = ", ".join(f"{name} ×{n}" for name, n in by_detector.most_common())
    worst = max((f.severity for f in findings), key=rank)
    key = "\x1f".join(sorted(f.fingerprint for f in findings))
    return {
        "event_id": event_id_for("summary\x1f" + key),
        "level": level(worst),
        "message": (
            f"{len(findings)} more conflict findings were not sent one by one "
            f"(at most {max_events} a run): {counts}. `audit check` lists them all."
        ),
        "logger": LOGGER,
        "fingerprint": ["conflict-audit", "summary"],
        "tags": {"detector": "summary"},
        "contexts": {
            "summary": {
                "count": len(findings),
                "by_severity": dict(by_severity),
                "by_detector": dict(by_detector),
                "findings": [
                    {
                        "detector": f.detector,
                        "entity": f.entity,
                        "field": f.field,
                        "severity": f.severity,
                        "finding_fingerprint": f.fingerprint,
                    }
                    for f in findings[:SUMMARY_LISTED]
                ],
            }
        },
    }

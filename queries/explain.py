"""Findings told in plain words: who did what, with which value and version.

In the manner of Elle's anomaly explanations, each message is a short story a person can
act on: "workflow set X at version 2; instantiation, which had read version 1, overwrote
it at version 3 without seeing it." Witness dicts come from the runner (one per event, in
commit order); ``facts`` are the detector row's own columns (rule, flips, version, …).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from audit.config import Config

MAX_VALUE = 60  # characters of a value shown in a message
MAX_STEPS = 8  # changes of an oscillation listed before "… n more"

Witness = dict[str, Any]


def show(value: Any, present: bool = True) -> str:
    """A value as a message shows it: strings quoted, JSON otherwise, long ones cut."""
    if not present:
        return "(absent)"
    if isinstance(value, str):
        text = "'" + value + "'"
    else:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def who(w: Witness) -> str:
    """The writer, with the actor inside it when known: ``workflow (worker-3)``."""
    return f"{w['writer']} ({w['actor']})" if w.get("actor") else w["writer"]


def _old(w: Witness) -> str:
    return show(w["old"], w["has_old"])


def _new(w: Witness) -> str:
    return show(w["new"], w["has_new"])


def _at(w: Witness) -> str:
    return f" at version {w['version']}" if w.get("version") is not None else ""


def _did(w: Witness, target: str) -> str:
    """What one write did to the field: set / added / removed."""
    if not w["has_new"]:
        return f"removed {target} (it held {_old(w)})"
    if not w["has_old"] or w["change"] == "added":
        return f"added {target} with {_new(w)}"
    return f"set {target} to {_new(w)}"


def _then(w: Witness, target: str = "it") -> str:
    """What a later write did to the same field, as a verb phrase about ``target``."""
    if not w["has_new"]:
        return f"removed {target}"
    return f"set {target} to {_new(w)}"


def _lost_update(entity: str, field: str, ws: list[Witness], facts: dict, _: Config) -> str:
    e1, e2 = ws
    target = f"{field} of {entity}"
    if facts.get("rule") == "version":
        overwrote = f"overwrote it with {_new(e2)}" if e2["has_new"] else "removed it"
        return (
            f"{who(e1)} {_did(e1, target)}{_at(e1)}; {who(e2)}, which had read version "
            f"{e2['base_version']}, {overwrote}{_at(e2)} without seeing it."
        )
    seen = "found it absent" if not e2["has_old"] else f"read {_old(e2)}"
    return (
        f"{who(e1)} {_did(e1, target)}; {who(e2)}, which had also {seen}, then {_then(e2)} "
        f"without seeing that change, so one of the two changes is lost."
    )


def _stale_overwrite(entity: str, field: str, ws: list[Witness], facts: dict, _: Config) -> str:
    e1, e2 = ws
    target = f"{field} of {entity}"
    if facts.get("rule") == "source_ts":
        return (
            f"{who(e2)} {_did(e2, target)} with data from {e2['source_ts']}, older than the "
            f"data from {e1['source_ts']} that {who(e1)} had written ({_new(e1)}): newer data "
            f"was replaced by older."
        )
    return (
        f"{who(e1)} {_did(e1, target)}{_at(e1)}; {who(e2)}, which had read version "
        f"{e2['base_version']}, put back the earlier value {_new(e2)}{_at(e2)}, undoing that "
        f"change without seeing it."
    )


def _oscillation(entity: str, field: str, ws: list[Witness], facts: dict, _: Config) -> str:
    steps = [_old(ws[0])] + [f"{_new(w)} ({who(w)})" for w in ws]
    if len(steps) > MAX_STEPS + 1:
        steps = steps[: MAX_STEPS + 1] + [f"… {len(steps) - MAX_STEPS - 1} more"]
    writers = list(dict.fromkeys(w["writer"] for w in ws))
    flips = facts.get("flips", 0)
    fight = (
        f"{' and '.join(writers)} are taking turns over it"
        if len(writers) > 1
        else f"{writers[0]} keeps setting it back"
    )
    return (
        f"{field} of {entity} flapped {flips} time{'s' if flips != 1 else ''} in "
        f"{facts.get('changes', len(ws))} changes within {_seconds(_span(ws))}: "
        f"{' → '.join(steps)}; {fight}."
    )


def _priority_inversion(
    entity: str, field: str, ws: list[Witness], facts: dict, _: Config
) -> str:
    e1, e2 = ws
    gap = (e2["_ts"] - e1["_ts"]).total_seconds() if "_ts" in e1 and "_ts" in e2 else None
    if gap is None:
        when = "shortly after"
    elif gap >= 0:
        when = f"{_seconds(gap)} after"
    else:  # commit order and clocks disagree
        when = f"{_seconds(-gap)} before (by the clocks; after, in commit order)"
    return (
        f"{who(e2)} (priority {facts.get('priority')}) {_then(e2, f'{field} of {entity}')} "
        f"{when} {who(e1)} (priority {facts.get('overwritten_priority')}) had "
        f"set {_new(e1)}; a lower-priority writer overwrote a higher one, which the priority "
        f"rule would have refused."
    )


def _version_conflict(
    entity: str, field: str, ws: list[Witness], facts: dict, _: Config
) -> str:
    version = facts.get("version")
    if facts.get("rule") == "not_newer":
        w = ws[0]
        return (
            f"{who(w)}'s write of {entity} produced version {version} although it had read "
            f"version {w['base_version']}; versions must increase, or no reader can tell "
            f"that it is stale."
        )
    writes: dict[str, list[Witness]] = {}
    for w in ws:
        writes.setdefault(w["write_id"] or w["event_id"], []).append(w)
    parts = []
    for group in writes.values():
        fields = ", ".join(dict.fromkeys(w["field"] for w in group))
        read = group[0]["base_version"]
        seen = f", from version {read}" if read is not None else ""
        parts.append(f"{who(group[0])} (changing {fields}{seen})")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return (
        f"{len(writes)} different writes of {entity} each produced version {version}: "
        f"{listed}; they saved without compare-and-swap, so one silently replaced the other."
    )


def _chain_break(entity: str, field: str, ws: list[Witness], facts: dict, _: Config) -> str:
    e1, e2 = ws
    if not e2["has_old"]:
        claim = f"{who(e2)} added {field} of {entity} with {_new(e2)}"
    else:
        claim = f"{who(e2)} changed {field} of {entity} from {_old(e2)} to {_new(e2)}"
    if e1["has_new"]:
        last = f"the last recorded value was {_new(e1)}, set by {who(e1)}{_at(e1)}"
    else:
        last = f"{who(e1)} had removed it{_at(e1)}"
    return (
        f"{claim}, but {last}; {e2['writer']} replaced a value it never observed, or a write "
        f"to this field was not recorded."
    )


def _span(ws: list[Witness]) -> float | None:
    times = [w["_ts"] for w in ws if w.get("_ts") is not None]
    return (max(times) - min(times)).total_seconds() if times else None


def _seconds(value: Any) -> str:
    """A duration as a person reads it: 23 ms, 2.7 s, 42 s."""
    if value is None:
        return "the window"
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 10 and value != int(value) else f"{value:.0f} s"


EXPLAINERS: dict[str, Callable[[str, str, list[Witness], dict, Config], str]] = {
    "lost_update": _lost_update,
    "stale_overwrite": _stale_overwrite,
    "oscillation": _oscillation,
    "priority_inversion": _priority_inversion,
    "version_conflict": _version_conflict,
    "chain_break": _chain_break,
}


def explain(
    detector: str,
    entity: str,
    field: str,
    witnesses: list[Witness],
    facts: dict[str, Any],
    config: Config,
) -> str:
    """One or two sentences naming the writers, values and versions of a finding."""
    return EXPLAINERS[detector](entity, field, witnesses, facts, config)

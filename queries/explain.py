"""Findings told in plain words: who did what, with which value and version.

As in Elle, explaining and rendering are apart. The detectors explain: each SQL row says
which rule fired and what it measured, and the runner keeps that as the finding's facts.
This module only renders: a short story a person can act on, from those facts and the
witnesses (in commit order) and nothing else, e.g. "workflow set X at version 2;
instantiation, which had read version 1, overwrote it at version 3 without seeing it."
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from queries.finding import Witness
from queries.values import dump_value

MAX_VALUE = 60  # characters of a value shown in a message
MAX_STEPS = 8  # changes of an oscillation listed before "… n more"

Facts = dict[str, Any]


def show(value: Any, present: bool = True) -> str:
    """A value as a message shows it: strings quoted, JSON otherwise, long ones cut."""
    if not present:
        return "(absent)"
    text = "'" + value + "'" if isinstance(value, str) else dump_value(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def who(w: Witness) -> str:
    """The writer, with the actor inside it when known: ``workflow (worker-3)``."""
    return f"{w['writer']} ({w['actor']})" if w.get("actor") else w["writer"]


def _has_old(w: Witness) -> bool:
    return w["change"] != "added" and not w["blind"]


def _has_new(w: Witness) -> bool:
    return w["change"] != "removed"


def _old(w: Witness) -> str:
    return "(not read)" if w["blind"] else show(w["old"], _has_old(w))


def _new(w: Witness) -> str:
    return show(w["new"], _has_new(w))


def _at(w: Witness) -> str:
    return f" at version {w['version']}" if w.get("version") is not None else ""


def _blindly(w: Witness) -> str:
    return " (it wrote without reading the value)" if w["blind"] else ""


def _did(w: Witness, target: str) -> str:
    """What one write did to the field: set / added / removed."""
    if not _has_new(w):
        return f"removed {target} (it held {_old(w)})"
    if w["change"] == "added":
        return f"added {target} with {_new(w)}"
    return f"set {target} to {_new(w)}"


def _wrote(w: Witness, target: str) -> str:
    """``_did``, with the version it produced and whether it read the value."""
    return f"{_did(w, target)}{_at(w)}{_blindly(w)}"


def _then(w: Witness, target: str = "it") -> str:
    """What a later write did to the same field, as a verb phrase about ``target``."""
    if not _has_new(w):
        return f"removed {target}"
    return f"set {target} to {_new(w)}"


def _same_value(e2: Witness) -> str:
    """Why a lost update between writes that left the same value still matters."""
    if _has_old(e2):
        return (
            f"; both writes left {_new(e2)}: if each was a relative change of the "
            f"{_old(e2)} it read (an increment, say), one of them is lost"
        )
    return (
        f"; both writes left {_new(e2)}, so an effect is lost only if they were relative "
        f"changes (two increments of the same value lose one)"
    )


def _lost_update(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    e1, e2 = ws
    target = f"{field} of {entity}"
    convergent = _same_value(e2) if facts.get("convergent") else ""
    if facts.get("rule") == "version":
        if not _has_new(e2):
            overwrote = "removed it"
        elif facts.get("convergent"):
            overwrote = f"wrote {_new(e2)} again"
        else:
            overwrote = f"overwrote it with {_new(e2)}"
        read = f"read version {facts.get('read_version')}"
        if e2["blind"]:
            read += " and wrote without reading the value"
        return (
            f"{who(e1)} {_wrote(e1, target)}; {who(e2)}, which had {read}, "
            f"{overwrote}{_at(e2)} without seeing it{convergent}."
        )
    seen = "found it absent" if not _has_old(e2) else f"read {_old(e2)}"
    lost = convergent or ", so one of the two changes is lost"
    return (
        f"{who(e1)} {_did(e1, target)}; {who(e2)}, which had also {seen}, then {_then(e2)} "
        f"without seeing that change{lost}."
    )


def _stale_overwrite(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    e1, e2 = ws
    target = f"{field} of {entity}"
    if facts.get("rule") == "source_ts":
        return (
            f"{who(e2)} {_did(e2, target)} with data from {facts.get('source_ts')}, older "
            f"than the data from {facts.get('overwritten_source_ts')} that {who(e1)} had "
            f"written ({_new(e1)}): newer data was replaced by older."
        )
    return (
        f"{who(e1)} {_wrote(e1, target)}; {who(e2)}, which had read version "
        f"{facts.get('read_version')}, put back the earlier value {_new(e2)}{_at(e2)}, "
        f"undoing that change without seeing it."
    )


def _oscillation(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    steps = [_old(ws[0])] + [f"{_new(w)} ({who(w)})" for w in ws]
    if len(steps) > MAX_STEPS + 1:
        steps = steps[: MAX_STEPS + 1] + [f"… {len(steps) - MAX_STEPS - 1} more"]
    flips, changes = facts.get("flips", 0), facts.get("changes", len(ws))
    return (
        f"{field} of {entity} flapped {_times(flips)} in {changes} changes within "
        f"{_seconds(facts.get('span_s'))}: {' → '.join(steps)}. "
        f"It counts as an oscillation because {_why_it_flapped(ws, facts)}."
    )


def _why_it_flapped(ws: list[Witness], facts: Facts) -> str:
    """The rules that fired, in words: a value put back by another writer than the one
    whose change it undid, writers taking turns; each within the window."""
    writers = list(dict.fromkeys(w["writer"] for w in ws))
    reasons = []
    if facts.get("returns"):
        reasons.append(
            f"a writer put back the value another writer had just replaced "
            f"({_times(facts['returns'])})"
        )
    if facts.get("handbacks"):
        reasons.append(
            f"{' and '.join(writers)} took the field back from each other "
            f"({_times(facts['handbacks'])})"
        )
    return " and ".join(reasons) + f", within the {_seconds(facts.get('window_s'))} window"


def _priority_inversion(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    e1, e2 = ws
    gap = facts.get("seconds_after")
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


def _version_conflict(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    version = facts.get("version")
    if facts.get("rule") == "not_newer":
        return (
            f"{who(ws[0])}'s write of {entity} produced version {version} although it had "
            f"read version {facts.get('read_version')}; versions must increase, or no reader "
            f"can tell that it is stale."
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


def _chain_break(entity: str, field: str, ws: list[Witness], facts: Facts) -> str:
    e1, e2 = ws
    if facts.get("rule") == "added" or not _has_old(e2):
        claim = f"{who(e2)} added {field} of {entity} with {_new(e2)}"
    else:
        claim = f"{who(e2)} changed {field} of {entity} from {_old(e2)} to {_new(e2)}"
    if _has_new(e1):
        last = f"the last recorded value was {_new(e1)}, set by {who(e1)}{_at(e1)}"
    else:
        last = f"{who(e1)} had removed it{_at(e1)}"
    return (
        f"{claim}, but {last}; {e2['writer']} replaced a value it never observed, or a write "
        f"to this field was not recorded."
    )


def _times(n: int) -> str:
    return f"{n} time{'s' if n != 1 else ''}"


def _seconds(value: Any) -> str:
    """A duration as a person reads it: 23 ms, 2.7 s, 42 s."""
    if value is None:
        return "the window"
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 10 and value != int(value) else f"{value:.0f} s"


RENDERERS: dict[str, Callable[[str, str, list[Witness], Facts], str]] = {
    "lost_update": _lost_update,
    "stale_overwrite": _stale_overwrite,
    "oscillation": _oscillation,
    "priority_inversion": _priority_inversion,
    "version_conflict": _version_conflict,
    "chain_break": _chain_break,
}


def render(
    detector: str, entity: str, field: str, witnesses: list[Witness], facts: Facts
) -> str:
    """One or two sentences naming the writers, values and versions of a finding."""
    return RENDERERS[detector](entity, field, witnesses, facts)

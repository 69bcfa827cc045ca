"""A finding's facts (what its detector measured: queries/finding.py) as short labelled
items, for the HTML card's ``<dl class="facts">`` and the terminal report's fact line.

The facts are the detector SQL files' own columns, so they are read by name, whatever the
detector: a rule, the versions read and overwritten, source times, priorities, an
oscillation's counts and durations. A column this module does not know is still shown, as
its name and JSON value, so that nothing a detector measured is hidden from the views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frontends.report.svg import duration
from frontends.report.values import ellipsis
from queries.finding import Finding
from queries.values import dump_value

FACT_CHARS = 80  # characters of one fact's value
SAME_VALUE = "same value"  # the tag of a lost update whose writes left the same value

# What each rule of a detector means, in a few words (the SQL files' headers say it at length).
RULES: dict[tuple[str, str], str] = {
    ("lost_update", "version"): "it had read an older version",
    ("lost_update", "value"): "both writes read the same value",
    ("stale_overwrite", "source_ts"): "its data was older",
    ("stale_overwrite", "revert"): "it put back an earlier value",
    ("version_conflict", "fork"): "two writes produced one version",
    ("version_conflict", "not_newer"): "a version not above the one read",
    ("chain_break", "old"): "its old value is not what the field held",
    ("chain_break", "added"): "it added a field that held a value",
}
_COUNTS = ("flips", "returns", "handbacks", "changes")
_DURATIONS = (("span_s", "span"), ("window_s", "window"))


@dataclass(frozen=True)
class Fact:
    term: str  # "rule", "versions", "flips", …
    value: str  # "version", "read v1 → overwritten v2", "3", …
    note: str = ""  # what the value means, for a view with room: "it had read an older version"


@dataclass(frozen=True)
class Facts:
    """The facts as the views show them: ``items`` in a fixed order, and ``tags``: short
    words that qualify the finding as a whole (``same value``)."""

    items: list[Fact]
    tags: list[str]

    def line(self) -> str:
        """Briefly, on one line: ``rule version · versions read v1 → overwritten v2``."""
        return " · ".join([*(f"{f.term} {f.value}" for f in self.items), *self.tags])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return ellipsis(value, FACT_CHARS)
    try:
        return ellipsis(dump_value(value), FACT_CHARS)
    except (TypeError, ValueError):  # facts of a finding made elsewhere may be anything
        return ellipsis(str(value), FACT_CHARS)


def _seconds(value: Any) -> str:
    """``6 s``, ``120 ms``; a value that is not a number of seconds as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return _text(value)
    try:
        return duration(round(value * 1_000_000)).removeprefix("+")
    except OverflowError:  # ±infinity
        return _text(value)


def _versions(read: Any, overwritten: Any) -> str:
    parts = []
    if read is not None:
        parts.append(f"read v{_text(read)}")
    if overwritten is not None:
        parts.append(f"overwritten v{_text(overwritten)}")
    return " → ".join(parts)


def _apart(seconds: Any) -> str:
    """How long after the overwritten write the overwriting one came, by the clocks."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds < 0:
        return f"{_seconds(-seconds)} earlier by the clocks (later in commit order)"
    return f"{_seconds(seconds)} later"


def describe(finding: Finding) -> Facts:
    """The finding's facts as labelled items and tags; absent (null) facts are left out."""
    facts = {k: v for k, v in finding.facts.items() if v is not None}
    items: list[Fact] = []
    tags: list[str] = []
    if "rule" in facts:
        rule = facts.pop("rule")
        items.append(Fact("rule", _text(rule), RULES.get((finding.detector, str(rule)), "")))
    if "read_version" in facts or "overwritten_version" in facts:
        read, overwritten = facts.pop("read_version", None), facts.pop("overwritten_version", None)
        items.append(Fact("versions", _versions(read, overwritten)))
    if "version" in facts:
        items.append(Fact("version", f"v{_text(facts.pop('version'))}"))
    if "writes" in facts:
        items.append(Fact("writes", _text(facts.pop("writes"))))
    if "source_ts" in facts:
        items.append(Fact("its data from", _text(facts.pop("source_ts"))))
    if "overwritten_source_ts" in facts:
        items.append(Fact("overwritten data from", _text(facts.pop("overwritten_source_ts"))))
    if "priority" in facts or "overwritten_priority" in facts:
        mine, theirs = facts.pop("priority", "?"), facts.pop("overwritten_priority", "?")
        items.append(Fact("priorities", f"{_text(mine)} over {_text(theirs)}"))
    if "seconds_after" in facts:
        items.append(Fact("apart", _apart(facts.pop("seconds_after"))))
    for name in _COUNTS:
        if name in facts:
            items.append(Fact(name, _text(facts.pop(name))))
    for name, term in _DURATIONS:
        if name in facts:
            items.append(Fact(term, _seconds(facts.pop(name))))
    if facts.pop("convergent", False) is True:
        tags.append(SAME_VALUE)
    # Anything else a detector measured, as it is.
    items.extend(Fact(name.replace("_", " "), _text(value)) for name, value in facts.items())
    return Facts(items, tags)

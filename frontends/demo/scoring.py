"""Score the audit's findings against the ground truth, detector by detector.

A finding and an incident are the same anomaly when they name the same detector, entity,
field and writes, with the same severity. Writes are named by their write id, which the
events carry and the ground truth got from the store, so matching is exact: no time
tolerance, no heuristics.
A version conflict is about the block as a whole, so only its set of writes counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from frontends.demo.truth import DETECTORS, Incident
from queries.finding import Finding
from queries.runner import SEVERITY

Key = tuple[str, str, str, object, str]


def incident_key(incident: Incident) -> Key:
    severity = incident.severity or SEVERITY[incident.detector]
    return _key(incident.detector, incident.entity, incident.field, incident.write_ids, severity)


def finding_key(finding: Finding) -> Key:
    writes = tuple(dict.fromkeys(w.get("write_id") or w["event_id"] for w in finding.witnesses))
    return _key(finding.detector, finding.entity, finding.field, writes, finding.severity)


def _key(
    detector: str, entity: str, field_path: str, writes: tuple[str, ...], severity: str
) -> Key:
    if detector == "version_conflict":
        return (detector, entity, "$", frozenset(writes), severity)
    return (detector, entity, field_path, writes, severity)


@dataclass
class Score:
    """One detector's findings against the incidents that really happened."""

    detector: str
    truth: int = 0
    found: int = 0
    true_positives: int = 0
    false_positives: list[Finding] = field(default_factory=list)
    missed: list[Incident] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.truth if self.truth else None

    @property
    def exact(self) -> bool:
        return not self.false_positives and not self.missed


def score(findings: Iterable[Finding], incidents: Iterable[Incident]) -> dict[str, Score]:
    scores = {name: Score(name) for name in DETECTORS}
    expected: dict[Key, Incident] = {}
    for incident in incidents:
        expected[incident_key(incident)] = incident
        scores[incident.detector].truth += 1
    seen: set[Key] = set()
    for finding in findings:
        s = scores.setdefault(finding.detector, Score(finding.detector))
        s.found += 1
        key = finding_key(finding)
        if key in expected and key not in seen:
            s.true_positives += 1
            seen.add(key)
        else:
            s.false_positives.append(finding)
    for key, incident in expected.items():
        if key not in seen:
            scores[incident.detector].missed.append(incident)
    return scores

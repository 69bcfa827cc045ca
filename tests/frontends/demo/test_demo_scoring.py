"""Scoring findings against incidents: exact matches only, and mismatches named."""

from __future__ import annotations

from frontends.demo.scoring import score
from frontends.demo.truth import Incident
from queries.finding import Finding


def finding(detector: str, field: str, *write_ids: str, severity: str = "error") -> Finding:
    return Finding(
        detector=detector, entity="block-01", field=field, writers=["user"],
        event_ids=[f"e-{w}" for w in write_ids], first_ts="", last_ts="", severity=severity,
        message="", witnesses=[{"event_id": f"e-{w}", "write_id": w} for w in write_ids],
    )


def test_a_finding_counts_only_when_detector_block_field_and_writes_all_agree():
    incidents = [
        Incident("lost_update", "block-01", "label", ("a#1", "b#1")),
        Incident("lost_update", "block-01", "content", ("a#2", "b#2")),
        Incident("version_conflict", "block-01", "$", ("a#1", "b#1")),
    ]
    findings = [
        finding("lost_update", "label", "a#1", "b#1"),  # correct
        finding("lost_update", "content", "b#2", "a#2"),  # writes in the wrong order
        # a fork is about the block: its field and the order of its writes do not matter
        finding("version_conflict", "label", "b#1", "a#1", "a#1"),
        finding("stale_overwrite", "label", "a#1", "b#1"),  # nothing like it happened
    ]
    scores = score(findings, incidents)
    lost = scores["lost_update"]
    assert (lost.truth, lost.found, lost.true_positives) == (2, 2, 1)
    assert [f.field for f in lost.false_positives] == ["content"]
    assert [i.field for i in lost.missed] == ["content"]
    assert scores["version_conflict"].exact and scores["version_conflict"].recall == 1.0
    stale = scores["stale_overwrite"]
    assert (stale.truth, len(stale.false_positives), stale.recall) == (0, 1, None)
    assert not stale.exact


def test_a_finding_with_another_severity_than_the_incident_does_not_count():
    incidents = [
        Incident("lost_update", "block-01", "label", ("a#1", "b#1"), severity="warning"),
        Incident("lost_update", "block-01", "content", ("a#2", "b#2")),  # its usual: error
    ]
    findings = [
        finding("lost_update", "label", "a#1", "b#1", severity="error"),
        finding("lost_update", "content", "a#2", "b#2", severity="error"),
    ]
    lost = score(findings, incidents)["lost_update"]
    assert lost.true_positives == 1
    assert [f.field for f in lost.false_positives] == [i.field for i in lost.missed] == ["label"]

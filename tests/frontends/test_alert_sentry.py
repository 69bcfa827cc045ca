"""frontends.alert against a real sentry-sdk talking HTTP to a local envelope receiver."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest
import sentry_sdk
from sentry_receiver import SentryReceiver, refusing_dsn

from audit.errors import AuditError
from collectors.ingest import ingest
from frontends.alert import BATCH, SentryChannel, check_in, event_id_for, send_findings
from frontends.alert.payload import VALUE_MAX
from queries.finding import Finding
from queries.runner import check


def finding(n: int = 1, *, detector: str = "lost_update", severity: str = "error",
            entity: str = "block-A", field: str = "content") -> Finding:
    return Finding(
        detector=detector,
        entity=entity,
        field=field,
        writers=["workflow", "instantiation"],
        event_ids=[f"e-{n}a", f"e-{n}b"],
        first_ts="2024-05-01T10:00:00+00:00",
        last_ts=f"2024-05-01T10:00:{n % 60:02d}+00:00",
        severity=severity,
        message=f"workflow set {field} to 'done' at version 2; instantiation, which had read "
        f"version 1, overwrote it at version 3 without seeing it. (#{n})",
        entity_type="block",
        witnesses=[
            {"event_id": f"e-{n}a", "writer": "workflow", "new": "done", "version": 2,
             "ts": "2024-05-01T10:00:00+00:00", "trace_id": "0af7651916cd43dd8448eb211c80319c",
             "span_id": "b7ad6b7169203331"},
            {"event_id": f"e-{n}b", "writer": "instantiation", "old": "draft", "new": "x",
             "base_version": 1, "version": 3, "ts": "2024-05-01T10:00:01+00:00",
             "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
        ],
    )


@pytest.fixture
def rx():
    with SentryReceiver() as receiver:
        yield receiver


def sent_rows(con) -> list[tuple]:
    return con.execute(
        "SELECT fingerprint, detector, entity, field, sentry_event_id FROM sent_alerts "
        "ORDER BY fingerprint"
    ).fetchall()


def test_an_event_carries_fingerprint_tags_level_and_witnesses(rx, con):
    f = finding()
    result = send_findings([f], dsn=rx.dsn, con=con, environment="staging", release="app@1.2")
    assert result.ok and [x for x, _ in result.sent] == [f]
    (event,) = rx.events()
    assert event["event_id"] == event_id_for(f.fingerprint) == result.sent[0][1]
    assert event["level"] == "error"
    assert event["message"] == f.message
    assert event["fingerprint"] == ["lost_update", "block-A", "content"]
    assert event["tags"]["detector"] == "lost_update"
    assert event["tags"]["entity_type"] == "block"
    assert event["tags"]["writers"] == "workflow→instantiation"
    assert event["environment"] == "staging" and event["release"] == "app@1.2"
    ctx = event["contexts"]["conflict"]
    assert ctx["event_ids"] == ["e-1a", "e-1b"]
    assert ctx["witnesses"] == f.witnesses
    assert ctx["finding_fingerprint"] == f.fingerprint
    # The last witness's OpenTelemetry ids link the event to the trace that wrote.
    assert event["contexts"]["trace"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert sent_rows(con) == [
        (f.fingerprint, "lost_update", "block-A", "content", event["event_id"])
    ]


def test_severity_becomes_the_level(rx):
    send_findings([finding(1, severity="warning"), finding(2, severity="info")], dsn=rx.dsn)
    assert sorted(e["level"] for e in rx.events()) == ["info", "warning"]


def test_a_severity_no_detector_gives_counts_as_an_error_throughout(rx):
    # Sent at level error, selected by --min-severity error, ranked with the errors before
    # a warning, and an error in the summary: one rule, frontends/severity.py rank.
    odd = finding(1, entity="block-odd", severity="critical")
    warning = finding(2, entity="block-W", severity="warning")
    info = finding(3, entity="block-I", severity="info")
    result = send_findings([info, warning, odd], dsn=rx.dsn, max_events=1)
    assert [f for f, _ in result.sent] == [odd] and result.summarised == [warning, info]
    events = rx.events()
    sent = next(e for e in events if e["fingerprint"] != ["conflict-audit", "summary"])
    assert sent["level"] == "error"
    assert send_findings([odd, warning], dsn=rx.dsn, min_severity="error").sent[0][0] is odd
    summary = send_findings([odd, warning], dsn=rx.dsn, max_events=0)
    assert summary.summarised == [odd, warning] and rx.events()[-1]["level"] == "error"


def test_a_second_run_sends_nothing(rx, con):
    findings = [finding(n) for n in range(3)]
    assert len(send_findings(findings, dsn=rx.dsn, con=con).sent) == 3
    again = send_findings(findings, dsn=rx.dsn, con=con)
    assert again.ok and again.sent == [] and again.already_sent == 3
    assert rx.requests == 3
    # A new occurrence of the same problem is a new finding: sent, grouped in the same issue.
    fresh = finding(7)
    assert [f for f, _ in send_findings([*findings, fresh], dsn=rx.dsn, con=con).sent] == [fresh]
    assert {tuple(e["fingerprint"]) for e in rx.events()} == {("lost_update", "block-A", "content")}


def test_server_error_is_reported_and_the_findings_go_next_run(rx, con):
    findings = [finding(n) for n in range(3)]
    rx.respond(500, times=3)
    failed = send_findings(findings, dsn=rx.dsn, con=con)
    assert not failed.ok and failed.sent == []
    assert len(failed.pending) == 3
    assert "HTTP 500" in failed.problem and "next run" in failed.problem
    assert sent_rows(con) == []
    retried = send_findings(findings, dsn=rx.dsn, con=con)
    assert retried.ok and len(retried.sent) == 3
    assert len(sent_rows(con)) == 3
    assert {e["event_id"] for e in rx.events()} == {event_id_for(f.fingerprint) for f in findings}


def test_a_refusal_says_why(rx):
    rx.respond(400, body={"detail": "invalid event: bad fingerprint"})
    result = send_findings([finding()], dsn=rx.dsn)
    assert "HTTP 400: invalid event: bad fingerprint" in result.problem


def test_partial_failure_sends_only_the_rejected_ones_again(rx, con):
    findings = [finding(n) for n in range(3)]
    rx.respond(503)  # the first envelope only
    partial = send_findings(findings, dsn=rx.dsn, con=con)
    assert len(partial.sent) == 2 and len(partial.pending) == 1
    assert len(sent_rows(con)) == 2
    rest = send_findings(findings, dsn=rx.dsn, con=con)
    assert [f for f, _ in rest.sent] == [f for f, _ in partial.pending]
    assert len(rx.events()) == 3  # accepted events: each finding exactly once


def test_after_a_failed_batch_the_rest_are_not_attempted(rx, con):
    findings = [finding(n, entity=f"block-{n}") for n in range(BATCH + 5)]
    rx.respond(500, times=len(findings))
    failed = send_findings(findings, dsn=rx.dsn, con=con, max_events=len(findings))
    assert rx.requests == BATCH
    assert [d.reason for _, d in failed.pending].count("not_attempted") == 5
    assert "HTTP 500" in failed.problem and f"{BATCH + 5} findings not sent" in failed.problem


def test_refused_connection_is_reported_and_the_findings_go_next_run(rx, con):
    dsn, sock = refusing_dsn()
    try:
        failed = send_findings([finding()], dsn=dsn, con=con)
    finally:
        sock.close()
    assert not failed.ok
    assert failed.pending[0][1].reason == "unreachable"
    assert "unreachable" in failed.problem and "refused" in failed.problem.lower()
    assert sent_rows(con) == []
    assert send_findings([finding()], dsn=rx.dsn, con=con).ok
    assert len(rx.events()) == 1


def test_429_retry_after_holds_the_rest_back_until_a_later_run(rx, con):
    findings = [finding(n) for n in range(4)]
    rx.respond(429, {"Retry-After": "120"})
    limited = send_findings(findings, dsn=rx.dsn, con=con)
    assert not limited.ok and len(limited.pending) == 4
    assert "rate-limiting" in limited.problem and "retry after 120 s" in limited.problem
    assert rx.requests == 1 and sent_rows(con) == []
    later = send_findings(findings, dsn=rx.dsn, con=con)  # a later run: a new client
    assert later.ok and len(later.sent) == 4 and len(sent_rows(con)) == 4


def test_rate_limit_header_is_respected_within_one_client(rx, con):
    """X-Sentry-Rate-Limits on an accepted envelope: that one counts as sent; the SDK sends
    nothing more of the category until the limit ends, and those findings wait."""
    with SentryChannel(rx.dsn) as channel:
        rx.respond(200, {"X-Sentry-Rate-Limits": "60:error:organization"})
        first = send_findings([finding(1)], channel=channel, con=con)
        assert first.ok and len(first.sent) == 1
        held = send_findings([finding(2), finding(3)], channel=channel, con=con)
        assert not held.ok and {d.reason for _, d in held.pending} == {"rate_limited"}
        assert 50 < held.pending[0][1].retry_after_s <= 60
        assert rx.requests == 1  # held back without a request
    assert len(sent_rows(con)) == 1


def test_lost_answer_resends_the_same_event_id(rx, con):
    """Sentry stored the event but its answer never came: the finding stays unrecorded and
    the resend carries the same event id, which Sentry discards as a duplicate."""
    rx.hold_answers()
    f = finding()
    try:
        lost = send_findings([f], dsn=rx.dsn, con=con, timeout_s=0.5)
    finally:
        rx.release_answers()
    assert not lost.ok and sent_rows(con) == []
    assert lost.pending[0][1].reason == "no_answer"
    assert lost.problem.startswith("Sentry did not answer (no answer within 0.5 s)")
    assert rx.wait_for(lambda r: len(r.envelopes) == 1)
    assert send_findings([f], dsn=rx.dsn, con=con).ok
    assert [e["event_id"] for e in rx.events()] == [event_id_for(f.fingerprint)] * 2


def test_max_sends_the_rest_as_one_summary(rx, con):
    findings = [finding(n, entity=f"block-{n}") for n in range(6)]
    findings[4].severity = "warning"
    result = send_findings(findings, dsn=rx.dsn, con=con, max_events=2)
    assert result.ok and len(result.sent) == 2 and len(result.summarised) == 4
    events = rx.events()
    assert len(events) == 3
    summary = next(e for e in events if e["fingerprint"] == ["conflict-audit", "summary"])
    assert "4 more conflict findings" in summary["message"]
    assert summary["contexts"]["summary"]["count"] == 4
    assert summary["contexts"]["summary"]["by_severity"] == {"error": 3, "warning": 1}
    assert summary["level"] == "error"
    # The summarised findings were reported (in the summary): not sent again.
    assert len(sent_rows(con)) == 6
    assert send_findings(findings, dsn=rx.dsn, con=con, max_events=2).sent == []
    assert len(rx.events()) == 3


def test_max_prefers_severe_findings_and_one_per_issue(rx):
    repeats = [finding(n) for n in range(3)]  # one Sentry issue
    other = finding(9, entity="block-B")
    mild = finding(10, entity="block-C", severity="info")
    result = send_findings([mild, *repeats, other], dsn=rx.dsn, max_events=2)
    assert {f.entity for f, _ in result.sent} == {"block-A", "block-B"}
    assert mild in result.summarised


def test_min_severity_and_detector_select(rx):
    findings = [
        finding(1, severity="info"),
        finding(2, severity="warning", detector="oscillation"),
        finding(3, severity="error", detector="chain_break"),
    ]
    result = send_findings(findings, dsn=rx.dsn, min_severity="warning",
                           detectors=["oscillation"])
    assert [f.detector for f, _ in result.sent] == ["oscillation"] and result.filtered == 2
    with pytest.raises(AuditError, match="unknown severity"):
        send_findings(findings, dsn=rx.dsn, min_severity="fatal")


def test_dry_run_contacts_nobody_and_records_nothing(rx, con):
    findings = [finding(n) for n in range(3)]
    result = send_findings(findings, con=con, dry_run=True, max_events=2)  # no DSN needed
    assert result.dry_run and len(result.would_send) == 2 and len(result.would_summarise) == 1
    assert rx.requests == 0 and sent_rows(con) == []


def test_missing_or_bad_dsn_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    with pytest.raises(AuditError, match="no Sentry DSN"):
        send_findings([finding()])
    with pytest.raises(AuditError, match="invalid Sentry DSN"):
        send_findings([finding()], dsn="not a dsn")


def test_the_hosts_own_sentry_is_left_alone(rx):
    """In-process alerting neither uses nor replaces the application's Sentry set-up."""
    with SentryReceiver() as host_rx:
        sentry_sdk.init(dsn=host_rx.dsn, default_integrations=False)
        try:
            sentry_sdk.set_tag("host_tag", "yes")
            sentry_sdk.set_user({"id": "host-user"})
            sentry_sdk.add_breadcrumb(message="host breadcrumb")
            host_client = sentry_sdk.get_client()
            assert send_findings([finding()], dsn=rx.dsn).ok
            assert sentry_sdk.get_client() is host_client
            sentry_sdk.capture_message("host message")
            sentry_sdk.flush(5)
        finally:
            sentry_sdk.get_client().close(timeout=0)
            sentry_sdk.get_global_scope().set_client(None)
            sentry_sdk.get_isolation_scope().clear()
        (ours,) = rx.events()
        assert "host_tag" not in ours["tags"] and "user" not in ours
        assert not ours.get("breadcrumbs", {}).get("values")
        assert [e["message"] for e in host_rx.events()] == ["host message"]


def test_check_ins_reach_the_monitor(rx):
    with SentryChannel(rx.dsn, environment="prod") as channel:
        check_in_id, answer = check_in(channel, "conflict-audit", "in_progress")
        assert answer.accepted
        check_in(channel, "conflict-audit", "ok", check_in_id=check_in_id, duration_s=1.5)
    checkins = rx.checkins()
    assert [(c["monitor_slug"], c["status"]) for c in checkins] == [
        ("conflict-audit", "in_progress"), ("conflict-audit", "ok")
    ]
    assert checkins[0]["check_in_id"] == checkins[1]["check_in_id"] == check_in_id
    assert "duration" not in checkins[0] and checkins[1]["duration"] == 1.5
    assert checkins[1]["environment"] == "prod"


def test_a_rate_limit_on_events_does_not_hold_check_ins_back(rx):
    with SentryChannel(rx.dsn) as channel:
        rx.respond(200, {"X-Sentry-Rate-Limits": "60:error;transaction:organization"})
        assert send_findings([finding(1)], channel=channel).ok
        assert check_in(channel, "conflict-audit", "ok")[1].accepted
        held = send_findings([finding(2)], channel=channel)
        assert held.pending[0][1].reason == "rate_limited"
        rx.respond(429, {"Retry-After": "30"})  # no categories: everything waits
        assert check_in(channel, "conflict-audit", "ok")[1].reason == "rate_limited"
        assert check_in(channel, "conflict-audit", "ok")[1].reason == "rate_limited"
    assert rx.requests == 3 and len(rx.checkins()) == 1


def test_retry_after_may_be_an_http_date(rx):
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    rx.respond(429, {"Retry-After": when})
    limited = send_findings([finding()], dsn=rx.dsn)
    assert 590 < limited.pending[0][1].retry_after_s <= 600


def test_an_event_says_where_it_comes_from(rx):
    assert send_findings([finding()], dsn=rx.dsn).ok
    (envelope,) = rx.envelopes
    (event,) = rx.events()
    assert envelope.headers["event_id"] == event["event_id"]
    assert event["sdk"]["name"] == "conflict-audit" and event["environment"] == "production"
    assert event["server_name"] == socket.gethostname()
    assert event["logger"] == "conflict-audit" and event["platform"] == "other"


def test_values_json_cannot_carry_and_huge_values_still_reach_sentry(rx, con):
    f = finding()
    f.witnesses[0]["new"] = float("nan")
    f.witnesses[1]["old"] = float("-inf")
    f.witnesses[1]["new"] = {"content": "x" * 50_000}
    assert send_findings([f], dsn=rx.dsn, con=con).ok
    witnesses = rx.events()[0]["contexts"]["conflict"]["witnesses"]
    assert witnesses[0]["new"] == "nan" and witnesses[1]["old"] == "-inf"
    cut = witnesses[1]["new"]["content"]
    assert cut.startswith("x" * VALUE_MAX) and cut.endswith("… (48,000 more characters)")
    assert len(sent_rows(con)) == 1


def test_the_conflict_context_carries_what_the_detector_measured(rx, con, tmp_path):
    """A real finding: two writers read version 1 and both wrote "done" (a lost update whose
    writes converge, so a warning); its facts reach Sentry as the detector kept them."""
    log = tmp_path / "race.jsonl"
    log.write_text("".join(json.dumps({
        "event_id": event_id, "ts": f"2024-05-01T10:00:0{n}Z", "entity": "block-A",
        "field": "status", "old": "pending", "new": "done", "writer": writer,
        "base_version": 1, "version": n + 1}) + "\n"
        for n, (event_id, writer) in enumerate([("s1", "workflow"), ("s2", "polling_sync")], 1)))
    ingest(con, [str(log)])
    (lost,) = check(con, detectors=["lost_update"])
    assert send_findings([lost], dsn=rx.dsn).ok
    (event,) = rx.events()
    assert event["level"] == "warning"
    ctx = event["contexts"]["conflict"]
    assert ctx["severity"] == "warning"
    assert ctx["facts"] == {"rule": "version", "read_version": 1, "overwritten_version": 2,
                            "convergent": True}
    assert [w["blind"] for w in ctx["witnesses"]] == [False, False]


def test_facts_json_cannot_carry_reach_sentry_as_text_and_bounded(rx):
    """A finding made elsewhere may carry any facts: Sentry still gets plain JSON."""
    f = finding()
    f.facts = {"span_s": float("inf"), "note": "y" * 5000, "at": datetime(2024, 5, 1, tzinfo=UTC),
               "seen": (1, float("nan")), "rule": "version"}
    assert send_findings([f], dsn=rx.dsn).ok
    facts = rx.events()[0]["contexts"]["conflict"]["facts"]
    assert facts["span_s"] == "inf" and facts["seen"] == [1, "nan"] and facts["rule"] == "version"
    assert facts["at"] == "2024-05-01 00:00:00+00:00"
    assert facts["note"] == "y" * VALUE_MAX + "… (3,000 more characters)"

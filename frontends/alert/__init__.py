"""Findings to Sentry, once each.

"Once each" rests on three rules (README, "Alerts in Sentry"):

* a finding is recorded in the store's ``sent_alerts`` only after Sentry answered the
  envelope that carried it with a 2xx: each envelope is posted and its answer read before
  anything is recorded (``delivery``);
* anything else (refused connection, 5xx, 4xx, 429 rate limit, no answer in time) leaves it
  unrecorded, so the next run sends it again, and the run reports the failure;
* every event's id is derived from the finding's fingerprint (``payload``), so if an answer
  is lost after Sentry stored the event (a timeout, a crash before recording), the resend
  carries the same id and Sentry discards it as a duplicate instead of alerting twice.

The modules: ``selection`` (which findings are new and go), ``payload`` (a finding as a
Sentry event), ``delivery`` (posting envelopes, Sentry's answers and rate limits),
``crons`` (check-ins), ``run`` (one run: select, deliver, record).
"""

from frontends.alert.crons import check_in, monitored
from frontends.alert.delivery import DEFAULT_TIMEOUT_S, Delivery, SentryChannel
from frontends.alert.payload import event_for, event_id_for, summary_event, writers_tag
from frontends.alert.run import (
    BATCH,
    AlertResult,
    channel_for,
    detect,
    run_alerts,
    send_findings,
)
from frontends.alert.selection import DEFAULT_MAX, Selection, check_selection, select_new

__all__ = [
    "BATCH",
    "DEFAULT_MAX",
    "DEFAULT_TIMEOUT_S",
    "AlertResult",
    "Delivery",
    "Selection",
    "SentryChannel",
    "channel_for",
    "check_in",
    "check_selection",
    "detect",
    "event_for",
    "event_id_for",
    "monitored",
    "run_alerts",
    "select_new",
    "send_findings",
    "summary_event",
    "writers_tag",
]

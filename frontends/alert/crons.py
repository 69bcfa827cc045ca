"""Sentry Crons check-ins, so that a stopped audit job is noticed too.

A run is bracketed: ``in_progress`` when it starts, then ``ok``, or ``error`` when it failed
or could not deliver everything. The watcher sends a heartbeat instead (README, "Alerts in
Sentry"). A check-in that does not get through is not retried: the monitor itself reports
the missing check-in, which is the point of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from frontends.alert.delivery import Delivery, SentryChannel

Status = Literal["in_progress", "ok", "error"]


def check_in(
    channel: SentryChannel,
    monitor_slug: str,
    status: Status,
    *,
    check_in_id: str | None = None,
    duration_s: float | None = None,
) -> tuple[str, Delivery]:
    """Send one check-in; returns its id (pass it to the closing check-in) and the answer."""
    check_in_id = check_in_id or uuid.uuid4().hex
    payload: dict[str, object] = {
        "check_in_id": check_in_id, "monitor_slug": monitor_slug, "status": status,
    }
    if duration_s is not None:
        payload["duration"] = duration_s
    return check_in_id, channel.send_checkin(payload)


class Monitored:
    """The closing status of a bracketed run: ``ok`` unless marked failed."""

    def __init__(self) -> None:
        self.failed = False


@contextmanager
def monitored(channel: SentryChannel | None, monitor_slug: str | None) -> Iterator[Monitored]:
    """Bracket a run in check-ins (nothing without a channel or a slug). An exception, or
    ``mark.failed = True``, closes the run with ``error``."""
    mark = Monitored()
    if channel is None or not monitor_slug:
        yield mark
        return
    started = time.monotonic()
    check_in_id, _ = check_in(channel, monitor_slug, "in_progress")
    try:
        yield mark
    except BaseException:
        mark.failed = True
        raise
    finally:
        check_in(channel, monitor_slug, "error" if mark.failed else "ok",
                 check_in_id=check_in_id, duration_s=time.monotonic() - started)

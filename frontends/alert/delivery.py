"""Delivery to Sentry, one envelope at a time, with Sentry's answer to each.

sentry-sdk's client is fire-and-forget: ``capture_event`` returns before anything is sent
and a failed request is only logged, while "once each" needs to know, per event, whether
Sentry accepted it. So the alerting does not use the SDK's client, scope or transport at
all. It builds each envelope with the SDK's public ``Envelope`` and posts it itself with
urllib3 (which sentry-sdk depends on), synchronously, reading the answer:

* 2xx: accepted. Anything else (refused connection, 4xx/5xx, 429, no answer in time) is
  not, and the run says why.
* Sentry's rate limits are honoured as the SDK would: a 429's ``Retry-After`` and the
  ``X-Sentry-Rate-Limits`` header (on any answer) hold back envelopes of the limited
  categories, without a request, until the limit ends. A channel kept across runs (watch
  mode) keeps them in force.

Nothing process-wide is touched: no ``sentry_sdk.init``, no client, no scope, no
integration; a host application's own Sentry set-up is neither used nor changed.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3
from sentry_sdk.consts import EndpointType
from sentry_sdk.envelope import Envelope
from sentry_sdk.utils import BadDsn, Dsn, get_default_release

from audit.errors import AuditError

DEFAULT_TIMEOUT_S = 15.0  # how long one batch of envelopes may take to be answered
DEFAULT_RETRY_AFTER_S = 60.0  # a 429 without Retry-After: what Sentry's SDKs assume


def _our_version() -> str:
    try:
        return version("conflict-audit")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


SDK = {"name": "conflict-audit", "version": _our_version()}


@dataclass(frozen=True)
class Delivery:
    """What became of one envelope."""

    accepted: bool
    reason: str = "accepted"  # accepted|rate_limited|rejected|unreachable|no_answer|not_attempted
    detail: str = ""
    retry_after_s: float | None = None


class RateLimits:
    """Sentry's rate limits, per data category (``error``, ``monitor``, …), as it announces
    them: a 429 with ``Retry-After``, or ``X-Sentry-Rate-Limits`` on any answer."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # category ("" = every category) -> monotonic end

    def update(self, status: int, headers: Any) -> None:
        now = time.monotonic()
        announced = headers.get("X-Sentry-Rate-Limits")
        if announced:
            # "retry_after:categories:scope[:reason[:namespaces]], …"; no categories = all
            for limit in announced.split(","):
                seconds, _, rest = limit.strip().partition(":")
                categories = rest.partition(":")[0]
                try:
                    ends = now + float(seconds)
                except ValueError:
                    continue
                for category in categories.split(";") if categories else [""]:
                    self._until[category] = max(self._until.get(category, 0.0), ends)
        elif status == 429:
            self._until[""] = now + _retry_after_s(headers.get("Retry-After"))

    def remaining_s(self, category: str) -> float | None:
        """Seconds until ``category`` may be sent again; None when it is not limited."""
        now = time.monotonic()
        ends = max(self._until.get(category, 0.0), self._until.get("", 0.0))
        return ends - now if ends > now else None


def _retry_after_s(header: str | None) -> float:
    """Retry-After is seconds or an HTTP date."""
    if not header:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S


def _pool(url: str) -> urllib3.PoolManager:
    """A connection pool for Sentry's host, through the environment's proxy if it has one
    for that host (as the SDK does)."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if proxy and not proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy)
    return urllib3.PoolManager()


def _error_detail(body: bytes) -> str:
    """Sentry explains a refusal as JSON ``{"detail": ...}``; a proxy's HTML page says nothing."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return ""
    return " ".join(str(detail).split())[:200] if detail else ""


def _network_error(exc: BaseException, host: str) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return f"cannot reach {host}: {errno.group(1).strip() if errno else text.splitlines()[0]}"


class SentryChannel:
    """A line to one Sentry project: its DSN, its rate limits, a connection pool.

    Reuse one across runs (watch mode) so that Sentry's rate limits stay in force between
    them. Each envelope is posted and answered before the next goes.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        environment: str | None = None,
        release: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        dsn = dsn or os.environ.get("SENTRY_DSN")
        if not dsn:
            raise AuditError("no Sentry DSN: pass --dsn or set SENTRY_DSN")
        try:
            parsed = Dsn(dsn)
        except BadDsn as exc:
            raise AuditError(f"invalid Sentry DSN: {exc}") from None
        auth = parsed.to_auth(client=f"{SDK['name']}/{SDK['version']}")
        self.url = auth.get_api_url(EndpointType.ENVELOPE)
        self.host = parsed.netloc
        self._auth_header = auth.to_header()
        # What sentry-sdk would fill in: its default environment, its guess of the release
        # (SENTRY_RELEASE, the git commit, a platform's variable).
        self.environment = environment or "production"
        self.release = release or get_default_release()
        self.server_name = socket.gethostname()
        self.timeout_s = timeout_s
        self.limits = RateLimits()
        self._http = _pool(self.url)

    # --- what every payload carries ----------------------------------------------------

    def _stamp(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` with the run's environment, release, host, SDK name and time."""
        stamped = {
            "timestamp": datetime.now(UTC).isoformat(),
            "platform": "other",
            "environment": self.environment,
            "server_name": self.server_name,
            "sdk": dict(SDK),
            **payload,
        }
        if self.release:
            stamped.setdefault("release", self.release)
        return stamped

    # --- sending -----------------------------------------------------------------------

    def deliver(self, events: list[dict[str, Any]]) -> dict[str, Delivery]:
        """Post one envelope per event (each with its ``event_id``), in order, within one
        timeout for all; returns what Sentry answered to each. Once Sentry cannot be reached
        or stops answering, the rest are not tried."""
        deadline = time.monotonic() + self.timeout_s
        out: dict[str, Delivery] = {}
        network_failure: Delivery | None = None
        for event in events:
            event_id = event["event_id"]
            if network_failure is not None:
                out[event_id] = network_failure
                continue
            envelope = Envelope(headers={"event_id": event_id, "sent_at": _now()})
            envelope.add_event(self._stamp(event))
            out[event_id] = delivery = self._send(envelope, deadline)
            if delivery.reason in ("unreachable", "no_answer"):
                network_failure = delivery
        return out

    def send_checkin(self, checkin: dict[str, Any]) -> Delivery:
        """Post one Crons check-in (frontends/alert/crons.py builds it)."""
        envelope = Envelope(headers={"sent_at": _now()})
        envelope.add_checkin(self._stamp(checkin))
        return self._send(envelope, time.monotonic() + self.timeout_s)

    def _send(self, envelope: Envelope, deadline: float) -> Delivery:
        """Post one envelope and read Sentry's answer (by ``deadline``, a monotonic time)."""
        category = envelope.items[0].data_category if envelope.items else "default"
        held = self.limits.remaining_s(category)
        if held is not None:
            return Delivery(False, "rate_limited", "held back by Sentry's rate limit", held)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Delivery(False, "no_answer", f"no answer within {self.timeout_s:g} s")
        try:
            body = gzip.compress(envelope.serialize())
        except (TypeError, ValueError) as exc:  # a payload JSON cannot carry: our bug
            return Delivery(False, "rejected", f"the event is not valid JSON: {exc}")
        try:
            response = self._http.request(
                "POST", self.url, body=body,
                headers={
                    "Content-Type": "application/x-sentry-envelope",
                    "Content-Encoding": "gzip",
                    "X-Sentry-Auth": self._auth_header,
                    "User-Agent": f"{SDK['name']}/{SDK['version']}",
                },
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                retries=False, redirect=False,
            )
        except urllib3.exceptions.ReadTimeoutError:
            return Delivery(False, "no_answer", f"no answer within {self.timeout_s:g} s")
        except urllib3.exceptions.ProtocolError as exc:  # the answer was cut off: stored?
            return Delivery(False, "no_answer", f"the connection broke: {exc}")
        except urllib3.exceptions.HTTPError as exc:
            return Delivery(False, "unreachable", _network_error(exc, self.host))
        status = response.status
        self.limits.update(status, response.headers)
        if 200 <= status < 300:
            return Delivery(True, detail=f"HTTP {status}")
        if status == 429:
            return Delivery(False, "rate_limited", "HTTP 429", self.limits.remaining_s(category))
        why = _error_detail(response.data)
        return Delivery(False, "rejected", f"HTTP {status}" + (f": {why}" if why else ""))

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> SentryChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()

"""Slack incoming webhooks: one POST per message, paced per webhook, retried within bounds.

Delivery uses slack-sdk's :class:`WebhookClient` for the request itself, with its own retry
handlers switched off: every attempt, first or retry, goes through :class:`WebhookPacer`, so no
webhook ever sees two requests less than ``min_interval`` apart (start to start, and end of one
to start of the next), whatever Slack answers. (The sdk's ``RateLimitErrorRetryHandler`` would
sleep inside ``send``, uncapped and out of the pacer's sight.) Policy:

* 200 with body ``ok``: delivered.
* 429: wait ``Retry-After`` (the whole webhook waits, not just this message), then try again; a
  ``Retry-After`` longer than the policy's ``max_wait_seconds`` gives up for this run.
* 5xx, connection errors and timeouts: back off and try again, up to ``attempts`` in all.
* Anything else (400 ``invalid_payload``, 403, 404 ``no_service``, 410 ``channel_is_archived``):
  not retried.

Webhook URLs are secrets. The sdk's logger is silenced (it logs the URL at debug level), and
every error text that leaves this module goes through :func:`redact`.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.webhook import WebhookClient

from ..exceptions import RubinMonitoringError
from .retry import RetryPolicy, TryAgain, parse_retry_after, retry_call

log = logging.getLogger(__name__)

# slack-sdk logs request URLs (at debug, and at info when retrying); give it a logger that
# drops everything. Failures are logged here instead, without the URL.
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.CRITICAL + 1)
_SDK_LOG.propagate = False
_SDK_LOG.addHandler(logging.NullHandler())

DEFAULT_RETRY = RetryPolicy(attempts=3, backoff_seconds=1.0, max_wait_seconds=30.0)
DEFAULT_MIN_INTERVAL = 1.0  # Slack: "no more than one message per second" per webhook
DEFAULT_TIMEOUT = 10

_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any of ``secrets`` (nor their path, nor its last segment, which is
    the webhook's token) and without any URL."""
    for secret in secrets:
        if not secret:
            continue
        path = secret.split("://", 1)[-1].partition("/")[2]
        for part in (secret, path, path.rstrip("/").rpartition("/")[2]):
            if len(part) >= 8:
                text = text.replace(part, "<webhook>")
    return _URL.sub("<url>", text)


class SlackDeliveryError(RubinMonitoringError):
    """Slack did not answer ``ok`` to a message after the allowed attempts."""

    def __init__(self, route: str, reason: str, *, attempts: int, status: int | None) -> None:
        self.route = route
        self.reason = reason
        self.attempts = attempts
        self.status = status
        super().__init__(f"route {route}: {reason}")

    @property
    def route_broken(self) -> bool:
        """True when later messages to the same webhook would most likely fail too."""
        return self.status != 400


class WebhookPacer:
    """Start-to-start spacing of at least ``interval`` seconds per key; thread-safe.

    ``acquire`` reserves the next free slot under a lock and sleeps outside it, so different
    keys never wait for each other. ``defer`` pushes a key's next slot back (``Retry-After``).
    """

    def __init__(
        self,
        interval: float = DEFAULT_MIN_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def acquire(self, key: str) -> float:
        """Wait for ``key``'s next slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(key, now))
            self._next[key] = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def defer(self, key: str, seconds: float) -> None:
        """Push ``key``'s next slot to at least ``seconds`` from now (``Retry-After``)."""
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), self._clock() + seconds)


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    reason: str
    status: int | None
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True)
class Sent:
    """A delivered message: how many attempts, how many seconds."""

    attempts: int
    seconds: float


class SlackWebhooks:
    """Posts messages to incoming webhooks, pacing and retrying per webhook URL."""

    def __init__(
        self,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        pacer: WebhookPacer | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self.pacer = pacer or WebhookPacer(min_interval)
        self._clients: dict[str, WebhookClient] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> WebhookClient:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = WebhookClient(
                    url, timeout=self.timeout, logger=_SDK_LOG, retry_handlers=[]
                )
                self._clients[url] = client
            return client

    def _attempt(self, url: str, payload: Mapping[str, Any]) -> _Outcome:
        try:
            response = self._client(url).send_dict(dict(payload))
        except (OSError, http.client.HTTPException) as error:
            # Connection refused or reset, timeouts, malformed answers: worth another try.
            return _Outcome(False, redact(f"{type(error).__name__}: {error}", [url]), None, True)
        except Exception as error:
            # SlackRequestError, http.client.InvalidURL...: their text may quote the URL.
            return _Outcome(False, redact(f"{type(error).__name__}: {error}", [url]), None, False)
        status = response.status_code
        body = redact((response.body or "").strip()[:200], [url])
        if status == 200 and body == "ok":
            return _Outcome(True, "ok", status, False)
        retry_after = None
        if status == 429:
            headers = {key.lower(): value for key, value in response.headers.items()}
            retry_after = parse_retry_after(headers.get("retry-after"))
        return _Outcome(
            False,
            f"Slack answered {status} {body!r}",
            status,
            status == 429 or status >= 500,
            retry_after,
        )

    def post(self, url: str, payload: Mapping[str, Any], *, route: str) -> Sent:
        """Deliver one message or raise :class:`SlackDeliveryError` (URL never included)."""
        started = time.monotonic()

        def attempt(number: int) -> Sent:
            self.pacer.acquire(url)
            try:
                outcome = self._attempt(url, payload)
            finally:
                # Spacing also counts from the end of each request, so the webhook never sees
                # two arrivals closer than the interval, however long a request took.
                self.pacer.defer(url, self.pacer.interval)
            if outcome.ok:
                return Sent(number, time.monotonic() - started)
            failed = SlackDeliveryError(
                route, outcome.reason, attempts=number, status=outcome.status
            )
            if outcome.retry_after is not None and outcome.retry_after > cap:
                raise SlackDeliveryError(
                    route,
                    f"{outcome.reason}, Retry-After {outcome.retry_after:.0f}s is longer than "
                    f"{cap:.0f}s; left for the next run",
                    attempts=number,
                    status=outcome.status,
                )
            if not outcome.retryable:
                raise exhausted(failed, number)
            raise TryAgain(failed, outcome.retry_after)

        def on_retry(error: Exception, number: int, wait: float) -> None:
            reason = error.reason if isinstance(error, SlackDeliveryError) else str(error)
            log.warning(
                "route %s: %s (attempt %d of %d); retrying in %.1fs",
                route,
                reason,
                number,
                self.retry.attempts,
                wait,
            )

        def exhausted(error: Exception, attempts: int) -> Exception:
            if not isinstance(error, SlackDeliveryError) or attempts == 1:
                return error
            return SlackDeliveryError(
                route,
                f"{error.reason} after {attempts} attempts",
                attempts=attempts,
                status=error.status,
            )

        cap = self.retry.max_wait_seconds
        return retry_call(
            attempt,
            self.retry,
            pause=lambda wait: self.pacer.defer(url, wait),
            on_retry=on_retry,
            exhausted=exhausted,
        )

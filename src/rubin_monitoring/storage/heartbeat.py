"""The heartbeat call: one GET to ``HEARTBEAT_URL``, short timeout, bounded retries.

The URL is a secret (a ping URL lets anyone report the monitoring healthy): it is never logged,
printed or put in an error; every text that leaves this module goes through
:func:`rubin_monitoring.storage.slack.redact`. The request is made with the standard library's
``urllib``, which logs nothing (httpx and urllib3 log request URLs under ``DEBUG``).
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ..exceptions import RubinMonitoringError
from .http import RetryPolicy, parse_retry_after
from .slack import redact

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # 3 attempts stay well inside the notifier CronJob's 50 s deadline
DEFAULT_RETRY = RetryPolicy(attempts=3, backoff_seconds=1.0, max_wait_seconds=10.0)


class HeartbeatError(RubinMonitoringError):
    """The heartbeat URL did not answer 2xx after the allowed attempts."""

    def __init__(self, reason: str, attempts: int) -> None:
        self.reason = reason
        self.attempts = attempts
        super().__init__(f"heartbeat not delivered: {reason}")


class HeartbeatPinger:
    """Calls one heartbeat URL."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self.timeout = timeout
        self.retry = retry
        self._sleep = sleep

    def __repr__(self) -> str:
        return "HeartbeatPinger(url=***)"

    def ping(self) -> int:
        """GET the URL until it answers 2xx; return the attempts it took, or raise
        :class:`HeartbeatError`. 4xx other than 429 is not retried (the URL is wrong)."""
        request = urllib.request.Request(
            self._url, method="GET", headers={"User-Agent": "rubin-monitoring heartbeat"}
        )
        for attempt in range(1, self.retry.attempts + 1):
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                return attempt
            except urllib.error.HTTPError as error:
                reason = f"answered {error.code}"
                retryable = error.code == 429 or error.code >= 500
                retry_after = parse_retry_after(error.headers.get("Retry-After"))
                error.close()
            except (OSError, http.client.HTTPException, ValueError) as error:
                # Refused, reset, timed out, a malformed answer: worth another try.
                reason = redact(f"{type(error).__name__}: {error}", [self._url])
                retryable = not isinstance(error, ValueError)
            if not retryable or attempt == self.retry.attempts:
                suffix = f" after {attempt} attempts" if attempt > 1 else ""
                raise HeartbeatError(reason + suffix, attempt)
            wait = self.retry.wait(attempt, retry_after)
            log.warning(
                "heartbeat: %s (attempt %d of %d); retrying in %.1fs",
                reason,
                attempt,
                self.retry.attempts,
                wait,
            )
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

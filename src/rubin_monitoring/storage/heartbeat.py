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
from .retry import RetryPolicy, TryAgain, parse_retry_after, retry_call
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

        def attempt(number: int) -> int:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                return number
            except urllib.error.HTTPError as error:
                failed = HeartbeatError(f"answered {error.code}", number)
                retry_after = parse_retry_after(error.headers.get("Retry-After"))
                error.close()
                if error.code == 429 or error.code >= 500:
                    raise TryAgain(failed, retry_after) from None
                raise exhausted(failed, number) from None
            except ValueError as error:  # not a URL urllib can open: no retry helps
                reason = redact(f"{type(error).__name__}: {error}", [self._url])
                raise exhausted(HeartbeatError(reason, number), number) from None
            except (OSError, http.client.HTTPException) as error:
                # Refused, reset, timed out, a malformed answer: worth another try.
                reason = redact(f"{type(error).__name__}: {error}", [self._url])
                raise TryAgain(HeartbeatError(reason, number)) from None

        def on_retry(error: Exception, number: int, wait: float) -> None:
            reason = error.reason if isinstance(error, HeartbeatError) else str(error)
            log.warning(
                "heartbeat: %s (attempt %d of %d); retrying in %.1fs",
                reason,
                number,
                self.retry.attempts,
                wait,
            )

        def exhausted(error: Exception, attempts: int) -> Exception:
            if not isinstance(error, HeartbeatError) or attempts == 1:
                return error
            return HeartbeatError(f"{error.reason} after {attempts} attempts", attempts)

        return retry_call(
            attempt, self.retry, pause=self._sleep, on_retry=on_retry, exhausted=exhausted
        )

"""The one retry engine of the toolkit: every client that retries (InfluxDB's management API,
the alert store's queries and writes, Slack webhooks, the heartbeat, and creates whose outcome
is unknown) runs its attempts through :func:`retry_call` with a :class:`RetryPolicy`.

An attempt either returns, raises its final error, or raises :class:`TryAgain` carrying the
error to raise if no attempt is left (and the server's ``Retry-After``). Between attempts the
engine waits the policy's backoff (never less than ``Retry-After``, never more than the
policy's cap, never past the run's :class:`Availability` budget), through a ``pause`` the
client chooses (a sleep, or a webhook pacer's deferral).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ..exceptions import InfluxDBUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` in all, exponential backoff from
    ``backoff_seconds``, no wait longer than ``max_wait_seconds``."""

    attempts: int = 4
    backoff_seconds: float = 0.5
    max_wait_seconds: float = 30.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: the backoff, or ``Retry-After`` when that
        is longer (``Retry-After: 0`` does not make a retry immediate); never more than
        ``max_wait_seconds``."""
        backoff = self.backoff_seconds * 2.0 ** (attempt - 1)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(backoff, self.max_wait_seconds)


DEFAULT_RETRY_BUDGET = 30.0


class Availability:
    """How long one InfluxDB has been failing, shared by every client of it in a run.

    A failure (a timeout, a connection error, a 5xx or 429) starts the clock at the start of
    the failed attempt; any other answer stops it. Once it has run ``budget_seconds``, the
    server counts as gone for the rest of the run. Thread-safe.
    """

    def __init__(
        self,
        budget_seconds: float = DEFAULT_RETRY_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_seconds = budget_seconds
        self.clock = clock
        self._since: float | None = None
        self._gone = False
        self._lock = threading.Lock()

    def failed(self, started: float) -> None:
        """An attempt that started at ``started`` (``clock()`` time) failed."""
        with self._lock:
            if self._since is None or started < self._since:
                self._since = started
            if self.clock() - self._since >= self.budget_seconds:
                self._gone = True

    def answered(self) -> None:
        """The server answered (not with a server error): it is working."""
        with self._lock:
            if not self._gone:
                self._since = None

    def remaining(self) -> float | None:
        """Seconds left of the budget while the server is failing (never below 0), or None
        while it is not."""
        with self._lock:
            if self._gone:
                return 0.0
            if self._since is None:
                return None
            return max(0.0, self.budget_seconds - (self.clock() - self._since))

    @property
    def gone(self) -> bool:
        """True once the server failed for the whole budget."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def gone_error(self, url: object, what: str) -> InfluxDBUnavailableError:
        """The error of a request not sent because the server is gone."""
        return InfluxDBUnavailableError(
            f"InfluxDB at {url} has failed every request for {self.budget_seconds:g}s "
            f"(HTTP_RETRY_BUDGET); giving up ({what})"
        )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class TryAgain(Exception):
    """An attempt failed in a way the next one may not: ``error`` is what the caller gets if
    no attempt is left, ``retry_after`` what the server asked to wait (seconds)."""

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _log_retry(error: Exception, attempt: int, wait: float) -> None:
    log.warning("%s; retrying in %.1fs", error, wait)


def retry_call(
    attempt: Callable[[int], T],
    policy: RetryPolicy,
    *,
    availability: Availability | None = None,
    pause: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Exception, int, float], None] = _log_retry,
    exhausted: Callable[[Exception, int], Exception] | None = None,
) -> T:
    """``attempt(n)`` for n = 1, 2, ... until it returns or raises something else than
    :class:`TryAgain`, at most ``policy.attempts`` times, and never once ``availability`` says
    the server is gone. Then the last :class:`TryAgain`'s error is raised (through
    ``exhausted(error, attempts)`` when given). ``on_retry(error, n, wait)`` is told of each
    retry before the ``pause(wait)``."""
    for number in range(1, policy.attempts + 1):
        try:
            return attempt(number)
        except TryAgain as failed:
            last_chance = number == policy.attempts
            if last_chance or (availability is not None and availability.gone):
                error = failed.error if exhausted is None else exhausted(failed.error, number)
                raise error from None
            wait = policy.wait(number, failed.retry_after)
            remaining = None if availability is None else availability.remaining()
            if remaining is not None:
                wait = min(wait, remaining)
            on_retry(failed.error, number, wait)
            pause(wait)
    raise AssertionError("unreachable")  # pragma: no cover

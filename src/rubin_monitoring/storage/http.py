"""The one HTTP policy for InfluxDB: auth header, retries with backoff, error mapping, paging.

Retried: connection errors, timeouts, 429 and 5xx, honouring ``Retry-After``. Not retried: other
4xx, which become :class:`InfluxDBError` (401/403 become :class:`InfluxDBAuthError`). 5xx
through every attempt is :class:`InfluxDBServerError` (exit 3: the server is not working).

Retries are bounded twice: ``attempts`` per request, and one budget for the whole run
(:class:`Availability`): once InfluxDB has failed every request for ``budget_seconds`` (timeouts
included), every request fails at once, so a hung server ends a run within the budget however
many requests it was going to make.

A request that is not safe to repeat (a ``POST`` that creates something: InfluxDB does not refuse
a second task or token with the same description) is retried only when the server surely did
not act on it: the connection was never made, or it answered 429 or 503. Any other failure (a
timeout, a connection dropped after the request was sent, a 500, 502 or 504) raises
:class:`OutcomeUnknownError`, and the caller finds out whether the object exists before it
creates it again (:func:`create_once`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ..exceptions import (
    InfluxDBAuthError,
    InfluxDBError,
    InfluxDBServerError,
    InfluxDBUnavailableError,
)
from ..models.names import one_line

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that say the server did not act on the request, so even a create may be repeated.
NOT_ACTED_STATUSES = frozenset({429, 503})
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})

T = TypeVar("T")


class OutcomeUnknownError(InfluxDBUnavailableError):
    """A request that is not safe to repeat failed after it may have reached the server."""


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


def error_message_of(body: str, reason: str) -> str:
    """The ``message`` of an InfluxDB error body, else its first 300 characters, else
    ``reason``."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or reason
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return reason


def is_permission_failure(status: int, message: str) -> bool:
    """401/403, and the 500 some endpoints answer for a missing permission
    (``failed to create task: unauthorized``), which retrying cannot fix."""
    return status in (401, 403) or (status == 500 and message.endswith("unauthorized"))


class InfluxHTTP:
    """Thread-safe JSON client for the InfluxDB v2 API that counts the requests it sends."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        availability: Availability | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.availability = availability or Availability()
        self._client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )
        self._lock = threading.Lock()
        self.request_count = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> InfluxHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return the 2xx response or raise.

        ``repeatable`` (default: true for GET, HEAD, PUT, PATCH, DELETE) says whether the
        request may be sent again when its outcome is unknown; if not, such a failure raises
        :class:`OutcomeUnknownError` at once.
        """
        shown = urlsplit(path).path
        if repeatable is None:
            repeatable = method.upper() in REPEATABLE_METHODS
        for attempt in range(1, self.retry.attempts + 1):
            remaining = self.availability.remaining()
            if remaining is not None and remaining <= 0:
                raise self.availability.gone_error(self._client.base_url, f"{method} {shown}")
            timeout = self.timeout if remaining is None else min(self.timeout, remaining)
            with self._lock:
                self.request_count += 1
            started = self.availability.clock()
            try:
                response = self._client.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    content=content,
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.TransportError as error:
                self.availability.failed(started)
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                if not repeatable and not never_sent:
                    raise OutcomeUnknownError(
                        f"{method} {shown}: no answer from InfluxDB at {self._client.base_url} "
                        f"({type(error).__name__}); the request may or may not have been done"
                    ) from None
                if attempt == self.retry.attempts or self.availability.gone:
                    raise InfluxDBUnavailableError(
                        f"cannot reach InfluxDB at {self._client.base_url} "
                        f"({method} {shown}): {type(error).__name__}: {error}"
                    ) from None
                wait = self._wait(attempt, None)
                log.warning("%s %s: %s; retrying in %.1fs", method, shown, error, wait)
                time.sleep(wait)
                continue
            status = response.status_code
            if status in RETRY_STATUSES:
                self.availability.failed(started)
            else:
                self.availability.answered()
            if response.is_success:
                return response
            message = error_message_of(response.text, response.reason_phrase)
            if is_permission_failure(status, message):
                raise InfluxDBAuthError(method, shown, status, message)
            if status in RETRY_STATUSES and not repeatable and status not in NOT_ACTED_STATUSES:
                raise OutcomeUnknownError(
                    f"{method} {shown}: InfluxDB answered {status} {message}; the request may "
                    "or may not have been done"
                )
            if status in RETRY_STATUSES:
                if attempt < self.retry.attempts and not self.availability.gone:
                    wait = self._wait(
                        attempt, parse_retry_after(response.headers.get("Retry-After"))
                    )
                    log.warning(
                        "%s %s: %d %s; retrying in %.1fs", method, shown, status, message, wait
                    )
                    time.sleep(wait)
                    continue
                raise InfluxDBServerError(method, shown, status, message)
            raise InfluxDBError(method, shown, status, message)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """The backoff before the next attempt, never past the end of the budget."""
        wait = self.retry.wait(attempt, retry_after)
        remaining = self.availability.remaining()
        return wait if remaining is None else min(wait, remaining)

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path`` with retries; the decoded JSON body."""
        return self.request("GET", path, params=params).json()

    def paginate(self, path: str, params: Mapping[str, str | int], key: str) -> Iterator[Any]:
        """Yield items of every page, following ``links.next`` until the server omits it.

        A restricted token can get short pages before the end (the server filters after
        paging), so the page length is never taken as the end of the list. A ``links.next``
        on another origin than the configured one is refused (the token would go there).
        """
        body = self.get_json(path, params)
        seen: set[str] = set()
        while True:
            yield from body.get(key) or []
            next_link = (body.get("links") or {}).get("next")
            if not next_link or next_link in seen:
                return
            seen.add(next_link)
            body = self.get_json(self._same_origin(str(next_link), path))

    def _same_origin(self, link: str, listing: str) -> str:
        """``link`` as a path on the configured server; :class:`InfluxDBUnavailableError` if it
        names another origin."""
        target = urlsplit(link)
        if not target.scheme and not target.netloc:
            return link
        base = self._client.base_url
        try:
            port = target.port if target.port is not None else _DEFAULT_PORTS.get(target.scheme)
        except ValueError:
            port = -1
        if (target.scheme, target.hostname, port) != (
            base.scheme,
            base.host,
            base.port or _DEFAULT_PORTS.get(base.scheme),
        ):
            host = target.hostname or "?"
            raise InfluxDBUnavailableError(
                f"InfluxDB's answer to GET {urlsplit(listing).path} links its next page on "
                f"another origin ({one_line(target.scheme)}://{one_line(host)}); refused: the "
                "token is sent only to INFLUXDB_URL"
            )
        return target._replace(scheme="", netloc="").geturl()


def create_once(
    send: Callable[[], T],
    find: Callable[[], T | None],
    *,
    what: str,
    attempts: int = 4,
    backoff_seconds: float = 0.5,
) -> T:
    """Create something exactly once: ``send()`` creates it; when its outcome is unknown
    (:class:`OutcomeUnknownError`), ``find()`` looks for it, and only if it is not there is it
    sent again. Returns what ``send`` or ``find`` returned."""
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except OutcomeUnknownError as error:
            log.warning("%s: %s; looking before trying again", what, error)
            found = find()
            if found is not None:
                log.info("%s: it was done after all", what)
                return found
            if attempt == attempts:
                raise
            time.sleep(backoff_seconds * 2.0 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover

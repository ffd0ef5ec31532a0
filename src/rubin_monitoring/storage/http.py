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
from collections.abc import Callable, Iterator, Mapping
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
from .retry import Availability, RetryPolicy, TryAgain, parse_retry_after, retry_call

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that say the server did not act on the request, so even a create may be repeated.
NOT_ACTED_STATUSES = frozenset({429, 503})
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})

T = TypeVar("T")


class OutcomeUnknownError(InfluxDBUnavailableError):
    """A request that is not safe to repeat failed after it may have reached the server."""


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
        base = self._client.base_url

        def attempt(number: int) -> httpx.Response:
            remaining = self.availability.remaining()
            if remaining is not None and remaining <= 0:
                raise self.availability.gone_error(base, f"{method} {shown}")
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
                        f"{method} {shown}: no answer from InfluxDB at {base} "
                        f"({type(error).__name__}); the request may or may not have been done"
                    ) from None
                raise TryAgain(
                    InfluxDBUnavailableError(
                        f"cannot reach InfluxDB at {base} ({method} {shown}): "
                        f"{type(error).__name__}: {error}"
                    )
                ) from None
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
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise TryAgain(InfluxDBServerError(method, shown, status, message), retry_after)
            raise InfluxDBError(method, shown, status, message)

        def on_retry(error: Exception, number: int, wait: float) -> None:
            log.warning("%s %s: %s; retrying in %.1fs", method, shown, error, wait)

        return retry_call(attempt, self.retry, availability=self.availability, on_retry=on_retry)

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
    policy: RetryPolicy | None = None,
) -> T:
    """Create something exactly once: ``send()`` creates it; when its outcome is unknown
    (:class:`OutcomeUnknownError`), ``find()`` looks for it, and only if it is not there is it
    sent again (within ``policy``). Returns what ``send`` or ``find`` returned."""

    def attempt(number: int) -> T:
        try:
            return send()
        except OutcomeUnknownError as error:
            log.warning("%s: %s; looking before trying again", what, error)
            found = find()
            if found is not None:
                log.info("%s: it was done after all", what)
                return found
            raise TryAgain(error) from None

    return retry_call(attempt, policy or RetryPolicy(), on_retry=lambda *_: None)

"""The HTTP client's limits (issue 15): the run's retry budget, and pagination that never
leaves the configured server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from rubin_monitoring.exceptions import InfluxDBUnavailableError
from rubin_monitoring.storage.http import InfluxHTTP
from rubin_monitoring.storage.retry import Availability, RetryPolicy, TryAgain, retry_call


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_runs_from_the_first_failed_attempt_until_an_answer() -> None:
    clock = Clock()
    availability = Availability(30, clock)
    assert availability.remaining() is None
    availability.failed(started=100.0)
    clock.now = 110.0
    assert availability.remaining() == 20.0 and not availability.gone
    availability.answered()  # one answer: the server works
    assert availability.remaining() is None
    availability.failed(started=110.0)
    clock.now = 140.0
    availability.failed(started=139.0)
    assert availability.gone and availability.remaining() == 0.0
    availability.answered()  # gone is for the rest of the run
    assert availability.gone


@contextmanager
def server(pages: dict[str, dict[str, object]]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A server answering ``pages`` by path, recording each request's path and token."""
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization", "")))
            body = json.dumps(pages.get(self.path.split("?")[0], {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_links_next_on_another_origin_is_refused_and_gets_no_token() -> None:
    with server({"/api/v2/buckets": {"buckets": [{"name": "stolen"}]}}) as (other, other_seen):
        pages: dict[str, dict[str, object]] = {
            "/api/v2/buckets": {
                "buckets": [{"name": "a"}],
                "links": {"next": f"{other}/api/v2/buckets?after=a"},
            }
        }
        with server(pages) as (url, _), InfluxHTTP(url, "the-token") as http:
            listed = http.paginate("/api/v2/buckets", {"limit": 1}, "buckets")
            assert next(listed) == {"name": "a"}
            with pytest.raises(InfluxDBUnavailableError, match="another origin"):
                next(listed)
    assert other_seen == []


def test_links_next_on_the_same_origin_is_followed_as_a_path() -> None:
    pages: dict[str, dict[str, object]] = {}
    with server(pages) as (url, seen), InfluxHTTP(url, "t") as http:
        pages["/api/v2/buckets"] = {
            "buckets": [{"name": "a"}],
            "links": {"next": f"{url}/api/v2/more?after=a"},
        }
        pages["/api/v2/more"] = {"buckets": [{"name": "b"}]}
        names = [item["name"] for item in http.paginate("/api/v2/buckets", {}, "buckets")]
    assert names == ["a", "b"]
    assert [path for path, _ in seen] == ["/api/v2/buckets", "/api/v2/more?after=a"]


def test_one_retry_engine_stops_at_the_policy_and_at_the_budget() -> None:
    """Every client retries through retry_call: at most the policy's attempts, waits of at least
    Retry-After (capped), none past the run's budget, the last error raised."""
    waits: list[float] = []
    tries: list[int] = []

    def failing(number: int) -> str:
        tries.append(number)
        raise TryAgain(ValueError(f"failure {number}"), retry_after=2.0 if number == 1 else None)

    policy = RetryPolicy(attempts=3, backoff_seconds=0.5, max_wait_seconds=10)
    with pytest.raises(ValueError, match="failure 3"):
        retry_call(failing, policy, pause=waits.append, on_retry=lambda *_: None)
    assert tries == [1, 2, 3] and waits == [2.0, 1.0]

    clock = Clock()
    availability = Availability(5, clock)
    availability.failed(started=clock.now - 4)  # one second of budget left
    tries.clear()
    waits.clear()

    def slow(number: int) -> str:
        clock.now += 2
        return failing(number)

    with pytest.raises(ValueError, match="failure 1"):
        retry_call(
            slow,
            policy,
            availability=availability,
            pause=waits.append,
            on_retry=lambda *_: None,
        )
    assert tries == [1] and waits == []  # the budget ran out during the first attempt

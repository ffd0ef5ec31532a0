"""A local HTTP server that speaks the Slack incoming-webhook protocol, for tests and benches.

POST a JSON body to any path (or GET it: the server is also the recording receiver of the
notifier's heartbeat, whose posts have ``method`` ``GET`` and an empty body); the answer is
scripted per path: queue behaviours with
:meth:`SlackServer.script` (each request takes the next one), and when the queue is empty the
path's default applies (``ok`` unless :meth:`SlackServer.default` says otherwise):

* ``Ok()``: 200 ``ok`` (text/html, as Slack answers)
* ``RateLimited(retry_after)``: 429 ``rate_limited`` with ``Retry-After``
* ``Fail(status, body)``: e.g. 500 ``rollup_error``, 404 ``no_service``
* ``Hang(seconds)``: answer nothing for ``seconds`` (past the client's timeout), then close

Every request is recorded (path, parsed body, arrival time, what was answered). The server
never logs request lines, so webhook paths stay out of test output.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_PATH = "/services/T000/B000/SECRETxyz"
SECRET = "SECRETxyz"  # must never appear in any output or log line


def assert_no_secret(*texts: str, secret: str = SECRET) -> None:
    """Fail if the test webhook's secret appears in any of ``texts``."""
    for text in texts:
        assert secret not in text, f"webhook secret leaked into: {text[:2000]!r}"


@dataclass(frozen=True)
class Ok:
    """Answer 200 ``ok``."""

    pass


@dataclass(frozen=True)
class RateLimited:
    """Answer 429 with ``Retry-After``."""

    retry_after: float = 1.0


@dataclass(frozen=True)
class Fail:
    """Answer an error status with a body."""

    status: int = 500
    body: str = "rollup_error"


@dataclass(frozen=True)
class Hang:
    """Hold the request without answering for a while."""

    seconds: float = 30.0


Behaviour = Ok | RateLimited | Fail | Hang


@dataclass(frozen=True)
class Post:
    """One request the server received, and what it answered."""

    path: str
    body: dict[str, Any]
    arrived: float  # time.monotonic() on arrival
    answer: Behaviour
    method: str = "POST"

    @property
    def text(self) -> str:
        """What a person reads: the payload's ``text``, then each attachment's, one per line."""
        parts = [str(self.body.get("text", ""))]
        for attachment in self.body.get("attachments") or []:
            parts.append(str(attachment.get("text", "")))
        return "\n".join(parts)

    @property
    def colours(self) -> list[str]:
        """The attachments' bar colours, in order."""
        return [str(a.get("color", "")) for a in self.body.get("attachments") or []]

    @property
    def ok(self) -> bool:
        """True when the server answered 200 ``ok``."""
        return isinstance(self.answer, Ok)


class SlackServer:
    """A local HTTP server that speaks Slack's incoming-webhook protocol and records what it got."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._defaults: dict[str, Behaviour] = {}
        self._posts: list[Post] = []
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the default logs the request line, webhook path included

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_invalid": raw.decode("utf-8", "replace")}
                self._handle(body)

            def do_GET(self) -> None:
                self._handle({}, "GET")

            def _handle(self, body: dict[str, Any], method: str = "POST") -> None:
                answer = server._next(self.path)
                server._record(Post(self.path, body, time.monotonic(), answer, method))
                if isinstance(answer, Hang):
                    server._stopping.wait(answer.seconds)
                    self.close_connection = True
                    return
                if isinstance(answer, Ok):
                    self._answer(200, "ok")
                elif isinstance(answer, RateLimited):
                    self._answer(429, "rate_limited", {"Retry-After": f"{answer.retry_after:g}"})
                else:
                    self._answer(answer.status, answer.body)

            def _answer(
                self, status: int, text: str, headers: dict[str, str] | None = None
            ) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._httpd.server_address[1])

    def url(self, path: str = SECRET_PATH) -> str:
        """A webhook URL on this server (``path`` defaults to one with the test secret)."""
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Behaviour) -> None:
        """Answer the next requests with ``answers``, in order."""
        with self._lock:
            self._scripts[path].extend(answers)

    def default(self, path: str, answer: Behaviour) -> None:
        """The answer once the script is used up."""
        with self._lock:
            self._defaults[path] = answer

    def _next(self, path: str) -> Behaviour:
        with self._lock:
            queue = self._scripts[path]
            return queue.popleft() if queue else self._defaults.get(path, Ok())

    def _record(self, post: Post) -> None:
        with self._lock:
            self._posts.append(post)

    def posts(self, path: str | None = None) -> list[Post]:
        """Every request received so far."""
        with self._lock:
            return [post for post in self._posts if path is None or post.path == path]

    def delivered(self, path: str | None = None) -> list[Post]:
        """Posts answered ``ok``: the messages a channel would show."""
        return [post for post in self.posts(path) if post.ok]

    def clear(self) -> None:
        """Forget the requests and the script."""
        with self._lock:
            self._posts.clear()
            self._scripts.clear()
            self._defaults.clear()

    def start(self) -> SlackServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def slack_server() -> Iterator[SlackServer]:
    """A running Slack stand-in for the duration of the ``with`` block."""
    server = SlackServer().start()
    try:
        yield server
    finally:
        server.stop()


def max_per_second(times: list[float]) -> int:
    """The most requests that started within any one-second window (half-open)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def min_gap(times: list[float]) -> float | None:
    """The smallest time between two arrivals at one webhook path."""
    ordered = sorted(times)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    return min(gaps) if gaps else None

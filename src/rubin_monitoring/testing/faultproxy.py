"""A fault-injecting HTTP/1.1 proxy for tests: what a flaky network or server does to a client.

``FaultProxy(upstream_url)`` listens on a free 127.0.0.1 port and forwards to ``upstream_url``
(``http://127.0.0.1:PORT``). It reads whole HTTP/1.1 messages (``Content-Length``, chunked and
close-delimited bodies, keep-alive), so each fault hits exactly one request. Modes (:class:`Fault`):

* ``none``: forward, relay the answer;
* ``status_503``: answer 503 with ``Retry-After: 0`` without forwarding;
* ``drop_response``: forward, read the upstream's full answer, then close the client connection
  without sending anything (the server did the work, the client never heard);
* ``delay``: forward, and hold the answer for ``delay`` seconds (past the client's timeout);
* ``reset``: close the client connection with a TCP RST (``SO_LINGER`` 0), without forwarding;
* ``refuse``: the server is gone: every new connection is reset as soon as it is accepted, and a
  request on an open connection is answered by a reset (only through :meth:`FaultProxy.fail_all`
  or a decider).

Which requests are hit: :meth:`FaultProxy.set_faults` with a mode, a rate, methods and a path
prefix (a seeded ``random.Random`` draws once per matching request, in arrival order, so runs are
deterministic for a given seed and request order), or with a decider callback that chooses the
mode of every request. Every request (and every refused connection, with empty method and path)
is recorded in :attr:`FaultProxy.events` before its outcome can reach the client.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from io import BufferedReader
from select import select
from types import TracebackType
from typing import NamedTuple, Self
from urllib.parse import urlsplit

__all__ = ["Decider", "Fault", "FaultEvent", "FaultProxy", "RequestInfo"]

_MAX_LINE = 65536
_MAX_HEADERS = 256


class Fault(StrEnum):
    NONE = "none"
    STATUS_503 = "status_503"
    DROP_RESPONSE = "drop_response"
    DELAY = "delay"
    RESET = "reset"
    REFUSE = "refuse"


class FaultEvent(NamedTuple):
    """One request (or refused connection) and what the proxy did with it."""

    method: str
    path: str
    mode: Fault
    upstream_status: int | None  # None when the request never got an answer from upstream


@dataclass(frozen=True)
class RequestInfo:
    """What a decider sees: ``index`` counts requests from 0 over the proxy's life."""

    index: int
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names


Decider = Callable[[RequestInfo], Fault | str]


@dataclass(frozen=True)
class _Rule:
    mode: Fault = Fault.NONE
    rate: float = 1.0
    methods: frozenset[str] | None = None
    path_prefix: str = "/"
    delay: float = 10.0
    decider: Decider | None = None


class _ProtocolError(Exception):
    pass


@dataclass
class _Message:
    start: bytes  # the start line, without its line ending
    headers: list[tuple[str, str]]
    body: bytes = b""  # as on the wire: chunked framing kept

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    def tokens(self, name: str) -> list[str]:
        return [
            token.strip().lower()
            for value in self.values(name)
            for token in value.split(",")
            if token.strip()
        ]

    def head(self) -> bytes:
        lines = [self.start, *(f"{key}: {value}".encode("latin-1") for key, value in self.headers)]
        return b"\r\n".join([*lines, b"", b""])

    def wire(self) -> bytes:
        return self.head() + self.body

    def chunked(self) -> bool:
        codings = self.tokens("transfer-encoding")
        return bool(codings) and codings[-1] == "chunked"

    def content_length(self) -> int | None:
        values = {value.strip() for value in self.values("content-length")}
        if not values:
            return None
        if len(values) != 1 or not (value := values.pop()).isdigit():
            raise _ProtocolError(f"bad Content-Length: {self.values('content-length')}")
        return int(value)


def _read_line(reader: BufferedReader) -> bytes:
    line = reader.readline(_MAX_LINE)
    if not line.endswith(b"\n"):
        raise _ProtocolError("truncated or overlong line")
    return line


def _read_exact(reader: BufferedReader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise _ProtocolError("truncated body")
    return data


def _read_head(reader: BufferedReader) -> _Message | None:
    """The next message's start line and headers; None on a clean end of stream."""
    line = reader.readline(_MAX_LINE)
    while line in (b"\r\n", b"\n"):  # stray line endings between messages are allowed
        line = reader.readline(_MAX_LINE)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise _ProtocolError("truncated or overlong start line")
    message = _Message(line.rstrip(b"\r\n"), [])
    while (line := _read_line(reader)) not in (b"\r\n", b"\n"):
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name.strip() or len(message.headers) >= _MAX_HEADERS:
            raise _ProtocolError(f"bad header line: {line[:100]!r}")
        message.headers.append((name.strip(), value.strip()))
    return message


def _read_chunked(reader: BufferedReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = _read_line(reader)
        parts.append(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _ProtocolError(f"bad chunk size line: {line[:100]!r}") from None
        if size == 0:
            break
        chunk = _read_exact(reader, size + 2)
        if not chunk.endswith(b"\r\n"):
            raise _ProtocolError("chunk not followed by CRLF")
        parts.append(chunk)
    while True:  # trailer section, up to its empty line
        line = _read_line(reader)
        parts.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(parts)


def _read_body(reader: BufferedReader, message: _Message, *, until_close: bool) -> bytes:
    if message.chunked():
        return _read_chunked(reader)
    length = message.content_length()
    if length is not None:
        return _read_exact(reader, length)
    return reader.read() if until_close else b""


def _status(response: _Message) -> int:
    parts = response.start.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise _ProtocolError(f"bad status line: {response.start[:100]!r}")
    return int(parts[1])


def _keeps_alive(message: _Message, version: bytes) -> bool:
    tokens = message.tokens("connection")
    if version == b"HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: unsent and unread data are dropped."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


_SERVICE_UNAVAILABLE = b'{"code":"unavailable","message":"fault proxy: injected 503"}'


def _service_unavailable(keep_alive: bool) -> bytes:
    lines = [
        b"HTTP/1.1 503 Service Unavailable",
        b"Content-Type: application/json; charset=utf-8",
        b"Retry-After: 0",
        f"Content-Length: {len(_SERVICE_UNAVAILABLE)}".encode(),
        b"Connection: " + (b"keep-alive" if keep_alive else b"close"),
        b"",
        b"",
    ]
    return b"\r\n".join(lines) + _SERVICE_UNAVAILABLE


@dataclass
class _Conn:
    """One socket and its buffered reader (closed together: the reader keeps the fd alive)."""

    sock: socket.socket
    reader: BufferedReader = field(init=False)

    def __post_init__(self) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def stale(self) -> bool:
        """True if the peer closed (or sent something unasked) while the connection sat idle."""
        readable, _, _ = select([self.sock], [], [], 0)
        return bool(readable)

    def close(self, *, rst: bool = False) -> None:
        self.reader.close()
        if rst:
            _reset(self.sock)
        else:
            self.sock.close()


class FaultProxy:
    """See the module docstring. Use as a context manager, or :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        upstream_url: str,
        *,
        seed: int = 0,
        delay: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream = (parts.hostname, parts.port or 80)
        self._seed = seed
        self._default_delay = delay
        self._lock = threading.Lock()
        self._rule = _Rule(delay=delay)
        self._rng = random.Random(seed)
        self._requests = 0
        self._connections = 0
        self._events: list[FaultEvent] = []
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self._host = host
        self._port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"faultproxy-{self._port}", daemon=True
        )

    # -- life cycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> Self:
        self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop accepting, cut every open connection (client and upstream), end the threads."""
        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what to break

    def set_faults(
        self,
        mode: Fault | str | Decider,
        *,
        rate: float = 1.0,
        methods: Collection[str] | None = None,
        path_prefix: str = "/",
        delay: float | None = None,
    ) -> None:
        """From now on, apply ``mode`` to a ``rate`` fraction of the requests whose method is in
        ``methods`` (None: any) and whose path starts with ``path_prefix``; the others pass.

        ``mode`` may instead be a decider: called for every request, it returns the mode (rate,
        methods and path_prefix are then ignored). The random draws restart from the seed.
        ``delay`` (seconds, for ``delay``) defaults to the constructor's.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], not {rate}")
        decider: Decider | None = None
        fault = Fault.NONE
        if callable(mode):
            decider = mode
        else:
            fault = Fault(mode)
            if fault is Fault.REFUSE:
                raise ValueError("refuse is connection-wide: use fail_all('refuse')")
        self._install(
            _Rule(
                mode=fault,
                rate=rate,
                methods=None if methods is None else frozenset(m.upper() for m in methods),
                path_prefix=path_prefix,
                delay=self._default_delay if delay is None else delay,
                decider=decider,
            )
        )

    def fail_all(self, mode: Fault | str, *, delay: float | None = None) -> None:
        """Apply ``mode`` to every request; ``refuse`` also resets every new connection."""
        fault = Fault(mode)
        self._install(_Rule(mode=fault, delay=self._default_delay if delay is None else delay))

    def heal(self) -> None:
        """Forward everything again."""
        self._install(_Rule(delay=self._default_delay))

    def _install(self, rule: _Rule) -> None:
        with self._lock:
            self._rule = rule
            self._rng = random.Random(self._seed)

    # -- what happened

    @property
    def events(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)

    @property
    def counts(self) -> Counter[Fault]:
        """Events per mode."""
        with self._lock:
            return Counter(event.mode for event in self._events)

    @property
    def connections(self) -> int:
        """Client connections accepted so far (refused ones included)."""
        with self._lock:
            return self._connections

    def clear_events(self) -> None:
        with self._lock:
            self._events.clear()

    def _record(self, event: FaultEvent) -> None:
        with self._lock:
            self._events.append(event)

    def _decide(self, method: str, path: str, request: _Message) -> tuple[Fault, float]:
        with self._lock:
            rule = self._rule
            index = self._requests
            self._requests += 1
            if rule.decider is not None:
                info = RequestInfo(
                    index, method, path, {key.lower(): value for key, value in request.headers}
                )
                return Fault(rule.decider(info)), rule.delay
            if rule.mode is Fault.NONE:
                return Fault.NONE, rule.delay
            if (rule.methods is not None and method not in rule.methods) or not path.startswith(
                rule.path_prefix
            ):
                return Fault.NONE, rule.delay
            hit = rule.rate >= 1.0 or self._rng.random() < rule.rate
            return (rule.mode if hit else Fault.NONE), rule.delay

    # -- the threads

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._sockets.add(sock)
            return True

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self._connections += 1
                refusing = self._rule.decider is None and self._rule.mode is Fault.REFUSE
                if refusing:
                    self._events.append(FaultEvent("", "", Fault.REFUSE, None))
            if refusing or not self._track(sock):
                _reset(sock)
                continue
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _connect_upstream(self) -> _Conn | None:
        try:
            sock = socket.create_connection(self._upstream, timeout=5)
        except OSError:
            return None
        sock.settimeout(None)
        if not self._track(sock):
            sock.close()
            return None
        return _Conn(sock)

    def _serve(self, sock: socket.socket) -> None:
        client = _Conn(sock)
        upstream: _Conn | None = None
        rst = False
        try:
            while not self._stopping.is_set():
                outcome = self._exchange(client, upstream)
                upstream = outcome.upstream
                if not outcome.keep_open:
                    rst = outcome.rst
                    return
        except (OSError, _ProtocolError):
            return
        finally:
            if upstream is not None:
                self._untrack(upstream.sock)
                upstream.close()
            self._untrack(sock)
            client.close(rst=rst)

    def _exchange(self, client: _Conn, upstream: _Conn | None) -> _Outcome:
        """Read one request from ``client``, apply its fault, answer (or not)."""
        request = _read_head(client.reader)
        if request is None:
            return _Outcome(upstream, keep_open=False)
        parts = request.start.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _ProtocolError(f"bad request line: {request.start[:100]!r}")
        method, target, version = parts[0].decode("latin-1"), parts[1].decode("latin-1"), parts[2]
        if "100-continue" in request.tokens("expect"):
            # Answer the interim response here: upstream gets the whole request at once.
            request.headers = [(k, v) for k, v in request.headers if k.lower() != "expect"]
            if request.chunked() or request.content_length():
                client.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.body = _read_body(client.reader, request, until_close=False)
        client_keeps_alive = _keeps_alive(request, version)

        fault, delay = self._decide(method, target, request)
        if fault in (Fault.RESET, Fault.REFUSE):
            self._record(FaultEvent(method, target, fault, None))
            return _Outcome(upstream, keep_open=False, rst=True)
        if fault is Fault.STATUS_503:
            self._record(FaultEvent(method, target, fault, None))
            client.sock.sendall(_service_unavailable(client_keeps_alive))
            return _Outcome(upstream, keep_open=client_keeps_alive)

        if upstream is not None and upstream.stale():
            self._untrack(upstream.sock)
            upstream.close()
            upstream = None
        if upstream is None:
            upstream = self._connect_upstream()
        if upstream is None:  # as a client talking to a dead server directly would see it
            self._record(FaultEvent(method, target, fault, None))
            return _Outcome(None, keep_open=False, rst=True)
        try:
            upstream.sock.sendall(request.wire())
            response, status, upstream_keeps_alive = self._read_response(upstream, method)
        except (OSError, _ProtocolError):
            self._record(FaultEvent(method, target, fault, None))
            raise
        self._record(FaultEvent(method, target, fault, status))

        if fault is Fault.DROP_RESPONSE:
            return _Outcome(upstream, keep_open=False)
        if fault is Fault.DELAY and self._stopping.wait(delay):
            return _Outcome(upstream, keep_open=False)
        client.sock.sendall(response)
        if not upstream_keeps_alive:
            self._untrack(upstream.sock)
            upstream.close()
            return _Outcome(None, keep_open=False)
        return _Outcome(upstream, keep_open=client_keeps_alive)

    def _read_response(self, upstream: _Conn, method: str) -> tuple[bytes, int, bool]:
        """The upstream's answer as wire bytes (interim 1xx answers included), its final status,
        and whether the upstream connection stays usable."""
        wire: list[bytes] = []
        while True:
            response = _read_head(upstream.reader)
            if response is None:
                raise _ProtocolError("upstream closed without answering")
            status = _status(response)
            if 100 <= status < 200 and status != 101:
                wire.append(response.head())
                continue
            break
        version = response.start.split(None, 1)[0]
        keeps_alive = _keeps_alive(response, version) and status != 101
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            response.body = b""
        else:
            delimited = response.chunked() or response.content_length() is not None
            response.body = _read_body(upstream.reader, response, until_close=True)
            keeps_alive = keeps_alive and delimited
        wire.append(response.wire())
        return b"".join(wire), status, keeps_alive


@dataclass(frozen=True)
class _Outcome:
    upstream: _Conn | None
    keep_open: bool
    rst: bool = False

"""The fault proxy against a tiny local upstream that records every request it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from rubin_monitoring.testing.faultproxy import Fault, FaultEvent, FaultProxy, RequestInfo

CHUNKS = [b"first chunk\n", b"", b"x" * 5000, b"last\n"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: bytes
    peer: tuple[str, int]  # the proxy's upstream connection


class Upstream:
    """HTTP/1.1 keep-alive server: ``/chunked`` answers in chunks, ``/empty`` with 204, anything
    else with JSON echoing the request; chunked request bodies are decoded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every answer waits out a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                with upstream._lock:
                    upstream._received.append(
                        Received(self.command, self.path, body, self.client_address[:2])
                    )
                if self.path == "/chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Trailer", "X-Checksum")
                    self.end_headers()
                    for chunk in CHUNKS:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\nX-Checksum: 42\r\n\r\n")
                    return
                if self.path == "/empty":
                    self.send_response(204)
                    self.end_headers()
                    return
                data = json.dumps(
                    {"method": self.command, "path": self.path, "length": len(body)}
                ).encode()
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url, seed=1, delay=1.0) as proxy:
        yield proxy


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=2.0) as client:
        yield client


def test_none_forwards_and_records(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    response = client.post("/api/v2/buckets", json={"name": "b"})
    assert response.status_code == 201
    assert response.json() == {"method": "POST", "path": "/api/v2/buckets", "length": 12}
    assert [(r.method, r.path) for r in upstream.received] == [("POST", "/api/v2/buckets")]
    assert proxy.events == [FaultEvent("POST", "/api/v2/buckets", Fault.NONE, 201)]
    assert proxy.events[0] == ("POST", "/api/v2/buckets", "none", 201)


def test_status_503_never_reaches_upstream(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    proxy.fail_all("status_503")
    response = client.post("/api/v2/buckets", json={"name": "b"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "0"
    assert upstream.received == []
    assert proxy.events == [FaultEvent("POST", "/api/v2/buckets", Fault.STATUS_503, None)]
    proxy.heal()  # the same keep-alive connection then goes through
    assert client.get("/health").status_code == 200
    assert proxy.connections == 1


def test_drop_response_reaches_upstream_once_and_the_client_hears_nothing(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    proxy.fail_all(Fault.DROP_RESPONSE)
    with pytest.raises(httpx.TransportError):
        client.delete("/api/v2/buckets/1")
    assert [(r.method, r.path) for r in upstream.received] == [("DELETE", "/api/v2/buckets/1")]
    assert proxy.events == [FaultEvent("DELETE", "/api/v2/buckets/1", Fault.DROP_RESPONSE, 200)]


def test_delay_outlasts_the_client_timeout(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    proxy.set_faults("delay", delay=1.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v2/tasks", timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert len(upstream.received) == 1
    assert proxy.counts == {Fault.DELAY: 1}
    proxy.heal()
    assert client.get("/api/v2/tasks").status_code == 200


def test_delay_then_answers_a_patient_client(proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.set_faults("delay", delay=0.3)
    started = time.monotonic()
    assert client.get("/slow").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_reset_gives_a_transport_error_without_reaching_upstream(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    proxy.fail_all("reset")
    with pytest.raises(httpx.TransportError):
        client.post("/api/v2/authorizations", json={})
    assert upstream.received == []
    assert proxy.events == [FaultEvent("POST", "/api/v2/authorizations", Fault.RESET, None)]


def test_reset_is_a_tcp_rst(proxy: FaultProxy) -> None:
    proxy.fail_all("reset")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_refuse_resets_new_and_open_connections_until_healed(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    assert client.get("/before").status_code == 200  # leaves an open keep-alive connection
    proxy.fail_all("refuse")
    with pytest.raises(httpx.TransportError):
        client.get("/open")  # on the open connection
    with pytest.raises(httpx.TransportError):
        client.get("/new")  # on a new connection, reset before reading anything
    assert [r.path for r in upstream.received] == ["/before"]
    assert proxy.events[1:] == [
        FaultEvent("GET", "/open", Fault.REFUSE, None),
        FaultEvent("", "", Fault.REFUSE, None),
    ]
    proxy.heal()
    assert client.get("/after").status_code == 200
    with pytest.raises(ValueError):
        proxy.set_faults("refuse", rate=0.5)


def test_keep_alive_requests_get_per_request_faults(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    plan = {1: Fault.STATUS_503, 3: Fault.STATUS_503, 5: Fault.DROP_RESPONSE}
    seen: list[RequestInfo] = []

    def decide(request: RequestInfo) -> Fault:
        seen.append(request)
        return plan.get(request.index, Fault.NONE)

    proxy.set_faults(decide)
    statuses: list[int | str] = []
    for index in range(8):
        try:
            statuses.append(client.post(f"/api/v2/write?n={index}", content=b"m v=1").status_code)
        except httpx.TransportError:
            statuses.append("dropped")
    assert statuses == [201, 503, 201, 503, 201, "dropped", 201, 201]
    assert [r.path for r in upstream.received] == [
        f"/api/v2/write?n={index}" for index in (0, 2, 4, 5, 6, 7)
    ]
    # one client connection until the drop, one after; one upstream connection for each
    assert proxy.connections == 2
    peers = [r.peer for r in upstream.received]
    assert len(set(peers[:4])) == 1
    assert len(set(peers[4:])) == 1
    assert seen[0].method == "POST"
    assert seen[0].headers["content-length"] == "5"
    assert [e.mode for e in proxy.events] == [plan.get(i, Fault.NONE) for i in range(8)]


def test_filters_by_method_and_path_prefix(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    proxy.set_faults("status_503", methods={"post", "DELETE"}, path_prefix="/api/v2/")
    assert client.get("/api/v2/buckets").status_code == 200
    assert client.post("/health", content=b"").status_code == 201
    assert client.post("/api/v2/buckets", content=b"").status_code == 503
    assert client.delete("/api/v2/buckets/1").status_code == 503
    assert [r.path for r in upstream.received] == ["/api/v2/buckets", "/health"]


def test_chunked_responses_and_requests_are_relayed_intact(
    proxy: FaultProxy, client: httpx.Client, upstream: Upstream
) -> None:
    for _ in range(2):  # twice on one connection: the chunked framing ends where it should
        response = client.get("/chunked")
        assert response.status_code == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.content == b"".join(CHUNKS)
    response = client.post("/api/v2/write", content=iter([b"a" * 3000, b"b", b"c" * 10]))
    assert response.json()["length"] == 3011
    assert upstream.received[-1].body == b"a" * 3000 + b"b" + b"c" * 10
    assert proxy.connections == 1

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while data := sock.recv(65536):
            raw += data
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body.startswith(b"c\r\nfirst chunk\n\r\n1388\r\n")
    assert body.endswith(b"5\r\nlast\n\r\n0\r\nX-Checksum: 42\r\n\r\n")


def test_bodiless_answers_keep_the_connection_in_step(
    proxy: FaultProxy, client: httpx.Client
) -> None:
    assert client.delete("/empty").status_code == 204
    head = client.head("/api/v2/buckets")
    assert head.status_code == 200
    assert head.headers["Content-Length"] != "0"
    assert client.get("/api/v2/buckets").json()["method"] == "GET"
    assert proxy.connections == 1


def test_rate_is_deterministic_for_a_seed(upstream: Upstream) -> None:
    def run() -> list[FaultEvent]:
        with (
            FaultProxy(upstream.url, seed=7) as proxy,
            httpx.Client(base_url=proxy.url, timeout=2.0) as client,
        ):
            proxy.set_faults("status_503", rate=0.1, methods={"POST"}, path_prefix="/api/v2/")
            for index in range(200):
                client.post(f"/api/v2/write?n={index}", content=b"m v=1")
                if index % 10 == 0:
                    client.get("/api/v2/buckets")  # not matched: no draw
            return proxy.events

    first, second = run(), run()
    assert first == second
    faulted = [e for e in first if e.mode is Fault.STATUS_503]
    assert 10 <= len(faulted) <= 30
    assert all(e.method == "POST" for e in faulted)
    assert len(upstream.received) == 2 * (220 - len(faulted))


def test_events_are_recorded_from_concurrent_clients(proxy: FaultProxy) -> None:
    proxy.set_faults("status_503", rate=0.5)

    def work() -> None:
        with httpx.Client(base_url=proxy.url, timeout=2.0) as client:
            for _ in range(25):
                client.get("/x")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = proxy.counts
    assert sum(counts.values()) == 100
    assert set(counts) == {Fault.NONE, Fault.STATUS_503}
    assert proxy.connections == 4


def test_an_unreachable_upstream_looks_like_a_dead_server() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with (
        FaultProxy(f"http://127.0.0.1:{port}") as proxy,
        httpx.Client(base_url=proxy.url, timeout=2.0) as client,
    ):
        with pytest.raises(httpx.TransportError):
            client.get("/health")
        assert proxy.events == [FaultEvent("GET", "/health", Fault.NONE, None)]


def test_close_cuts_a_held_response_at_once(upstream: Upstream) -> None:
    proxy = FaultProxy(upstream.url, delay=30.0).start()
    proxy.fail_all("delay")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(proxy.url + "/held", timeout=10.0)
        except httpx.TransportError as error:
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 2
    while not proxy.events and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.close()
    thread.join(timeout=5)
    assert time.monotonic() - started < 1.0
    assert len(errors) == 1

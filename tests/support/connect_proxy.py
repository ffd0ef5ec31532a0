"""An HTTP CONNECT proxy that maps host names to loopback addresses, so a program configured
with a cluster's in-cluster address (``https://kubernetes.default.svc:443``) reaches the lab's
API server on 127.0.0.1 through its proxy setting, with the configured address unchanged (what
it reports as the source stays the in-cluster one).

Typical use::

    from support.connect_proxy import connect_proxy

    with connect_proxy({"kubernetes.default.svc:443": ("127.0.0.1", 6443)}) as proxy:
        ...  # Telegraf's x509_cert with use_proxy = true, proxy_url = proxy.url
        assert proxy.tunnels == 1

Only the mapped addresses are tunnelled; anything else is refused (403).
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ConnectProxy", "connect_proxy"]


@dataclass
class ConnectProxy:
    """A running proxy: its ``url``, and how many tunnels it opened."""

    url: str
    tunnels: int = 0


def _pump(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    while True:
        readable, _, failed = select.select(sockets, [], sockets, 30)
        if failed or not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


@contextmanager
def connect_proxy(routes: Mapping[str, tuple[str, int]]) -> Iterator[ConnectProxy]:
    """Run the proxy on a free 127.0.0.1 port until the block ends; ``routes`` maps
    ``host:port`` (as a CONNECT request names it) to the address to connect to."""
    proxy = ConnectProxy("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            target = routes.get(self.path)
            if target is None:
                self.send_response(403)
                self.end_headers()
                return
            try:
                upstream = socket.create_connection(target, timeout=10)
            except OSError:
                self.send_response(502)
                self.end_headers()
                return
            with lock:
                proxy.tunnels += 1
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            try:
                _pump(self.connection, upstream)
            finally:
                upstream.close()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()

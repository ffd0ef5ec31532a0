"""Serve a recorded Prometheus exposition (``tests/integration/data/exposition/*.prom``) on a
chosen loopback address and port, as the program it was recorded from would.

Each file starts with a header of comment lines (what was recorded, from which source file at
which version, and ``# default name=value`` lines); the body begins at the first ``# HELP``.
``${name}`` in the body is replaced by the test's value, else the default. A value ``now``,
``now+5d`` or ``now-2h`` is that moment as Unix seconds, written as Go's client_golang writes a
float (``1.764950401e+09``). Typical use::

    from support.exposition import exposition_server, free_loopback

    host = free_loopback(10254)  # a 127.x.y.z on which that port is free
    with exposition_server("ingress-nginx-controller", host, 10254) as server:
        server.set_values(times_square_5xx=900)  # the next scrape sees it
        ...
        assert server.scrapes == 2

These, and the kubelet summary, are the suite's only recorded responses: Argo CD,
ingress-nginx, JupyterHub and cert-manager are too heavy to run here.
"""

from __future__ import annotations

import random
import re
import socket
import string
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "EXPOSITIONS",
    "ExpositionServer",
    "defaults",
    "exposition_server",
    "free_loopback",
    "go_float",
    "render",
]

EXPOSITIONS = Path(__file__).resolve().parents[1] / "integration" / "data" / "exposition"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DEFAULT = re.compile(r"^# default (?P<name>[a-z0-9_]+)=(?P<value>\S+)$")
_RELATIVE = re.compile(r"^now(?:(?P<sign>[+-])(?P<amount>\d+)(?P<unit>[smhd]))?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Value = str | float | int


def _path(name: str) -> Path:
    """The file of the recorded exposition ``name`` (``argocd-application-controller``)."""
    path = EXPOSITIONS / (name if name.endswith(".prom") else f"{name}.prom")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in EXPOSITIONS.glob("*.prom")))
        raise FileNotFoundError(f"no recorded exposition {name!r} (known: {known})")
    return path


def _split(text: str) -> tuple[list[str], str]:
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("# HELP "))
    return [line.rstrip("\n") for line in lines[:start]], "".join(lines[start:])


def defaults(name: str) -> dict[str, str]:
    """The ``# default`` values of a recorded exposition, as written."""
    header, _ = _split(_path(name).read_text())
    return {m["name"]: m["value"] for line in header if (m := _DEFAULT.match(line))}


def go_float(value: float) -> str:
    """``value`` as client_golang's text format writes a float (Go's ``'g'``, shortest)."""
    if value == int(value) and abs(value) < 1e21:
        digits = Decimal(int(value)).normalize()
    else:
        digits = Decimal(repr(float(value))).normalize()
    sign, numerals, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    count = len(numerals)
    point = count + exponent  # where the decimal point goes, from the first digit
    power = point - 1
    precision = 6  # Go's shortest 'g' switches to an exponent from 1e+06 (and below 1e-04)
    text = "-" if sign else ""
    if power < -4 or power >= precision:
        mantissa = str(numerals[0]) + ("." + "".join(map(str, numerals[1:])) if count > 1 else "")
        return f"{text}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return text + format(abs(digits), "f")


def _resolve(value: Value, now: float) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return go_float(float(value))
    matched = _RELATIVE.match(str(value))
    if not matched:
        return str(value)
    offset = 0
    if matched["sign"]:
        offset = int(matched["amount"]) * _UNITS[matched["unit"]]
        offset = -offset if matched["sign"] == "-" else offset
    return go_float(float(int(now) + offset))


def render(
    name: str, values: Mapping[str, Value] | None = None, *, now: float | None = None
) -> str:
    """The body of the recorded exposition ``name`` with its ``${...}`` filled from ``values``
    over its defaults (relative times from ``now``, default the current time); a name that the
    file does not declare is an error, so a typo cannot pass silently."""
    header, body = _split(_path(name).read_text())
    known = {m["name"]: m["value"] for line in header if (m := _DEFAULT.match(line))}
    unknown = set(values or {}) - set(known)
    if unknown:
        raise KeyError(f"{name}: no value named {sorted(unknown)} (known: {sorted(known)})")
    moment = time.time() if now is None else now
    merged: dict[str, Value] = {**known, **(values or {})}
    return string.Template(body).substitute({k: _resolve(v, moment) for k, v in merged.items()})


class ExpositionServer:
    """A running server: its ``url``, how many ``scrapes`` it answered, and
    :meth:`set_values` to change what the next scrape sees."""

    def __init__(self, name: str, host: str, port: int, path: str, text: str | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.path = path
        self.text = text
        self.scrapes = 0
        self._values: dict[str, Value] = {}
        self._lock = threading.Lock()
        if text is None:
            render(name)  # a bad file fails before anything listens

    @property
    def url(self) -> str:
        """Where the exposition is served."""
        return f"http://{self.host}:{self.port}{self.path}"

    def set_values(self, **values: Value) -> None:
        """Values for the following scrapes (added to those set before)."""
        if self.text is not None:
            raise ValueError("a server of a given text has no values")
        render(self.name, {**self._values, **values})
        with self._lock:
            self._values.update(values)

    def body(self) -> bytes:
        with self._lock:
            self.scrapes += 1
            values = dict(self._values)
        return (self.text if self.text is not None else render(self.name, values)).encode()


def free_loopback(port: int, attempts: int = 50) -> str:
    """A loopback address 127.x.y.z (not 127.0.0.1) on which ``port`` is free now, so tests
    that need the catalog's fixed ports do not collide with each other or other programs."""
    for _ in range(attempts):
        host = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return host
    raise RuntimeError(f"no loopback address with port {port} free after {attempts} tries")


@contextmanager
def exposition_server(
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/metrics",
    values: Mapping[str, Value] | None = None,
    *,
    text: str | None = None,
) -> Iterator[ExpositionServer]:
    """Serve the recorded exposition ``name`` at ``http://host:port<path>`` (port 0: any free
    one) until the block ends; any other path is a 404. With ``text``, serve that instead (an
    application's own metrics, made up by a test: not a recording; ``name`` only names it)."""
    server = ExpositionServer(name, host, port, path, text)
    if values:
        server.set_values(**values)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != server.path:
                self.send_response(404)
                self.end_headers()
                return
            body = server.body()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer((host, port), Handler)
    server.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()

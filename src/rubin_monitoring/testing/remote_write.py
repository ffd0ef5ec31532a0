"""A Prometheus remote-write 1.0 client for tests and benchmarks: what a Prometheus sends, built
by hand so a test can send what Prometheus never would (another cluster's label, a broken body).
Snappy compression needs ``cramjam`` (a development dependency).

The body of a remote-write request is a ``prometheus.WriteRequest`` (prometheus/prompb
``remote.proto``, ``types.proto``) in protobuf, compressed with snappy's block format, sent
with ``Content-Encoding: snappy``, ``Content-Type: application/x-protobuf`` and
``X-Prometheus-Remote-Write-Version: 0.1.0``. The few messages it needs are encoded here::

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds

Typical use::

    body = write_request([Series({"__name__": "up", "namespace": "mobu"}, [(1.0, now_ms())])])
    response = post(url, body, auth=("idfdev", password))
"""

from __future__ import annotations

import base64
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx

__all__ = [
    "HEADERS",
    "Series",
    "compress",
    "encode",
    "free_ports",
    "now_ms",
    "post",
    "write_request",
]

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


@dataclass(frozen=True)
class Series:
    """One time series: its labels (``__name__`` among them) and samples (value, Unix ms)."""

    labels: Mapping[str, str]
    samples: Sequence[tuple[float, int]]


def now_ms() -> int:
    """The current time in Unix milliseconds, as Prometheus stamps samples."""
    return time.time_ns() // 1_000_000


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 as protobuf writes it: ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _series(series: Series) -> bytes:
    out = bytearray()
    # Prometheus sends labels sorted by name.
    for name, value in sorted(series.labels.items()):
        out += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
    for number, timestamp in series.samples:
        sample = (
            _varint(1 << 3 | 1) + struct.pack("<d", number) + _varint(2 << 3) + _varint(timestamp)
        )
        out += _field(2, sample)
    return bytes(out)


def encode(series: Iterable[Series]) -> bytes:
    """The protobuf ``WriteRequest`` of ``series`` (uncompressed)."""
    return b"".join(_field(1, _series(item)) for item in series)


def compress(data: bytes) -> bytes:
    """``data`` in snappy's block format, as remote write sends it."""
    import cramjam  # a development dependency: only tests and benchmarks compress

    return bytes(cramjam.snappy.compress_raw(data))


def write_request(series: Iterable[Series]) -> bytes:
    """A ready body: the encoded ``WriteRequest``, snappy-compressed."""
    return compress(encode(series))


def post(
    url: str,
    body: bytes,
    *,
    auth: tuple[str, str] | None,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    timeout: float = 30,
) -> httpx.Response:
    """POST ``body`` to ``url`` as Prometheus does (``headers`` added to :data:`HEADERS`),
    with basic ``auth`` (user, password) if given."""
    sent = {**HEADERS, **(headers or {})}
    if auth is not None:
        user, password = auth
        sent["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if client is not None:
        return client.post(url, content=body, headers=sent)
    return httpx.post(url, content=body, headers=sent, timeout=timeout)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1 now (the receiver's
    listeners, one per environment from ``--base-port``)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")

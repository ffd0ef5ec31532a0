"""The remote-write receiver with real programs: the Telegraf of ``receiver-config`` (run as
its manifests run it, ``--strict-env-handling``, with tokenmaker's receiver token and
per-environment passwords) in front of the real influxd, written to as a Prometheus writes
(protobuf, snappy: :mod:`support.remote_write`), so that a test can also send what a
Prometheus never would.

What it proves: a cluster writes only as itself (its credential on its own listener, the
``cluster`` tag the listener's whatever labels the sender adds; any other credential, none, or
another listener: 401, nothing written); its series go to the buckets of the applications its
environment enables, keeping their own namespace label; the rest is dropped and counted per
environment in ``influxdb_``; broken, oversized and hostile bodies are refused while the
receiver keeps serving; a missing password stops it before it listens.

The only change to the generated configuration: ``inputs.internal`` every second instead of
every 30 s, so the drop counters reach InfluxDB within the test.
"""

from __future__ import annotations

import base64
import socket
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from support.cli import run_cli
from support.orgs import OrgUnderTest, new_org
from support.telegraf import TelegrafAgent, generated_toml, run_telegraf_once, telegraf_agent

from rubin_monitoring.models import metrics
from rubin_monitoring.testing.flux import query_rows
from rubin_monitoring.testing.influxd import InfluxServer
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.remote_write import (
    Series,
    compress,
    encode,
    free_ports,
    now_ms,
    post,
    write_request,
)

pytestmark = pytest.mark.integration

APPLICATIONS = ["argocd", "ingress-nginx", "mobu", "times-square"]
DEFAULTS = {**dict.fromkeys(APPLICATIONS, True), "sasquatch": False}
ENVIRONMENTS = {"idfdev": {}, "summit": {"applications": {"sasquatch": True}}}
RESTARTS = metrics.KSM_RESTARTS_TOTAL
INTERNAL = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}


@dataclass
class Receiver:
    org: OrgUnderTest
    agent: TelegrafAgent
    urls: dict[str, str]
    passwords: dict[str, str]
    config: str
    env: dict[str, str]

    def write(self, environment: str, series: list[Series], *, as_: str | None = None) -> int:
        """Write ``series`` to ``environment``'s listener with the credential of ``as_``
        (default: its own); the HTTP status."""
        who = as_ or environment
        body = write_request(series)
        return post(self.urls[environment], body, auth=(who, self.passwords[who])).status_code


def receiver_config(
    org: OrgUnderTest, repo: PhalanxRepo, base_port: int
) -> tuple[str, dict[str, Any]]:
    env = {"INFLUXDB_URL": org.url, "INFLUXDB_ORG": org.name, "PHALANX_REPO": repo.url}
    args = ["receiver-config", "--listen-address", "127.0.0.1", "--base-port", str(base_port)]
    generated = run_cli(args, env)
    assert generated.exit_code == 0, generated.stderr
    described = run_cli([*args, "--output", "json"], env)
    config = tomllib.loads(generated.stdout)
    # The drop counters every second (the generated interval is 30 s).
    (internal,) = config["inputs"]["internal"]
    internal["interval"] = "1s"
    return generated_toml(config), described.json()


def issue_credentials(org: OrgUnderTest, repo: PhalanxRepo) -> dict[str, str]:
    env = org.env(PHALANX_REPO=repo.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    roles = ["receiver", *(f"receiver-{name}" for name in ENVIRONMENTS)]
    issued = run_cli(
        ["tokenmaker", *(arg for role in roles for arg in ("--role", role)), "--output", "json"],
        env,
    )
    assert issued.exit_code == 0, issued.stderr
    tokens: dict[str, str] = issued.json()["tokens"]
    return tokens


@pytest.fixture(scope="module")
def receiver(
    influxdb: InfluxServer, telegraf_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    org = new_org(influxdb)
    repo = PhalanxRepo(tmp_path_factory.mktemp("receiver") / "phalanx")
    repo.set_apps(DEFAULTS, ENVIRONMENTS)
    tokens = issue_credentials(org, repo)
    base_port = free_ports(len(ENVIRONMENTS))
    config, described = receiver_config(org, repo, base_port)
    env = {"INFLUX_TOKEN": tokens["receiver"]}
    passwords = {}
    urls = {}
    for listener in described["listeners"]:
        name = listener["environment"]
        passwords[name] = tokens[f"receiver-{name}"]
        env[listener["password_variable"]] = passwords[name]
        urls[name] = f"http://127.0.0.1:{listener['port']}{listener['path']}"
    ports = [("127.0.0.1", base_port + index) for index in range(len(ENVIRONMENTS))]
    with telegraf_agent(config, env, args=["--strict-env-handling"], ports=ports) as agent:
        yield Receiver(org, agent, urls, passwords, config, env)
        errors = [line for line in agent.log().splitlines() if " E! " in line]
        assert errors == [], agent.log()


def rows(org: OrgUnderTest, bucket: str, flux: str) -> list[dict[str, str]]:
    """The query's rows, without the columns of the query's own range."""
    found = query_rows(org, f'from(bucket: "{bucket}") |> range(start: -1h){flux}')
    return [
        {k: v for k, v in row.items() if k not in ("result", "_start", "_stop")} for row in found
    ]


def wait_rows(
    org: OrgUnderTest, bucket: str, flux: str, count: int = 1, timeout: float = 15
) -> list[dict[str, str]]:
    """The rows of the query once there are at least ``count`` (Telegraf flushes every
    second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = rows(org, bucket, flux)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def marked(marker: str) -> str:
    return f' |> filter(fn: (r) => r.marker == "{marker}")'


def everywhere(org: OrgUnderTest, marker: str) -> list[dict[str, str]]:
    """Every point carrying ``marker`` in any bucket of the org."""
    found = []
    for bucket in query_rows(org, "buckets()"):
        found += rows(org, bucket["name"], marked(marker))
    return found


def test_a_cluster_writes_only_as_itself(receiver: Receiver) -> None:
    marker = uuid.uuid4().hex
    # What a kube-prometheus-stack Prometheus sends (external labels, target labels), plus a
    # cluster label of its own and a try at the routing tag.
    labels = {
        "__name__": RESTARTS,
        "namespace": "mobu",
        "pod": "mobu-0",
        "container": "mobu",
        "uid": "7f9c",
        "job": "kube-state-metrics",
        "instance": "10.1.2.3:8080",
        "prometheus": "monitoring/kube-prometheus-stack-prometheus",
        "prometheus_replica": "prometheus-kube-prometheus-stack-prometheus-0",
        "cluster": "summit",
        "rubin_monitoring_bucket": "sasquatch",
        "marker": marker,
    }
    assert receiver.write("idfdev", [Series(labels, [(3.0, now_ms())])]) == 204
    (row,) = wait_rows(receiver.org, "mobu", marked(marker))
    assert row["_measurement"] == "prometheus" and row["_field"] == RESTARTS
    assert float(row["_value"]) == 3.0
    assert row["cluster"] == "idfdev"
    assert set(row) - INTERNAL == {
        "cluster",
        "namespace",
        "pod",
        "container",
        "uid",
        "job",
        "marker",
    }
    assert everywhere(receiver.org, marker) == [row]

    # Any other credential, none, or another environment's listener: 401, nothing written.
    refused = uuid.uuid4().hex
    body = write_request([Series({**labels, "marker": refused}, [(1.0, now_ms())])])
    idfdev, summit = receiver.urls["idfdev"], receiver.urls["summit"]
    own = {name: (name, password) for name, password in receiver.passwords.items()}
    attempts = {
        "summit's credential on idfdev's listener": (idfdev, own["summit"]),
        "idfdev's credential on summit's listener": (summit, own["idfdev"]),
        "idfdev's password as summit": (summit, ("summit", receiver.passwords["idfdev"])),
        "summit's password as idfdev": (idfdev, ("idfdev", receiver.passwords["summit"])),
        "an empty password": (idfdev, ("idfdev", "")),
        "no credential": (idfdev, None),
    }
    for attempt, (url, auth) in attempts.items():
        assert post(url, body, auth=auth).status_code == 401, attempt
    # The right credential on its listener's port but another environment's path: 404.
    wrong_path = idfdev.replace("/idfdev/", "/summit/")
    assert post(wrong_path, body, auth=("idfdev", receiver.passwords["idfdev"])).status_code == 404
    time.sleep(2)  # two flushes
    assert everywhere(receiver.org, refused) == []


def test_series_go_to_their_environments_buckets_and_the_rest_is_counted(
    receiver: Receiver,
) -> None:
    marker = uuid.uuid4().hex
    now = now_ms()

    def series(namespace: str | None, **extra: str) -> Series:
        labels = {"__name__": RESTARTS, "pod": "p-0", "container": "c", "marker": marker, **extra}
        if namespace is not None:
            labels["namespace"] = namespace
        return Series(labels, [(1.0, now - 1000), (2.0, now)])

    before = unrouted(receiver.org)
    sent = [
        series("times-square"),
        series("sasquatch"),  # enabled in summit only
        series(None),  # no namespace at all
        # A metric of its own namespace label, scraped from the ingress-nginx pod without
        # honor_labels: routed by the target's namespace, keeping its own as namespace.
        Series(
            {
                "__name__": metrics.NGINX_REQUESTS,
                "namespace": "ingress-nginx",
                "exported_namespace": "times-square",
                "status": "503",
                "marker": marker,
            },
            [(7.0, now)],
        ),
        series("times-square", quantile="0.99"),  # a summary's quantile: dropped, as scraped
    ]
    assert receiver.write("idfdev", sent) == 204
    assert receiver.write("summit", [series("sasquatch")]) == 204

    assert len(wait_rows(receiver.org, "times_square", marked(marker), 2)) == 2
    (nginx,) = wait_rows(receiver.org, "ingress_nginx", marked(marker))
    assert (nginx["namespace"], nginx["cluster"], nginx["status"]) == (
        "times-square",
        "idfdev",
        "503",
    )
    assert "exported_namespace" not in nginx
    summit = wait_rows(receiver.org, "sasquatch", marked(marker), 2)
    assert {row["cluster"] for row in summit} == {"summit"} and len(summit) == 2
    found = everywhere(receiver.org, marker)
    assert len(found) == 5, found  # times-square 2, ingress-nginx 1, summit's sasquatch 2
    assert all("quantile" not in row for row in found)

    # idfdev's sasquatch series and the one without a namespace: two series of two samples,
    # counted as dropped for idfdev in influxdb_ (the receiver's own metrics).
    deadline = time.monotonic() + 15
    while unrouted(receiver.org)["idfdev"] - before["idfdev"] < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    after = unrouted(receiver.org)
    assert after["idfdev"] - before["idfdev"] == 4
    assert after["summit"] == before["summit"]


def unrouted(org: OrgUnderTest) -> dict[str, int]:
    """The receiver's latest count of points dropped per environment (``metrics_added`` of its
    ``unrouted:<environment>`` outputs), as written into ``influxdb_``."""
    found = rows(
        org,
        "influxdb_",
        ' |> filter(fn: (r) => r._measurement == "internal_write" and r._field == "metrics_added"'
        ' and r.output == "discard") |> last()',
    )
    counts = {name: 0 for name in ENVIRONMENTS}
    for row in found:
        counts[row["alias"].removeprefix("unrouted:")] = int(row["_value"])
    return counts


def test_bad_bodies_are_refused_and_the_receiver_keeps_serving(receiver: Receiver) -> None:
    url, auth = receiver.urls["idfdev"], ("idfdev", receiver.passwords["idfdev"])
    valid = encode([Series({"__name__": RESTARTS, "namespace": "mobu"}, [(1.0, now_ms())])])
    # 2**32 - 1 bytes announced by a snappy header (a varint), then nothing: the listener
    # refuses it without keeping 4 GiB.
    bomb = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 16
    cases = {
        "not snappy": (b"not snappy at all", 400),
        "snappy, not protobuf": (compress(b"\xff\xff\xff garbage"), 400),
        "protobuf without a metric name": (compress(encode([Series({"a": "b"}, [(1, 1)])])), 400),
        "uncompressed protobuf": (valid, 400),
        "a snappy bomb": (bomb, 400),
    }
    for case, (body, status) in cases.items():
        assert post(url, body, auth=auth).status_code == status, case
    # A body declared larger than max_body_size (8 MiB) is refused before it is read.
    assert declared_body_status(url, auth, 9 * 1024 * 1024) == 413
    assert httpx.get(url, auth=auth).status_code == 405
    # Still serving, and still writing.
    marker = uuid.uuid4().hex
    good = Series({"__name__": RESTARTS, "namespace": "mobu", "marker": marker}, [(1, now_ms())])
    assert receiver.write("idfdev", [good]) == 204
    assert len(wait_rows(receiver.org, "mobu", marked(marker))) == 1
    assert receiver.agent.process.poll() is None
    rss = resident_kib(receiver.agent.process.pid)
    assert rss < 300 * 1024, f"receiver RSS {rss} KiB after the bomb"


def declared_body_status(url: str, auth: tuple[str, str], length: int) -> int:
    """The status answered to a POST declaring a body of ``length`` bytes, of which only the
    first kilobyte is sent (the listener must answer without reading it all)."""
    parts = urlsplit(url)
    credential = base64.b64encode(":".join(auth).encode()).decode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Basic {credential}\r\nContent-Encoding: snappy\r\n"
        f"Content-Type: application/x-protobuf\r\nContent-Length: {length}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(head.encode() + b"\x00" * 1024)
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def resident_kib(pid: int) -> int:
    """A process's resident set size (VmRSS), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.parametrize("password", [None, ""])
def test_a_missing_password_stops_the_receiver_before_it_listens(
    receiver: Receiver, password: str | None
) -> None:
    env = dict(receiver.env)
    if password is None:
        del env["RECEIVER_SUMMIT_PASSWORD"]
    else:
        env["RECEIVER_SUMMIT_PASSWORD"] = password
    done = run_telegraf_once(receiver.config, env, args=["--strict-env-handling"])
    assert done.returncode != 0
    assert "RECEIVER_SUMMIT_PASSWORD" in done.stderr and "is not set" in done.stderr
    assert receiver.passwords["idfdev"] not in done.stderr + done.stdout

"""Start a real InfluxDB v2 for the test session: a provisioned influxd, or Docker if present."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

DEFAULT_INFLUXDB_VERSION = "2.7.12"


def influxdb_version() -> str:
    """The InfluxDB OSS version under test: ``INFLUXDB_VERSION`` (as scripts/provision-influxd
    reads it, ``v`` prefix allowed), else 2.7.12."""
    return (os.environ.get("INFLUXDB_VERSION") or DEFAULT_INFLUXDB_VERSION).removeprefix("v")


def docker_tag(version: str) -> str:
    """The official image's major.minor tag: ``2.7.12`` -> ``2.7``, ``2.10.0`` -> ``2.10``."""
    return ".".join(version.split(".")[:2])


ADMIN_USER = "rubin-admin"
ADMIN_PASSWORD = "rubin-admin-password"


@dataclass(frozen=True)
class InfluxServer:
    """A running influxd: URL, the onboarded org and operator token, where it came from."""

    url: str
    org: str
    org_id: str
    token: str
    source: str
    pid: int | None = None
    """The influxd process, when this session started it (not for Docker)."""

    def client(self, timeout: float = 30) -> httpx.Client:
        """An httpx client with the operator token."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=timeout
        )


class ServerUnavailable(Exception):
    """No influxd binary and no Docker daemon: the reason says what to do."""


def cached_binary() -> Path | None:
    """``INFLUXD_BIN``, or the binary ``scripts/provision-influxd`` cached for ``INFLUXDB_VERSION``,
    or None."""
    explicit = os.environ.get("INFLUXD_BIN")
    if explicit:
        return Path(explicit)
    root = os.environ.get("RUBIN_MONITORING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rubin-monitoring"
    )
    path = Path(root) / f"influxd-{influxdb_version()}" / "influxd"
    return path if path.exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    """Wait for ``/ready``: influxd 2.10 answers ``/health`` before its API, which says 503
    ``{"status":"starting"}`` meanwhile (under load, long enough to fail the onboarding)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"influxd exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"influxd at {url} not ready after {timeout}s")


def check_version(url: str) -> None:
    """Fail fast when ``INFLUXDB_VERSION`` is set and the server is another version (for
    example ``INFLUXD_BIN`` left pointing at the other build)."""
    wanted = os.environ.get("INFLUXDB_VERSION")
    if not wanted:
        return
    running = httpx.get(f"{url}/health", timeout=5).json().get("version")
    if running != influxdb_version():
        raise RuntimeError(f"INFLUXDB_VERSION={wanted} but the influxd under test is {running}")


def onboard(url: str) -> InfluxServer:
    """Run the initial setup: an admin user, an org, a bucket and a known operator token."""
    token = "rubin-test-operator-" + uuid.uuid4().hex
    response = httpx.post(
        f"{url}/api/v2/setup",
        json={
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "org": "rubin-test",
            "bucket": "default",
            "token": token,
        },
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    return InfluxServer(url, body["org"]["name"], body["org"]["id"], token, "")


@contextmanager
def run_binary(binary: Path) -> Iterator[InfluxServer]:
    """Start ``binary`` on a free port with a throwaway data directory; stop and clean up after."""
    data = Path(tempfile.mkdtemp(prefix="rubin-influxd-"))
    port = free_port()
    log = (data / "influxd.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--http-bind-address=127.0.0.1:{port}",
            f"--bolt-path={data / 'influxd.bolt'}",
            f"--sqlite-path={data / 'influxd.sqlite'}",
            f"--engine-path={data / 'engine'}",
            "--reporting-disabled",
            "--log-level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        check_version(url)
        server = onboard(url)
        yield InfluxServer(
            server.url, server.org, server.org_id, server.token, str(binary), process.pid
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def docker_available() -> bool:
    """True when a Docker daemon answers."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextmanager
def run_container() -> Iterator[InfluxServer]:
    """Start the official influxdb image with testcontainers."""
    from testcontainers.core.container import DockerContainer

    image = f"influxdb:{docker_tag(influxdb_version())}"
    with DockerContainer(image).with_exposed_ports(8086) as box:
        url = f"http://{box.get_container_host_ip()}:{box.get_exposed_port(8086)}"
        wait_ready(url, None)
        server = onboard(url)
        yield InfluxServer(server.url, server.org, server.org_id, server.token, "docker")


@contextmanager
def influx_server() -> Iterator[InfluxServer]:
    """A throwaway influxd: the provisioned binary, else Docker, else :class:`ServerUnavailable`."""
    binary = cached_binary()
    if binary is not None:
        with run_binary(binary) as server:
            yield server
        return
    if docker_available():
        with run_container() as server:
            yield server
        return
    raise ServerUnavailable(
        "no influxd binary (run scripts/provision-influxd or set INFLUXD_BIN) "
        "and no Docker daemon for testcontainers"
    )

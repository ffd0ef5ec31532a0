"""Run a real Prometheus in agent mode (``scripts/provision-prometheus``: Debian's 2.42) from
tests: it scrapes what a test gives it and remote-writes, with the write-ahead log that lets
it retry what the receiver did not take.

Typical use::

    from support.prometheus import prometheus_agent

    with prometheus_agent({"scrape_configs": [...], "remote_write": [...]}) as prometheus:
        ...
        sent = prometheus.counter("prometheus_remote_storage_samples_total")

It listens on a free 127.0.0.1 port (its own ``/metrics``, ``/-/ready``) and keeps its WAL in
a throwaway directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.binaries import cached_binary, require_binary
from support.kubestate import Sample, parse_exposition

__all__ = [
    "PROMETHEUS_VERSION",
    "Prometheus",
    "PrometheusUnavailable",
    "prometheus_agent",
    "prometheus_binary",
    "require_prometheus",
]

PROMETHEUS_VERSION = "2.42.0"


class PrometheusUnavailable(Exception):
    """No Prometheus binary: the reason says what to do."""


def prometheus_binary() -> Path | None:
    """``$PROMETHEUS_BIN``, else the binary cached by ``scripts/provision-prometheus``, else
    None."""
    return cached_binary("PROMETHEUS_BIN", f"prometheus-{PROMETHEUS_VERSION}/prometheus")


def require_prometheus() -> Path:
    """The Prometheus binary, or :class:`PrometheusUnavailable` saying how to get one."""
    hint = "run scripts/provision-prometheus or set PROMETHEUS_BIN"
    return require_binary(prometheus_binary(), "prometheus", hint, PrometheusUnavailable)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus agent: ``url`` serves its own ``/metrics``."""

    url: str
    process: subprocess.Popen[bytes]
    log_file: Path
    work_dir: Path

    def log(self) -> str:
        """Everything it logged so far."""
        return self.log_file.read_text(errors="replace")

    def samples(self) -> list[Sample]:
        """Its own metrics (``prometheus_remote_storage_*``, ``prometheus_agent_*``...)."""
        response = httpx.get(f"{self.url}/metrics", timeout=10)
        response.raise_for_status()
        return parse_exposition(response.text)

    def counter(self, name: str, **labels: str) -> float:
        """The sum of metric ``name`` over its series whose labels include ``labels``."""
        return sum(
            sample.value
            for sample in self.samples()
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


@contextmanager
def prometheus_agent(
    config: Mapping[str, Any],
    *,
    files: Mapping[str, str] | None = None,
    start_timeout: float = 60,
) -> Iterator[Prometheus]:
    """Run Prometheus in agent mode on ``config`` (``prometheus.yml`` as a mapping) until the
    block ends, then stop it (SIGTERM). ``files`` are written next to the configuration first
    (name -> text, mode 0600: a password file); ``{dir}`` in the configuration's strings is
    that directory. Waits until ``/-/ready`` answers 200; raises ``RuntimeError`` with its log
    when it exits or is not ready in ``start_timeout`` seconds."""
    binary = require_prometheus()
    work_dir = Path(tempfile.mkdtemp(prefix="rubin-prometheus-"))
    try:
        for name, text in (files or {}).items():
            path = work_dir / name
            path.touch(mode=0o600)
            path.write_text(text)
        config_file = work_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(_in_dir(config, str(work_dir)), sort_keys=False))
        port = _free_port()
        command = [
            str(binary),
            "--enable-feature=agent",
            f"--config.file={config_file}",
            f"--storage.agent.path={work_dir / 'wal'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=info",
        ]
        log_file = work_dir / "prometheus.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(command, cwd=work_dir, stdout=log, stderr=subprocess.STDOUT)
        agent = Prometheus(f"http://127.0.0.1:{port}", process, log_file, work_dir)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"prometheus exited with {process.returncode} at start:\n{agent.log()}"
                    )
                try:
                    if httpx.get(f"{agent.url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"prometheus not ready after {start_timeout}s:\n{agent.log()}"
                    )
                time.sleep(0.05)
            yield agent
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _in_dir(value: Any, directory: str) -> Any:
    if isinstance(value, str):
        return value.replace("{dir}", directory)
    if isinstance(value, Mapping):
        return {key: _in_dir(item, directory) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_dir(item, directory) for item in value]
    return value

"""Run the real kube-state-metrics (``scripts/provision-kube-state-metrics``) against the lab's
kube-apiserver.

Typical use::

    from support.kubestate import kube_state_metrics, least_privilege_token

    token = least_privilege_token(kube)  # a ServiceAccount bound by ksm_rbac_rules() only
    with kube_state_metrics(kube, token) as ksm:
        samples = ksm.samples()  # parsed /metrics

It runs as a process on 127.0.0.1 (free ports for metrics and its own telemetry) with a kubeconfig
that points at the lab: its URL, its CA, and the token in a file of its own. Its arguments are
``ksm_arguments()`` of :mod:`rubin_monitoring.models.metrics` (``--resources`` and
``--metric-allowlist``), the same values the generated manifests deploy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rubin_monitoring.models.metrics import ksm_arguments, ksm_rbac_rules
from support.binaries import cached_binary, require_binary
from support.kubeapi import KubeAPI

__all__ = [
    "KSM_VERSION",
    "KubeStateMetrics",
    "KubeStateMetricsUnavailable",
    "Sample",
    "kube_state_metrics",
    "kube_state_metrics_binary",
    "least_privilege_token",
    "parse_exposition",
    "require_kube_state_metrics",
]

KSM_VERSION = "2.16.0"


class KubeStateMetricsUnavailable(Exception):
    """No kube-state-metrics binary: the reason says what to do."""


def kube_state_metrics_binary() -> Path | None:
    """``$KUBE_STATE_METRICS_BIN``, else the cached build of the provision script, else None."""
    relative = f"kube-state-metrics-{KSM_VERSION}/kube-state-metrics"
    return cached_binary("KUBE_STATE_METRICS_BIN", relative)


def require_kube_state_metrics() -> Path:
    """The kube-state-metrics binary, or :class:`KubeStateMetricsUnavailable` saying how."""
    hint = "run scripts/provision-kube-state-metrics or set KUBE_STATE_METRICS_BIN"
    binary = kube_state_metrics_binary()
    return require_binary(binary, "kube-state-metrics", hint, KubeStateMetricsUnavailable)


@dataclass(frozen=True)
class Sample:
    """One line of the Prometheus text exposition: metric name, labels, value."""

    name: str
    labels: Mapping[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_exposition(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (format 0.0.4); comments are skipped.

    Raises ``ValueError`` naming the line when a line is not a sample.
    """
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"line {number} is not a sample: {line!r}")
        name, body, value = match.groups()
        labels: dict[str, str] = {}
        position = 0
        while body and position < len(body):
            label = _LABEL.match(body, position)
            if label is None:
                raise ValueError(f"line {number}: bad labels at {body[position:]!r}")
            labels[label.group(1)] = re.sub(
                r"\\.", lambda m: _ESCAPES.get(m.group(0), m.group(0)), label.group(2)
            )
            position = label.end()
        samples.append(Sample(name, labels, float(value)))
    return samples


@dataclass(frozen=True)
class KubeStateMetrics:
    """A running kube-state-metrics: ``url`` serves ``/metrics``, ``telemetry_url`` its own."""

    url: str
    telemetry_url: str
    process: subprocess.Popen[bytes]
    log_file: Path
    #: Seconds from the process start until ``/livez`` answered 200.
    started_in: float
    #: The token it runs with (a test may check what it can and cannot do); never shown.
    token: str = field(repr=False)

    def log(self) -> str:
        """Everything it logged so far."""
        return self.log_file.read_text(errors="replace")

    def metrics(self) -> str:
        """The text of one ``/metrics`` scrape."""
        response = httpx.get(f"{self.url}/metrics", timeout=10)
        response.raise_for_status()
        return response.text

    def samples(self) -> list[Sample]:
        """The samples of one ``/metrics`` scrape."""
        return parse_exposition(self.metrics())

    def telemetry(self) -> list[Sample]:
        """Its own metrics (``kube_state_metrics_list_total{resource,result}``, build info...)."""
        response = httpx.get(f"{self.telemetry_url}/metrics", timeout=10)
        response.raise_for_status()
        return parse_exposition(response.text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _created(response: httpx.Response) -> None:
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")


def least_privilege_token(
    kube: KubeAPI, *, rules: Sequence[Mapping[str, Any]] | None = None, expires: int = 7200
) -> str:
    """A token of a new ServiceAccount bound (ClusterRoleBinding) to a new ClusterRole of
    ``rules`` (default :func:`ksm_rbac_rules`: list and watch its resources, nothing else).

    The objects have names of their own (``ksm-<random>``), so they never collide with objects
    a test creates from the generated manifests.
    """
    name = f"ksm-{uuid.uuid4().hex[:8]}"
    client = kube.client
    _created(
        client.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
    )
    _created(
        client.post(
            f"/api/v1/namespaces/{name}/serviceaccounts",
            json={
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "kube-state-metrics"},
            },
        )
    )
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    _created(
        client.post(
            f"{rbac}/clusterroles",
            json={
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": list(rules if rules is not None else ksm_rbac_rules()),
            },
        )
    )
    _created(
        client.post(
            f"{rbac}/clusterrolebindings",
            json={
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": name}
                ],
            },
        )
    )
    issued = client.post(
        f"/api/v1/namespaces/{name}/serviceaccounts/kube-state-metrics/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expires},
        },
    )
    _created(issued)
    return str(issued.json()["status"]["token"])


def _kubeconfig(kube: KubeAPI, token_file: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {"server": kube.url, "certificate-authority": str(kube.ca_file)},
            }
        ],
        "users": [{"name": "kube-state-metrics", "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "kube-state-metrics"}}],
        "current-context": "lab",
    }


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def kube_state_metrics(
    kube: KubeAPI,
    token: str,
    *,
    arguments: Sequence[str] | None = None,
    start_timeout: float = 60,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> Iterator[KubeStateMetrics]:
    """Run kube-state-metrics against ``kube`` as the holder of ``token`` until the block ends.

    ``arguments`` default to :func:`ksm_arguments` (``--resources``, ``--metric-allowlist``).
    It serves ``/metrics`` on ``host`` and ``port`` (default: a free one; a pod's address and
    the catalog's port when Telegraf discovers it as a pod). Waits until ``/livez`` answers
    200 (it asks the API server's ``/livez`` with the token); its stores fill from their
    informers' first list right after. Raises
    :class:`KubeStateMetricsUnavailable` when there is no binary, ``RuntimeError`` with its log
    when it exits or does not answer in ``start_timeout`` seconds.
    """
    binary = require_kube_state_metrics()
    work_dir = Path(tempfile.mkdtemp(prefix="rubin-ksm-"))
    try:
        token_file = work_dir / "token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        kubeconfig = work_dir / "kubeconfig"
        kubeconfig.touch(mode=0o600)
        kubeconfig.write_text(json.dumps(_kubeconfig(kube, token_file)))
        port, telemetry_port = port or _free_port(), _free_port()
        command = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--host={host}",
            f"--port={port}",
            "--telemetry-host=127.0.0.1",
            f"--telemetry-port={telemetry_port}",
            *(ksm_arguments() if arguments is None else arguments),
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GOMEMLIMIT")}
        log_file = work_dir / "kube-state-metrics.log"
        started = time.monotonic()
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=work_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            url = f"http://{host}:{port}"
            deadline = started + start_timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"kube-state-metrics exited with {process.returncode} at start; "
                        f"its log:\n{_tail(log_file)}"
                    )
                try:
                    if httpx.get(f"{url}/livez", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"kube-state-metrics not live after {start_timeout}s; "
                        f"its log:\n{_tail(log_file)}"
                    )
                time.sleep(0.05)
            yield KubeStateMetrics(
                url=url,
                telemetry_url=f"http://127.0.0.1:{telemetry_port}",
                process=process,
                log_file=log_file,
                started_in=time.monotonic() - started,
                token=token,
            )
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

"""Shared fixtures: the real InfluxDB server, one fresh organization per test, Git repositories."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from support.helm import HelmUnavailable, require_helm
from support.kubeapi import KubeAPI, KubeUnavailable, kube_api_server
from support.kubestate import (
    KubeStateMetrics,
    KubeStateMetricsUnavailable,
    least_privilege_token,
    require_kube_state_metrics,
)
from support.kubestate import kube_state_metrics as run_kube_state_metrics
from support.orgs import OrgUnderTest
from support.telegraf import TelegrafUnavailable, require_telegraf

from rubin_monitoring.testing.influxd import (
    InfluxServer,
    ServerUnavailable,
    cached_binary,
    influx_server,
    influxdb_version,
)
from rubin_monitoring.testing.phalanx import PhalanxRepo


def pytest_report_header() -> str:
    binary = cached_binary()
    if binary is None:
        return f"influxdb: no binary (Docker influxdb {influxdb_version()}, or skip)"
    try:
        found = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30
        ).stdout.split(" (")[0]
    except (OSError, subprocess.SubprocessError) as error:
        found = f"not runnable: {error}"
    return f"influxdb: {binary}: {found}"


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxServer]:
    try:
        with influx_server() as server:
            yield server
    except ServerUnavailable as reason:
        if os.environ.get("RUBIN_MONITORING_REQUIRE_INFLUXDB") == "1":
            pytest.fail(f"InfluxDB required but unavailable: {reason}", pytrace=False)
        pytest.skip(f"InfluxDB unavailable: {reason}")


@pytest.fixture
def org(influxdb: InfluxServer) -> OrgUnderTest:
    """A new organization per test, so tests never see each other's objects."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    with influxdb.client() as client:
        response = client.post("/api/v2/orgs", json={"name": name})
        response.raise_for_status()
        return OrgUnderTest(influxdb, name, response.json()["id"])


@pytest.fixture
def phalanx(tmp_path: Path) -> PhalanxRepo:
    return PhalanxRepo(tmp_path / "phalanx")


# The lab's other components: Telegraf, a Kubernetes API server, kube-state-metrics and helm
# (scripts/provision-telegraf, scripts/provision-kube, scripts/provision-kube-state-metrics,
# scripts/provision-helm). Skipped when missing, unless RUBIN_MONITORING_REQUIRE_LAB=1.


def lab_unavailable(reason: str) -> NoReturn:
    if os.environ.get("RUBIN_MONITORING_REQUIRE_LAB") == "1":
        pytest.fail(f"required but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def telegraf_bin() -> Path:
    try:
        return require_telegraf()
    except TelegrafUnavailable as reason:
        lab_unavailable(f"Telegraf unavailable: {reason}")


@pytest.fixture(scope="session")
def kube_api() -> Iterator[KubeAPI]:
    try:
        with kube_api_server() as server:
            yield server
    except KubeUnavailable as reason:
        lab_unavailable(f"Kubernetes API server unavailable: {reason}")


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    try:
        return require_helm()
    except HelmUnavailable as reason:
        lab_unavailable(f"helm unavailable: {reason}")


@pytest.fixture(scope="session")
def kube_state_metrics_bin() -> Path:
    try:
        return require_kube_state_metrics()
    except KubeStateMetricsUnavailable as reason:
        lab_unavailable(f"kube-state-metrics unavailable: {reason}")


@pytest.fixture(scope="session")
def kube_state_metrics(kube_api: KubeAPI) -> Iterator[KubeStateMetrics]:
    """kube-state-metrics watching the lab API server as a ServiceAccount bound by the least
    RBAC of ``ksm_rbac_rules()``, with the ``--resources`` and ``--metric-allowlist`` of
    ``ksm_arguments()``."""
    try:
        require_kube_state_metrics()
    except KubeStateMetricsUnavailable as reason:
        lab_unavailable(f"kube-state-metrics unavailable: {reason}")
    with run_kube_state_metrics(kube_api, least_privilege_token(kube_api)) as ksm:
        yield ksm

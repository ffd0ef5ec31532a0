"""The checks oom_killed, job_failed, argocd_app, http_5xx and cert_expiry, and every dashboard
cell, on what the real Telegraf wrote with the configuration ``telegraf-config`` generates.

One lab for the module: the lab's kube-apiserver holds two clusters' worth of pods, on node
``idfdev-node`` (environment idfdev) and ``usdfdev-node`` (environment usdfdev), each with a
loopback pod IP on which its metrics are served: the recorded expositions of Argo CD,
ingress-nginx, cert-manager and JupyterHub (idfdev's with problems, usdfdev's healthy), and, in
idfdev, the real kube-state-metrics watching the lab as the generated manifests'
ServiceAccount. kube-state-metrics reports the Jobs, CronJobs and pods of the namespaces
``noteburst`` (problems), ``portal`` (none) and ``semaphore`` (problems, but idfdev does not
enable it), whose status is set through ``/status`` as the kubelet and the Job controllers
would. Each environment's real Telegraf runs its generated configuration twice (``--once``, a
few seconds apart; counters and states change in between), with its own token, its
connections pointed at the lab (:func:`support.lab.lab_config`); the control plane's
certificate is read at ``https://kubernetes.default.svc:443`` through a CONNECT proxy to the
lab's API server (a 2-day certificate). Then each check's rendered task runs on the real influxd,
twice, writing into a bucket of its own.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_cli
from support.connect_proxy import connect_proxy
from support.exposition import ExpositionServer, exposition_server, free_loopback
from support.kubeapi import KubeAPI, write_kubeconfig
from support.kubestate import kube_state_metrics
from support.lab import kubelet_stand_in, lab_config
from support.labobjects import LabObjects, Termination
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once

from rubin_monitoring.models import metrics
from rubin_monitoring.models.checks import CheckSettings
from rubin_monitoring.models.inventory import bucket_name
from rubin_monitoring.services.checks import render_check, render_fleet_check
from rubin_monitoring.testing.flux import (
    Alert,
    TaskRun,
    create_bucket,
    create_task,
    query_alerts,
    query_rows,
    run_task_and_wait,
    start_run,
    wait_for_run,
)
from rubin_monitoring.testing.influxd import InfluxServer
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
APPLICATIONS = [
    "argocd", "cert-manager", "ingress-nginx", "mobu", "noteburst", "nublado", "portal",
    "times-square",
]  # fmt: skip
DEFAULTS = {**dict.fromkeys(APPLICATIONS, True), "semaphore": False}
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "idfdev": {},
    "usdfdev": {},
    "summit": {"applications": {"semaphore": True}},
}
NODES = {"idfdev": "idfdev-node", "usdfdev": "usdfdev-node"}
SPARE_NODE = "spare-node"  # the pods kube-state-metrics reports on: no Telegraf there
GAP = 3  # seconds between the two collections
ALERT_TAGS = {"check", "application", "cluster", "severity", "dedup_key"}

# What each environment's recordings serve: idfdev's defaults have problems (times-square
# Degraded, nublado OutOfSync, sasquatch Missing; times-square's certificate expires in 5 days,
# nublado's is not ready); usdfdev's are healthy.
Values = dict[str, str | float | int]
HEALTHY: dict[str, Values] = {
    "argocd-application-controller": {
        "times_square_health": "Healthy",
        "nublado_sync": "Synced",
        "sasquatch_health": "Healthy",
        "sasquatch_sync": "Synced",
    },
    "cert-manager-controller": {
        "times_square_expiry": "now+60d",
        "nublado_expiry": "now+60d",
        "nublado_ready_true": 1,
        "nublado_ready_false": 0,
    },
    "ingress-nginx-controller": {},
    "jupyterhub-hub": {},
}
# Requests between the collections (the counters' defaults, then these): times-square 40%
# errors at 4 requests/s over the 10-minute window (fires); nublado 100% errors but 12 requests
# (0.02/s: quiet); mobu 0.02% errors at 20/s (quiet). usdfdev: times-square 0.4% errors.
SECOND_REQUESTS: dict[str, Values] = {
    "idfdev": {
        "mobu_ok": 24000, "mobu_5xx": 5, "times_square_ok": 1940, "times_square_5xx": 1210,
        "nublado_ok": 8000, "nublado_5xx": 24,
    },
    "usdfdev": {"mobu_ok": 24000, "mobu_5xx": 5, "times_square_ok": 2900, "times_square_5xx": 260},
}  # fmt: skip


@dataclass
class Scraped:
    """A pod whose metrics a recording serves."""

    namespace: str
    name: str
    recording: str
    port: int
    labels: dict[str, str]
    path: str = "/metrics"


SCRAPED = [
    Scraped(
        "argocd", "argocd-application-controller-0", "argocd-application-controller", 8082,
        {"app.kubernetes.io/name": "argocd-application-controller"},
    ),
    Scraped(
        "ingress-nginx", "ingress-nginx-controller-6d4f8b7c9-q8w2e", "ingress-nginx-controller",
        10254,
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    ),
    Scraped(
        "cert-manager", "cert-manager-7c9d8f6b5-t5y6u", "cert-manager-controller", 9402,
        {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"},
    ),
    Scraped(
        "nublado", "hub-6f7d8c9b5-m3n4b", "jupyterhub-hub", 8081,
        {"app": "jupyterhub", "component": "hub"}, "/nb/hub/metrics",
    ),
]  # fmt: skip


@dataclass
class Lab:
    """What the module's tests share: the org with the data the Telegrafs wrote."""

    org: OrgUnderTest
    applications: list[str]
    collected: tuple[datetime, datetime]
    servers: dict[str, dict[str, ExpositionServer]] = field(default_factory=dict)
    control_plane_tunnels: int = 0


def _org(influxdb: InfluxServer) -> OrgUnderTest:
    name = f"test-{uuid.uuid4().hex[:10]}"
    with influxdb.client() as client:
        response = client.post("/api/v2/orgs", json={"name": name})
        response.raise_for_status()
        return OrgUnderTest(influxdb, name, response.json()["id"])


def _collection(document: dict[str, Any]) -> str:
    version = document["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = document["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    plural = document["kind"].lower() + ("es" if document["kind"].endswith("s") else "s")
    return f"{base}{scope}/{plural}"


def _service_account_token(kube: KubeAPI, namespace: str, name: str) -> str:
    issued = kube.client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}},
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    return str(issued.json()["status"]["token"])


def _ksm_objects(objects: LabObjects, now: datetime) -> None:
    """What kube-state-metrics reports on: problems in noteburst and semaphore, none in
    portal (old or superseded OOM kills, another termination, a Job cleared by a later success
    of its CronJob, a Job still retrying, a completed one)."""
    for namespace in ("noteburst", "portal", "semaphore"):
        objects.namespace(namespace)

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    for namespace in ("noteburst", "semaphore"):
        objects.pod(namespace, "worker-0", node=SPARE_NODE, restarts=1,
                    terminated=Termination("OOMKilled", ago(minutes=2)))  # fmt: skip
        nightly = objects.cronjob(namespace, "nightly", last_schedule=ago(hours=1),
                                  last_success=ago(days=1))  # fmt: skip
        objects.job(namespace, "nightly-29433600", owner=nightly, started=ago(hours=1),
                    failed=True)  # fmt: skip
        objects.job(namespace, "migrate", started=ago(minutes=30), failed=True)
    for namespace in ("noteburst", "portal"):
        objects.pod(namespace, "old-0", node=SPARE_NODE, restarts=1,
                    terminated=Termination("OOMKilled", ago(hours=3)))  # fmt: skip
        hourly = objects.cronjob(namespace, "hourly", last_schedule=ago(minutes=20),
                                 last_success=ago(minutes=15))  # fmt: skip
        objects.job(namespace, "hourly-29433540", owner=hourly, started=ago(hours=2),
                    failed=True)  # fmt: skip
        objects.job(namespace, "hourly-29433660", owner=hourly, started=ago(minutes=20),
                    completed=ago(minutes=15))  # fmt: skip
        objects.job(namespace, "retrying", started=ago(minutes=5), failed_pods=2)
    objects.pod("portal", "api-0", node=SPARE_NODE, restarts=1,
                terminated=Termination("Error", ago(minutes=1), 1))  # fmt: skip
    # OOM killed at the first collection, then terminated for another reason before the second.
    objects.pod("portal", "flap-0", node=SPARE_NODE, restarts=1,
                terminated=Termination("OOMKilled", ago(minutes=4)))  # fmt: skip


@pytest.fixture(scope="module")
def lab(
    influxdb: InfluxServer,
    kube_api: KubeAPI,
    telegraf_bin: Path,
    kube_state_metrics_bin: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    started = time.monotonic()
    kube = kube_api
    tmp = tmp_path_factory.mktemp("lab")
    org = _org(influxdb)
    phalanx = PhalanxRepo(tmp / "phalanx")
    phalanx.set_apps(DEFAULTS, ENVIRONMENTS)
    env = org.env(PHALANX_REPO=phalanx.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    issued = run_cli(
        ["tokenmaker", "--role", "telegraf-idfdev", "--role", "telegraf-usdfdev", "--output",
         "json"], env,
    )  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    tokens = issued.json()["tokens"]
    namespace = f"monitoring-{uuid.uuid4().hex[:6]}"
    config_env = {"INFLUXDB_URL": org.url, "INFLUXDB_ORG": org.name, "PHALANX_REPO": phalanx.url}
    generated = {}
    for environment in NODES:
        args = ["telegraf-config", "--environment", environment, "--namespace", namespace]
        run = run_cli(args, config_env)
        assert run.exit_code == 0, run.stderr
        generated[environment] = run.stdout
    manifests = run_cli(
        ["telegraf-config", "--environment", "idfdev", "--namespace", namespace, "--format",
         "manifests"], config_env,
    )  # fmt: skip
    assert manifests.exit_code == 0, manifests.stderr

    objects = LabObjects(kube)
    now = datetime.now(UTC).replace(microsecond=0)
    with ExitStack() as stack:
        stack.callback(objects.delete_all)
        for name in {s.namespace for s in SCRAPED} | {namespace, "mobu"}:
            objects.namespace(name)
        # The generated objects, created for real (nothing runs the DaemonSet or the
        # Deployment here); cluster-scoped ones are removed at the end.
        for document in yaml.safe_load_all(manifests.stdout):
            path = _collection(document)
            response = kube.client.post(path, json=document)
            if response.status_code == 409:  # left by another test's lab
                kube.client.delete(f"{path}/{document['metadata']['name']}")
                response = kube.client.post(path, json=document)
            assert response.status_code == 201, response.text
            if "namespace" not in document["metadata"]:
                stack.callback(kube.client.delete, f"{path}/{document['metadata']['name']}")
        servers: dict[str, dict[str, ExpositionServer]] = {}
        for environment, node in NODES.items():
            servers[environment] = {}
            for scraped in SCRAPED:
                ip = free_loopback(scraped.port)
                values: Values = HEALTHY[scraped.recording] if environment == "usdfdev" else {}
                server = stack.enter_context(
                    exposition_server(scraped.recording, ip, scraped.port, scraped.path, values)
                )
                servers[environment][scraped.recording] = server
                objects.pod(scraped.namespace, f"{scraped.name}-{environment}", node=node,
                            labels=scraped.labels, ip=ip)  # fmt: skip
        # kube-state-metrics as the generated manifests run it (their ServiceAccount, bound by
        # their ClusterRole; their arguments), at its pod's address and the catalog's port, in
        # idfdev only.
        ksm_ip = free_loopback(8080)
        objects.pod(namespace, "kube-state-metrics-6c8d9f7b4-k2l3m", node=NODES["idfdev"],
                    labels={"app.kubernetes.io/name": "kube-state-metrics"}, ip=ksm_ip)  # fmt: skip
        stack.enter_context(
            kube_state_metrics(
                kube,
                _service_account_token(kube, namespace, "kube-state-metrics"),
                host=ksm_ip,
                port=8080,
            )
        )
        _ksm_objects(objects, now)
        # mobu's pod, whose usage the recorded kubelet summary reports (the K8s dashboard).
        mobu = objects.pod("mobu", "mobu-0", node=NODES["idfdev"], container="mobu", restarts=1,
                           limits={"cpu": "500m", "memory": "256Mi"})  # fmt: skip
        token = _service_account_token(kube, namespace, "telegraf")
        token_file = tmp / "token"
        token_file.write_text(token)
        kubeconfig = write_kubeconfig(kube, token_file, tmp / "kubeconfig")
        api_port = int(kube.url.rsplit(":", 1)[1])
        proxy = stack.enter_context(
            connect_proxy({"kubernetes.default.svc:443": ("127.0.0.1", api_port)})
        )
        kubelet = stack.enter_context(kubelet_stand_in(token, [objects.get(mobu)]))
        configs = {
            environment: lab_config(
                generated[environment], kube, token_file, kubeconfig, proxy=proxy.url,
                kubelet=kubelet.url if environment == "idfdev" else None,
            )
            for environment in NODES
        }  # fmt: skip
        lab_ready = time.monotonic()

        def collect() -> datetime:
            for environment, node in NODES.items():
                done = run_telegraf_once(
                    configs[environment],
                    {"INFLUX_TOKEN": tokens[f"telegraf-{environment}"], "NODE_NAME": node},
                )
                assert done.returncode == 0, done.stderr
                errors = [line for line in done.stderr.splitlines() if " E! " in line]
                assert errors == [], done.stderr
            return datetime.now(UTC)

        first = collect()
        time.sleep(GAP)
        for environment, requests in SECOND_REQUESTS.items():
            servers[environment]["ingress-nginx-controller"].set_values(**requests)
            servers[environment]["argocd-application-controller"].set_values(mobu_syncs=16)
            servers[environment]["jupyterhub-hub"].set_values(spawn_failures=5, running_servers=19)
        objects.set_container(
            "/api/v1/namespaces/portal/pods/flap-0",
            restarts=2,
            terminated=Termination("Error", now - timedelta(seconds=10), 1),
        )
        objects.set_container(mobu, "mobu", restarts=3)
        time.sleep(0.5)  # kube-state-metrics' watch
        second = collect()
        collected = time.monotonic()
        print(
            f"\nlab: setup {lab_ready - started:.1f}s, two collections of two clusters "
            f"{collected - lab_ready:.1f}s"
        )
        assert all(s.scrapes == 2 for by_name in servers.values() for s in by_name.values())
        yield Lab(org, phalanx_applications(), (first, second), servers, proxy.tunnels)


def phalanx_applications() -> list[str]:
    """The inventory's applications (every environment's)."""
    return sorted({*APPLICATIONS, "semaphore"})


# Running a check


def run_check(
    lab: Lab, check: str, settings: CheckSettings | None = None, *, bucket: str | None = None
) -> list[Alert]:
    """Render ``check`` as taskmaker would for the lab's inventory (over ``bucket``, or as a
    fleet check), run it twice as a real task writing into a bucket of its own, and return the
    first run's findings; both runs must find the same dedup keys."""
    alerts = f"alerts_{uuid.uuid4().hex[:8]}"
    create_bucket(lab.org, alerts)
    params = replace(settings or CheckSettings(), checks=(check,))
    name = f"{bucket or 'fleet'} {check}"
    if bucket is None:
        flux = render_fleet_check(
            check, task_name=name, offset="0s", settings=params, alert_bucket=alerts,
            applications=lab.applications,
        )  # fmt: skip
    else:
        flux = render_check(
            check, bucket=bucket, task_name=name, offset="0s", settings=params,
            alert_bucket=alerts, applications=lab.applications,
        )  # fmt: skip
    task_id = create_task(lab.org, flux)
    # Two runs at once, at distinct times (each writes at its own now()).
    now = datetime.now(UTC).replace(microsecond=0)
    started = [
        start_run(lab.org, task_id, scheduled_for=now + timedelta(seconds=i)) for i in (0, 1)
    ]
    runs: list[TaskRun] = [wait_for_run(lab.org, task_id, run_id) for run_id in started]
    found = [query_alerts(lab.org, bucket=alerts, at=run.scheduled_for) for run in runs]
    assert {a.dedup_key for a in found[0]} == {a.dedup_key for a in found[1]}
    for alert in found[0]:
        assert set(alert.tags) == ALERT_TAGS
        assert alert.check == check
    return found[0]


def by_key(alerts: Sequence[Alert]) -> dict[str, Alert]:
    keyed = {alert.dedup_key: alert for alert in alerts}
    assert len(keyed) == len(alerts), [a.dedup_key for a in alerts]
    return keyed


def assert_names(alert: Alert, *names: str) -> None:
    """The message names the cluster, the application and each of ``names``."""
    for name in (alert.cluster, alert.application, *names):
        assert name in alert.message, (name, alert.message)


# oom_killed


def test_oom_killed_fires_for_a_container_oom_killed_within_the_window(lab: Lab) -> None:
    alerts = by_key(run_check(lab, "oom_killed", bucket="noteburst"))
    # Not old-0, OOM killed 3 hours ago.
    (alert,) = alerts.values()
    assert alert.dedup_key == "oom_killed/idfdev/noteburst/noteburst/worker-0/main"
    assert (alert.cluster, alert.application, alert.severity) == ("idfdev", "noteburst", "warning")
    assert alert.message == (
        "Container main of pod worker-0 (namespace noteburst) of application noteburst on "
        "cluster idfdev was killed for running out of memory (OOMKilled) 2 minutes ago."
    )
    assert 1.5 < alert.value < 4


def test_oom_killed_is_quiet_for_old_or_superseded_kills_and_other_terminations(lab: Lab) -> None:
    # portal: an OOM kill 3 hours ago, one followed by an Error termination, an Error.
    assert run_check(lab, "oom_killed", bucket="portal") == []
    # semaphore's OOM kill: idfdev does not enable it, so it is in no bucket.
    assert run_check(lab, "oom_killed", bucket="semaphore") == []
    # A window shorter than the kill's age.
    assert run_check(lab, "oom_killed", CheckSettings(window="1m"), bucket="noteburst") == []


# job_failed


def test_job_failed_fires_once_per_failed_job(lab: Lab) -> None:
    alerts = by_key(run_check(lab, "job_failed", bucket="noteburst"))
    # Not hourly's failed Job (its CronJob succeeded since), not the Job still retrying.
    assert set(alerts) == {
        "job_failed/idfdev/noteburst/noteburst/nightly-29433600",
        "job_failed/idfdev/noteburst/noteburst/migrate",
    }
    alert = alerts["job_failed/idfdev/noteburst/noteburst/nightly-29433600"]
    assert alert.message == (
        "Job nightly-29433600 (namespace noteburst) of application noteburst on cluster idfdev "
        "failed."
    )
    assert (alert.severity, alert.application) == ("warning", "noteburst")


def test_job_failed_is_quiet_when_a_later_success_cleared_it_or_it_still_retries(
    lab: Lab,
) -> None:
    assert run_check(lab, "job_failed", bucket="portal") == []
    assert run_check(lab, "job_failed", bucket="semaphore") == []


# argocd_app


def test_argocd_app_fires_for_degraded_missing_and_long_out_of_sync_applications(
    lab: Lab,
) -> None:
    # Out of sync since the first collection, GAP seconds before the second: longer than 2s.
    alerts = by_key(run_check(lab, "argocd_app", CheckSettings(argocd_sync_grace="2s"),
                              bucket="argocd"))  # fmt: skip
    assert set(alerts) == {
        "argocd_app/idfdev/times_square/health",
        "argocd_app/idfdev/sasquatch/health",
        "argocd_app/idfdev/nublado/sync",
        "argocd_app/idfdev/sasquatch/sync",
    }
    degraded = alerts["argocd_app/idfdev/times_square/health"]
    assert degraded.message == (
        "Argo CD Application times-square (application times_square) on cluster idfdev is "
        "Degraded (sync status Synced)."
    )
    assert_names(degraded, "times-square")
    assert degraded.application == bucket_name("times-square")
    assert alerts["argocd_app/idfdev/nublado/sync"].message == (
        "Argo CD Application nublado (application nublado) on cluster idfdev has been "
        "OutOfSync for more than 2s."
    )
    assert alerts["argocd_app/idfdev/sasquatch/health"].message.endswith(
        "is Missing (sync status OutOfSync)."
    )


def test_argocd_app_is_quiet_within_the_sync_grace_and_for_healthy_applications(
    lab: Lab,
) -> None:
    alerts = by_key(run_check(lab, "argocd_app", bucket="argocd"))  # the default grace, 30m
    assert set(alerts) == {
        "argocd_app/idfdev/times_square/health",
        "argocd_app/idfdev/sasquatch/health",
    }
    # usdfdev: every Application Healthy and Synced.
    short = run_check(lab, "argocd_app", CheckSettings(argocd_sync_grace="2s"), bucket="argocd")
    assert [a for a in short if a.cluster == "usdfdev"] == []


# http_5xx


def test_http_5xx_fires_for_an_ingress_above_the_threshold(lab: Lab) -> None:
    alerts = by_key(run_check(lab, "http_5xx", bucket="ingress_nginx"))
    (alert,) = alerts.values()
    assert alert.dedup_key == "http_5xx/idfdev/times_square/times-square/times-square"
    assert (alert.severity, alert.application) == ("critical", "times_square")
    assert alert.message == (
        "Ingress times-square (namespace times-square) of application times_square on cluster "
        "idfdev answered 40% of its 2400 requests with a 5xx status in the last 10m "
        "(4 requests/s; threshold 5%)."
    )
    assert alert.value == pytest.approx(40.0)


def test_http_5xx_is_quiet_below_the_threshold_or_the_minimum_rate(lab: Lab) -> None:
    # nublado: every request failed, but 12 in 10 minutes; mobu: 2 errors in 12002 requests;
    # usdfdev's times-square: 10 errors in 2410 requests. Only idfdev's times-square fires at
    # the defaults (the test above), and not above a threshold of 50% or a minimum of 5/s.
    assert run_check(lab, "http_5xx", CheckSettings(http_5xx_threshold=50.0),
                     bucket="ingress_nginx") == []  # fmt: skip
    assert run_check(lab, "http_5xx", CheckSettings(http_5xx_min_rate=5.0),
                     bucket="ingress_nginx") == []  # fmt: skip
    # At no minimum rate, nublado's 12 failed requests alert too.
    quiet_hour = run_check(lab, "http_5xx", CheckSettings(http_5xx_min_rate=0.0),
                           bucket="ingress_nginx")  # fmt: skip
    assert {a.dedup_key for a in quiet_hour} == {
        "http_5xx/idfdev/times_square/times-square/times-square",
        "http_5xx/idfdev/nublado/nublado/nublado",
    }


# cert_expiry


def test_cert_expiry_fires_for_expiring_or_unready_certificates_and_control_planes(
    lab: Lab,
) -> None:
    alerts = by_key(run_check(lab, "cert_expiry"))
    assert set(alerts) == {
        "cert_expiry/idfdev/times_square/times-square/times-square-tls/expiry",
        "cert_expiry/idfdev/nublado/nublado/nublado-tls/expiry",
        "cert_expiry/idfdev/nublado/nublado/nublado-tls/ready",
        # The lab API server's certificate is valid for 2 days, read in both clusters.
        "cert_expiry/idfdev/kubernetes/control-plane",
        "cert_expiry/usdfdev/kubernetes/control-plane",
    }
    expiring = alerts["cert_expiry/idfdev/times_square/times-square/times-square-tls/expiry"]
    assert expiring.message == (
        "Certificate times-square-tls (namespace times-square) of application times_square on "
        "cluster idfdev expires in 4 days."
    )
    assert 4.9 < expiring.value <= 5
    assert alerts["cert_expiry/idfdev/nublado/nublado/nublado-tls/ready"].message == (
        "Certificate nublado-tls (namespace nublado) of application nublado on cluster idfdev "
        "has not been Ready in the last 10m."
    )
    control_plane = alerts["cert_expiry/usdfdev/kubernetes/control-plane"]
    assert re.fullmatch(
        r"The control plane's certificate \(https://kubernetes\.default\.svc:443\) of cluster "
        r"usdfdev expires in 4[78] hours\.",
        control_plane.message,
    ), control_plane.message
    assert 1.9 < control_plane.value <= 2
    assert lab.control_plane_tunnels == 4  # two clusters, two collections


def test_cert_expiry_is_quiet_for_ready_certificates_far_from_expiry(lab: Lab) -> None:
    alerts = by_key(run_check(lab, "cert_expiry", CheckSettings(cert_expiry_warning="1d")))
    # Only nublado's certificate, which is not ready; usdfdev's are fine.
    assert set(alerts) == {"cert_expiry/idfdev/nublado/nublado/nublado-tls/ready"}


# The data itself


def test_the_checks_read_only_what_telegraf_wrote_with_the_shared_names(lab: Lab) -> None:
    """Each series a check reads is in its bucket with the tags the check relies on: the
    series' own labels and ``cluster``, none that only the scrape path adds."""

    def tags(bucket: str, field_name: str) -> set[str]:
        rows = query_rows(
            lab.org,
            f'from(bucket: "{bucket}") |> range(start: -1h)'
            f' |> filter(fn: (r) => r._measurement == "{metrics.PROMETHEUS}"'
            f' and r._field == "{field_name}") |> keys() |> group() |> distinct()',
        )
        return {row["_value"] for row in rows} - {"_start", "_stop", "_field", "_measurement"}

    read = {
        ("noteburst", metrics.KSM_LAST_TERMINATED_REASON): {metrics.KSM_POD, metrics.KSM_CONTAINER,
                                                          metrics.KSM_REASON},
        ("noteburst", metrics.KSM_JOB_FAILED): {metrics.KSM_JOB_NAME, metrics.KSM_CONDITION},
        ("noteburst", metrics.KSM_JOB_OWNER): {metrics.KSM_OWNER_KIND, metrics.KSM_OWNER_NAME},
        ("noteburst", metrics.KSM_CRONJOB_LAST_SUCCESSFUL_TIME): {metrics.KSM_CRONJOB},
        ("argocd", metrics.ARGOCD_APP_INFO): {metrics.ARGOCD_APP_NAME,
                                              metrics.ARGOCD_HEALTH_STATUS,
                                              metrics.ARGOCD_SYNC_STATUS},
        ("ingress_nginx", metrics.NGINX_REQUESTS): {metrics.NGINX_STATUS, metrics.NGINX_INGRESS},
        ("cert_manager", metrics.CERTMANAGER_EXPIRATION): {metrics.CERTMANAGER_CERTIFICATE},
        ("cert_manager", metrics.CERTMANAGER_READY_STATUS): {metrics.CERTMANAGER_CERTIFICATE,
                                                            metrics.CERTMANAGER_CONDITION},
    }  # fmt: skip
    for (bucket, field_name), needed in read.items():
        found = tags(bucket, field_name)
        assert needed | {metrics.CLUSTER, metrics.NAMESPACE} <= found, (bucket, field_name)
    rows = query_rows(
        lab.org,
        f'from(bucket: "probes_") |> range(start: -1h) |> filter(fn: (r) => r._measurement =='
        f' "{metrics.X509_CERT}" and r._field == "{metrics.X509_EXPIRY}")',
    )
    assert {(row["cluster"], row["source"], row["verification"]) for row in rows} == {
        (cluster, metrics.CONTROL_PLANE_SOURCE, "valid") for cluster in NODES
    }


# Dashboards


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def constant(name: str) -> str:
    """The value of the constant variable ``name`` in the dashboard files."""
    for path in DASHBOARD_DIR.glob("*.yml"):
        for doc in documents(path):
            if doc["kind"] == "Variable" and doc["spec"]["name"] == name:
                return str(doc["spec"]["values"][0])
    raise AssertionError(f"no variable {name}")


def with_variables(query: str, values: dict[str, str]) -> str:
    """``query`` with the dashboard's ``v`` record as literals (imports stay first)."""
    record = ", ".join(f'{key}: "{value}"' for key, value in values.items())
    v = f"v = {{timeRangeStart: -1h, timeRangeStop: now(), windowPeriod: 1m, {record}}}"
    lines = query.splitlines()
    imports = [line for line in lines if line.startswith("import ")]
    rest = [line for line in lines if not line.startswith("import ")]
    return "\n".join([*imports, v, *rest])


def test_every_dashboard_cell_returns_rows_on_what_telegraf_wrote(lab: Lab) -> None:
    """Every cell and variable query of every dashboard, on the lab's data (the InfluxDB
    dashboard's, written by the host's Telegraf: test_host_telegraf.py), with the findings of
    a real check task in multiapp_ for the alerts dashboard."""
    flux = render_check("oom_killed", bucket="noteburst", task_name="noteburst oom_killed",
                        offset="0s", settings=CheckSettings())  # fmt: skip
    finding_run = run_task_and_wait(lab.org, create_task(lab.org, flux))
    (finding,) = query_alerts(lab.org, at=finding_run.scheduled_for)
    run = run_cli(["dashboardmaker", "--output", "json"], lab.org.env())
    assert run.exit_code == 0, run.stderr

    values = {
        "application": "mobu",
        "cluster": "idfdev",
        "ingress_cluster": "idfdev",
        "argocd_cluster": "idfdev",
        "nublado_cluster": "idfdev",
        **{name: constant(name) for name in ("ingress_bucket", "argocd_bucket", "nublado_bucket")},
    }
    assert (values["ingress_bucket"], values["argocd_bucket"], values["nublado_bucket"]) == (
        bucket_name("ingress-nginx"),
        bucket_name("argocd"),
        bucket_name("nublado"),
    )
    empty, cells = [], 0
    variables: dict[str, set[str]] = {}
    for path in sorted(DASHBOARD_DIR.glob("*.yml")):
        if path.name == "influxdb.yml":
            continue
        for doc in documents(path):
            spec = doc["spec"]
            if doc["kind"] == "Variable" and spec["type"] == "query":
                rows = query_rows(lab.org, with_variables(spec["query"], values))
                variables[spec["name"]] = {row["_value"] for row in rows}
            if doc["kind"] != "Dashboard":
                continue
            for chart in spec["charts"]:
                for query in chart["queries"]:
                    cells += 1
                    if not query_rows(lab.org, with_variables(query["query"], values)):
                        empty.append(f"{path.name}: {chart['name']}")
    assert empty == [], empty
    assert cells >= 20
    assert variables["cluster"] == {"idfdev"}  # mobu: only idfdev's kubelet summary has it
    for name in ("ingress_cluster", "argocd_cluster", "nublado_cluster"):
        assert variables[name] == {"idfdev", "usdfdev"}, name
    assert {"mobu", "noteburst", "argocd", "ingress_nginx", "nublado"} <= variables["application"]
    assert finding.dedup_key.startswith("oom_killed/idfdev/noteburst/")

"""Scraping on a two-node cluster, with real programs: the lab's kube-apiserver holds pods on
nodes ``node-a`` and ``node-b``, each with a distinct loopback pod IP on which its metrics are
served (the recorded expositions of Argo CD, ingress-nginx, cert-manager and JupyterHub; an
application's own metrics made up here; and the real kube-state-metrics, watching the lab as
the generated manifests' ServiceAccount). Two real Telegraf agents, one per node
(``NODE_NAME``), run the configuration ``telegraf-config`` generates, with the generated
manifests' ServiceAccount and RBAC and the environment's own token, against one real influxd.

What it proves: every target is scraped by one agent only, once per interval (no point of any
series shares an interval with another); each series lands in the bucket of the application
that owns the scraped pod, or for kube-state-metrics of the namespace it names, and only for
applications the environment enables; a series keeps its own ``namespace`` label
(ingress-nginx's is the request's); no pod label, annotation or discovery tag is written.

The agents' connections are pointed at the lab (``kube_config``, the API server's URL and CA),
their interval shortened to 2 s and their timestamps kept to the nanosecond (so that a second
scrape of a target in one interval would show as a second point, not overwrite the first), and
``inputs.kubernetes`` (a kubelet, which the lab has not) left out; nothing else in the
generated configuration changes. Both checks of "once per interval", the scrape counts and the
points per interval, fail when the node field selector or the annotation inputs' complement
selectors are taken out of the configuration (tried while writing this test).
"""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from support.cli import run_cli
from support.exposition import ExpositionServer, exposition_server, free_loopback
from support.kubeapi import KubeAPI, write_kubeconfig
from support.kubestate import kube_state_metrics
from support.orgs import OrgUnderTest
from support.telegraf import TelegrafAgent, telegraf_agent

from rubin_monitoring.models import metrics
from rubin_monitoring.testing.flux import query_rows
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

ENVIRONMENT = "idfdev"
APPLICATIONS = ["argocd", "cert-manager", "ingress-nginx", "mobu", "nublado", "times-square"]
DEFAULTS = {**dict.fromkeys(APPLICATIONS, True), "sasquatch": False}
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "idfdev": {},
    "summit": {"applications": {"sasquatch": True}},
}
BUCKETS = [name.replace("-", "_") for name in APPLICATIONS]
INTERVAL = 2  # seconds
RUN_FOR = 5 * INTERVAL
APP_METRICS = (
    "# HELP mobu_flock_monkeys Monkeys in the flock.\n"
    "# TYPE mobu_flock_monkeys gauge\n"
    'mobu_flock_monkeys{flock="tap"} 12\n'
)
OOM = {
    "terminated": {
        "exitCode": 137,
        "reason": "OOMKilled",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:10:00Z",
    }
}


@dataclass
class LabPod:
    """A pod of the lab, where it runs, and what serves its metrics."""

    namespace: str
    name: str
    node: str
    port: int
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    recording: str | None = None
    path: str = "/metrics"
    oom_killed: bool = False
    ip: str = ""
    server: ExpositionServer | None = None


def lab_pods(telegraf_namespace: str) -> list[LabPod]:
    return [
        LabPod(
            "argocd",
            "argocd-application-controller-0",
            "node-a",
            8082,
            {"app.kubernetes.io/name": "argocd-application-controller"},
            recording="argocd-application-controller",
        ),
        # In the catalog AND annotated, as the ingress-nginx chart can do: scraped once.
        LabPod(
            "ingress-nginx",
            "ingress-nginx-controller-7c9f6d5b8-kx2lp",
            "node-b",
            10254,
            {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
            },
            {"prometheus.io/scrape": "true", "prometheus.io/port": "10254"},
            recording="ingress-nginx-controller",
        ),
        LabPod(
            "cert-manager",
            "cert-manager-6b8c9d7f4-q2w3e",
            "node-a",
            9402,
            {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"},
            recording="cert-manager-controller",
        ),
        LabPod(
            "nublado",
            "hub-5d8f7c6b9-zx8cv",
            "node-b",
            8081,
            {"app": "jupyterhub", "component": "hub"},
            recording="jupyterhub-hub",
            path="/nb/hub/metrics",
        ),
        # Annotation discovery in an enabled namespace (a path of its own) ...
        LabPod(
            "mobu",
            "mobu-api-0",
            "node-a",
            9100,
            {"app": "mobu", "team": "sqre"},
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9100",
                "prometheus.io/path": "/internal/metrics",
            },
            path="/internal/metrics",
        ),
        # ... but not of a pod without the annotation (it was OOM killed: kube-state-metrics),
        LabPod("mobu", "mobu-worker-0", "node-b", 9100, {"app": "mobu"}, oom_killed=True),
        # ... nor in a namespace the environment does not enable.
        LabPod(
            "sasquatch",
            "kafka-exporter-0",
            "node-a",
            9308,
            {"app": "kafka-exporter"},
            {"prometheus.io/scrape": "true", "prometheus.io/port": "9308"},
            oom_killed=True,
        ),
        LabPod(
            telegraf_namespace,
            "kube-state-metrics-5f7d8c9b6-h4j5k",
            "node-b",
            8080,
            {"app.kubernetes.io/name": "kube-state-metrics"},
        ),
    ]


PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "DaemonSet": "daemonsets",
    "Deployment": "deployments",
}


def collection(document: dict[str, Any]) -> str:
    version = document["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = document["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{PLURALS[document['kind']]}"


def ensure_namespace(kube: KubeAPI, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    response = kube.client.post("/api/v1/namespaces", json=body)
    assert response.status_code in (201, 409), response.text


def service_account_token(kube: KubeAPI, namespace: str, name: str) -> str:
    issued = kube.client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}},
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    return str(issued.json()["status"]["token"])


def run_pod(kube: KubeAPI, pod: LabPod) -> None:
    """Create ``pod`` and set the status its kubelet would: running, ready, at its IP."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "labels": pod.labels, "annotations": pod.annotations},
        "spec": {"nodeName": pod.node, "containers": [{"name": "main", "image": "example/x:1"}]},
    }
    response = kube.client.post(f"/api/v1/namespaces/{pod.namespace}/pods", json=body)
    assert response.status_code == 201, response.text
    container: dict[str, Any] = {
        "name": "main",
        "image": "example/x:1",
        "imageID": "",
        "ready": True,
        "started": True,
        "restartCount": 1 if pod.oom_killed else 0,
        "state": {"running": {"startedAt": "2026-01-01T00:10:01Z"}},
    }
    if pod.oom_killed:
        container["lastState"] = OOM
    status = {
        "phase": "Running",
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [container],
    }
    response = kube.client.patch(
        f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


def agent_config(generated: str, kube: KubeAPI, kubeconfig: Path, token_file: Path) -> str:
    """The generated configuration with its connections pointed at the lab and a 2 s interval;
    inputs.kubernetes (a kubelet) and inputs.x509_cert left out."""
    config = tomllib.loads(generated)
    # Nanosecond timestamps: two scrapes of one target in one interval stay two points (at
    # Telegraf's default precision, 1 s here, the second would silently overwrite the first).
    config["agent"].update(interval=f"{INTERVAL}s", flush_interval=f"{INTERVAL}s", precision="1ns")
    del config["inputs"]["kubernetes"]
    del config["inputs"]["x509_cert"]  # the control plane's certificate: test_lab_checks.py
    (inventory,) = config["inputs"]["kube_inventory"]
    inventory.update(url=kube.url, bearer_token=str(token_file), tls_ca=str(kube.ca_file))
    for scrape in config["inputs"]["prometheus"]:
        scrape["kube_config"] = str(kubeconfig)
    return tomli_w.dumps(config)


@contextmanager
def agents(config: str, token: str) -> Iterator[list[TelegrafAgent]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(telegraf_agent(config, {"INFLUX_TOKEN": token, "NODE_NAME": node}))
            for node in ("node-a", "node-b")
        ]


def rows(org: OrgUnderTest, bucket: str, flux: str = "") -> list[dict[str, str]]:
    return query_rows(
        org,
        f'from(bucket: "{bucket}") |> range(start: -15m)'
        f' |> filter(fn: (r) => r._measurement == "{metrics.PROMETHEUS}"){flux}',
    )


def tag_sets(org: OrgUnderTest, bucket: str, field_name: str) -> set[frozenset[str]]:
    internal = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
    found = rows(org, bucket, f' |> filter(fn: (r) => r._field == "{field_name}")')
    return {frozenset(set(row) - internal) for row in found}


def values_of(org: OrgUnderTest, bucket: str, field_name: str, tag: str) -> set[str]:
    found = rows(org, bucket, f' |> filter(fn: (r) => r._field == "{field_name}")')
    return {row[tag] for row in found}


def test_two_nodes_scrape_each_target_once_into_its_applications_bucket(
    kube_api: KubeAPI,
    org: OrgUnderTest,
    phalanx: PhalanxRepo,
    telegraf_bin: Path,
    kube_state_metrics_bin: Path,
    tmp_path: Path,
) -> None:
    kube = kube_api
    phalanx.set_apps(DEFAULTS, ENVIRONMENTS)
    env = org.env(PHALANX_REPO=phalanx.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    issued = run_cli(["tokenmaker", "--role", "telegraf-idfdev", "--output", "json"], env)
    assert issued.exit_code == 0, issued.stderr
    token = issued.json()["tokens"]["telegraf-idfdev"]

    namespace = f"monitoring-{uuid.uuid4().hex[:6]}"
    telegraf_env = {"INFLUXDB_URL": org.url, "INFLUXDB_ORG": org.name, "PHALANX_REPO": phalanx.url}
    args = ["telegraf-config", "--environment", ENVIRONMENT, "--namespace", namespace]
    manifests = run_cli([*args, "--format", "manifests"], telegraf_env)
    generated = run_cli(args, telegraf_env)
    assert manifests.exit_code == 0 and generated.exit_code == 0, manifests.stderr
    pods = lab_pods(namespace)
    for name in {pod.namespace for pod in pods}:
        ensure_namespace(kube, name)
    cluster_scoped = []
    with ExitStack() as stack:
        # The generated objects, created for real (the DaemonSet and Deployment run nothing
        # here); cluster-scoped ones are removed at the end for the session's other tests.
        for document in yaml.safe_load_all(manifests.stdout):
            response = kube.client.post(collection(document), json=document)
            assert response.status_code == 201, response.text
            if "namespace" not in document["metadata"]:
                path = f"{collection(document)}/{document['metadata']['name']}"
                cluster_scoped.append(path)
                stack.callback(kube.client.delete, path)
        for pod in pods:
            pod.ip = free_loopback(pod.port)
            if pod.recording is not None or pod.namespace != namespace:
                pod.server = stack.enter_context(
                    exposition_server(
                        pod.recording or pod.name,
                        pod.ip,
                        pod.port,
                        pod.path,
                        text=None if pod.recording else APP_METRICS,
                    )
                )
            run_pod(kube, pod)
        # kube-state-metrics as the generated manifests run it: their ServiceAccount (bound by
        # their ClusterRole), their arguments, at its pod's address and the catalog's port.
        ksm_pod = pods[-1]
        ksm = stack.enter_context(
            kube_state_metrics(
                kube,
                service_account_token(kube, namespace, "kube-state-metrics"),
                host=ksm_pod.ip,
                port=ksm_pod.port,
            )
        )
        token_file = tmp_path / "token"
        token_file.write_text(service_account_token(kube, namespace, "telegraf"))
        kubeconfig = write_kubeconfig(kube, token_file, tmp_path / "kubeconfig")
        config = agent_config(generated.stdout, kube, kubeconfig, token_file)
        assert token not in generated.stdout
        started = time.monotonic()
        with agents(config, token) as running:
            time.sleep(RUN_FOR)
            for agent in running:
                errors = [line for line in agent.log().splitlines() if " E! " in line]
                assert errors == [], agent.log()
        elapsed = time.monotonic() - started
        # kube-state-metrics does report the disabled application's OOM kill: the routing
        # drops it.
        exported = {
            sample.labels.get("namespace")
            for sample in ksm.samples()
            if sample.name == metrics.KSM_LAST_TERMINATED_REASON
        }
        assert {"mobu", "sasquatch"} <= exported

    # Each target once per interval: scraped about elapsed/interval times, not twice as often.
    # The pod without the annotation and the disabled application's pod: never.
    scrapes = {pod.name: pod.server.scrapes for pod in pods if pod.server is not None}
    most = elapsed / INTERVAL + 2
    for pod in pods:
        if pod.server is None:
            continue
        if pod.name in ("mobu-worker-0", "kafka-exporter-0"):
            assert scrapes[pod.name] == 0, scrapes
        else:
            assert 2 <= scrapes[pod.name] <= most, scrapes
    # And in InfluxDB: no series has two points in one interval, and each has several.
    for bucket in BUCKETS:
        doubled = rows(
            org,
            bucket,
            f" |> aggregateWindow(every: {INTERVAL}s, fn: count, createEmpty: false)"
            " |> filter(fn: (r) => r._value > 1)",
        )
        assert doubled == [], (bucket, doubled[:3])
    counts = rows(org, "argocd", " |> count()")
    assert counts and all(int(row["_value"]) >= 2 for row in counts)

    # Routing by the scraped pod: each recording into its application's bucket, keeping the
    # series' own namespace label (ingress-nginx's is the request's, cert-manager's the
    # Certificate's), sasquatch's requests included.
    assert values_of(org, "argocd", metrics.ARGOCD_APP_INFO, "namespace") == {"argocd"}
    assert values_of(org, "argocd", metrics.ARGOCD_APP_INFO, "health_status") >= {"Degraded"}
    assert values_of(org, "ingress_nginx", metrics.NGINX_REQUESTS, "namespace") == {
        "mobu",
        "nublado",
        "sasquatch",
        "times-square",
    }
    assert values_of(org, "cert_manager", metrics.CERTMANAGER_EXPIRATION, "namespace") == {
        "mobu",
        "nublado",
        "times-square",
    }
    assert values_of(org, "nublado", metrics.JUPYTERHUB_RUNNING_SERVERS, "cluster") == {"idfdev"}
    assert values_of(org, "mobu", "mobu_flock_monkeys", "pod_name") == {"mobu-api-0"}
    # Routing by label: kube-state-metrics' series of mobu's pods into mobu, of sasquatch's
    # (not enabled) and of Telegraf's namespace nowhere.
    oom = metrics.KSM_LAST_TERMINATED_REASON
    assert values_of(org, "mobu", oom, "pod") == {"mobu-worker-0"}
    assert values_of(org, "mobu", oom, "reason") == {"OOMKilled"}
    for bucket in BUCKETS:
        assert values_of(org, bucket, oom, "namespace") <= {bucket.replace("_", "-")}
    for bucket in ("sasquatch", "multiapp_", "alerted_"):
        assert rows(org, bucket) == [], bucket

    # Tags: the series' own labels, the cluster, and for series routed by their pod the pod's
    # name; no pod label (team, app) or annotation, no address, url or routing tag.
    assert tag_sets(org, "ingress_nginx", metrics.NGINX_REQUESTS) == {
        frozenset(
            {
                "cluster",
                "pod_name",
                "controller_class",
                "controller_namespace",
                "controller_pod",
                "host",
                "ingress",
                "method",
                "namespace",
                "path",
                "service",
                "status",
            }
        )
    }
    assert tag_sets(org, "mobu", "mobu_flock_monkeys") == {
        frozenset({"cluster", "pod_name", "flock"})
    }
    assert tag_sets(org, "mobu", oom) == {
        frozenset({"cluster", "namespace", "pod", "uid", "container", "reason"})
    }
    for bucket in BUCKETS:
        keys = {
            row["_value"]
            for row in query_rows(
                org,
                'import "influxdata/influxdb/schema"\n'
                f'schema.tagKeys(bucket: "{bucket}", start: -15m)',
            )
        }
        dropped = {"address", "url", "pod_namespace", "rubin_monitoring_bucket", "team", "app"}
        assert keys & dropped == set(), bucket
    assert not cluster_scoped or all(kube.client.get(p).status_code == 404 for p in cluster_scoped)

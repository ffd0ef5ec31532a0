"""The fleet lab: the whole chain with real programs, from Kubernetes pods to Slack.

A real kube-apiserver holds the namespaces of two environments' applications and their pods,
Jobs and CronJobs, whose status is set through the ``/status`` subresource as a kubelet and the
Job controllers would. bucketmaker, bucketmapper, tokenmaker and taskmaker set up a real influxd
from a Phalanx-shaped repository. A real Telegraf runs the configuration ``telegraf-config``
generated for environment idfdev, pointed at the lab (the API server's URL and CA, the token of
the ServiceAccount the generated manifests create, bound by the generated least RBAC) with
idfdev's own Telegraf token; it scrapes the real kube-state-metrics, run as the generated
manifests' ServiceAccount at its pod's address, and reads the control plane's certificate at
``https://kubernetes.default.svc:443`` through a CONNECT proxy to the lab's API server. The
check tasks are forced, and the notifier sends what they found to a Slack stand-in.

``inputs.kubernetes`` needs a kubelet: a local HTTP server answers ``/stats/summary`` with
``data/kubelet_stats_summary.json``, the one recorded response in the suite (written by hand in
the shape Telegraf v1.37.2's plugin parses, ``plugins/inputs/kubernetes/kubernetes_metrics.go``),
and ``/pods`` with the lab's pods.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.cli import run_cli
from support.connect_proxy import connect_proxy
from support.exposition import free_loopback
from support.kubeapi import KubeAPI, write_kubeconfig
from support.kubestate import kube_state_metrics
from support.lab import kubelet_stand_in, lab_config
from support.labobjects import LabObjects, Termination
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once

from rubin_monitoring.models.checks import DEFAULT_CHECKS
from rubin_monitoring.testing.flux import query_rows, start_run, wait_for_run
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.slack_server import slack_server

pytestmark = pytest.mark.integration

NODE = "lab-node"
ENVIRONMENT = "idfdev"
# idfdev enables mobu, times-square and nublado; sasquatch only in summit.
DEFAULTS = {"mobu": True, "times-square": True, "nublado": False, "sasquatch": False}
ENVIRONMENTS = {
    "idfdev": {"applications": {"nublado": True}},
    "summit": {"applications": {"sasquatch": True, "times-square": False}},
}
BUCKETS = ["mobu", "nublado", "sasquatch", "times_square"]

RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
CRASHING = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}


def pod(
    namespace: str,
    name: str,
    container: str,
    *,
    restarts: int = 0,
    crashing: bool = False,
    cpu_limit: str | None = None,
) -> dict[str, Any]:
    """A pod on the lab node and the status a kubelet would report for it."""
    resources = {"limits": {"cpu": cpu_limit}} if cpu_limit else {}
    return {
        "namespace": namespace,
        "spec": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": namespace}},
            "spec": {
                "nodeName": NODE,
                "containers": [
                    {
                        "name": container,
                        "image": f"ghcr.io/lsst/{container}:1.0",
                        "resources": resources,
                    }
                ],
            },
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False" if crashing else "True"}],
            "containerStatuses": [
                {
                    "name": container,
                    "image": f"ghcr.io/lsst/{container}:1.0",
                    "imageID": "",
                    "ready": not crashing,
                    "started": not crashing,
                    "restartCount": restarts,
                    "state": CRASHING if crashing else RUNNING,
                }
            ],
        },
    }


PODS = [
    pod("mobu", "mobu-0", "mobu", restarts=1, cpu_limit="500m"),  # restarts between collections
    pod("times-square", "times-square-api-0", "api", restarts=4, crashing=True),
    pod("times-square", "times-square-ui-0", "ui", cpu_limit="200m"),  # healthy
    pod("nublado", "hub-0", "hub", cpu_limit="200m"),  # 190m of 200m: above 90%
    pod("nublado", "proxy-0", "proxy", cpu_limit="100m"),  # healthy
    pod("sasquatch", "kafka-0", "kafka", restarts=7, crashing=True),  # not enabled in idfdev
]
# dedup key -> (cluster, severity, words the message must name). idfdev's three problems; and
# summit, whose Telegraf does not run in the lab, is silent as a whole cluster. idfdev is not:
# every application it enables sent points.
EXPECTED_ALERTS = {
    "restarts/idfdev/mobu/mobu/mobu-0/mobu": ("idfdev", "warning", ["mobu-0", "mobu"]),
    "not_running/idfdev/times_square/times-square/times-square-api-0/api": (
        "idfdev",
        "critical",
        ["times-square-api-0", "api", "times-square", "CrashLoopBackOff"],
    ),
    "cpu/idfdev/nublado/nublado/hub-0/hub": ("idfdev", "warning", ["hub-0", "hub", "nublado"]),
    "silent/summit/all/cluster": ("summit", "critical", ["Cluster summit sent no data"]),
    # kube-state-metrics: mobu's worker OOM killed 2 minutes ago, its nightly Job failed.
    "oom_killed/idfdev/mobu/mobu/mobu-worker-0/worker": (
        "idfdev",
        "warning",
        ["mobu-worker-0", "worker", "mobu", "OOMKilled"],
    ),
    "job_failed/idfdev/mobu/mobu/mobu-nightly-29433600": (
        "idfdev",
        "warning",
        ["mobu-nightly-29433600", "mobu", "failed"],
    ),
    # The lab API server's certificate is valid for 2 days.
    "cert_expiry/idfdev/kubernetes/control-plane": (
        "idfdev",
        "warning",
        ["control plane", "https://kubernetes.default.svc:443", "expires in"],
    ),
}
SPARE_NODE = "spare-node"  # where the pods kube-state-metrics reports on run: no kubelet here


def batch_problems(objects: LabObjects, namespace: str, now: datetime) -> None:
    """An OOM kill 2 minutes ago and a failed Job of a CronJob in ``namespace``."""
    objects.pod(
        namespace,
        f"{namespace}-worker-0",
        container="worker",
        node=SPARE_NODE,
        restarts=1,
        terminated=Termination("OOMKilled", now - timedelta(minutes=2)),
    )
    nightly = objects.cronjob(
        namespace,
        f"{namespace}-nightly",
        last_schedule=now - timedelta(hours=1),
        last_success=now - timedelta(days=1),
    )
    objects.job(
        namespace,
        f"{namespace}-nightly-29433600",
        owner=nightly,
        started=now - timedelta(hours=1),
        failed=True,
    )


PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Pod": "pods",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "DaemonSet": "daemonsets",
    "Deployment": "deployments",
}


def collection(document: dict[str, Any]) -> str:
    """The API path a Kubernetes object is created under."""
    version = document["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = document["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{PLURALS[document['kind']]}"


def create(kube: KubeAPI, document: dict[str, Any], **params: str) -> httpx.Response:
    return kube.client.post(collection(document), json=document, params=params)


def create_namespace(kube: KubeAPI, name: str) -> None:
    response = create(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert response.status_code in (201, 409), response.text


def set_status(kube: KubeAPI, namespace: str, name: str, status: dict[str, Any]) -> None:
    response = kube.client.patch(
        f"/api/v1/namespaces/{namespace}/pods/{name}/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


def cli_ok(args: list[str], env: dict[str, str]) -> Any:
    run = run_cli([*args, "--output", "json"], env)
    assert run.exit_code == 0, run.stderr
    return run.json()


def collect(config: str, env: dict[str, str]) -> None:
    done = run_telegraf_once(config, env)
    assert done.returncode == 0, done.stderr
    # No error at all: in particular no write to a bucket that does not exist or is refused,
    # and none to the output's empty default bucket.
    errors = [line for line in done.stderr.splitlines() if " E! " in line]
    assert errors == [], done.stderr


def reader_token(org: OrgUnderTest) -> str:
    """A read-only token of the org, as an InfluxQL client (Grafana, Chronograf) would hold.
    The v1 API finds the database's mapping in the token's organization."""
    with httpx.Client(base_url=org.url, timeout=30) as client:
        response = client.post(
            "/api/v2/authorizations",
            json={
                "orgID": org.id,
                "description": "InfluxQL reader",
                "permissions": [
                    {"action": "read", "resource": {"type": "buckets", "orgID": org.id}},
                    {"action": "read", "resource": {"type": "dbrp", "orgID": org.id}},
                ],
            },
            headers={"Authorization": f"Token {org.token}"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def influxql(token: str, org: OrgUnderTest, database: str, query: str) -> list[list[Any]]:
    with httpx.Client(base_url=org.url, timeout=30) as client:
        response = client.get(
            "/query",
            params={"db": database, "q": query},
            headers={"Authorization": f"Token {token}"},
        )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert "error" not in result, result
    series = result.get("series", [])
    return [row for one in series for row in one["values"]]


def namespaces_in(org: OrgUnderTest, bucket: str) -> set[str]:
    rows = query_rows(
        org,
        f'from(bucket: "{bucket}") |> range(start: -1h)'
        ' |> keep(columns: ["namespace"]) |> group() |> distinct(column: "namespace")',
    )
    return {row["_value"] for row in rows}


def tag_keys_in(org: OrgUnderTest, bucket: str) -> set[str]:
    rows = query_rows(
        org,
        f'import "influxdata/influxdb/schema"\nschema.tagKeys(bucket: "{bucket}", start: -1h)',
    )
    return {row["_value"] for row in rows}


def test_generated_manifests_pass_strict_server_side_validation(
    kube_api: KubeAPI, org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    """Telegraf's and kube-state-metrics' objects, dry-run created with strict field validation
    in a namespace enforcing the restricted Pod Security Standard: no warning for the
    DaemonSet and the Deployment (admission only warns for workloads), and their pods, which
    admission enforces it on, accepted."""
    phalanx.set_apps(DEFAULTS, ENVIRONMENTS)
    namespace = f"monitoring-{uuid.uuid4().hex[:6]}"
    env = org.env(PHALANX_REPO=phalanx.url)
    run = run_cli(
        ["telegraf-config", "--environment", ENVIRONMENT, "--format", "manifests",
         "--namespace", namespace],
        env,
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    documents = list(yaml.safe_load_all(run.stdout))
    assert [doc["kind"] for doc in documents].count("Deployment") == 1
    levels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    metadata = {"name": namespace, "labels": levels}
    response = create(kube_api, {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    assert response.status_code == 201, response.text
    for document in documents:
        response = create(kube_api, document, dryRun="All", fieldValidation="Strict")
        assert response.status_code == 201, (document["kind"], response.text)
        assert not response.headers.get("Warning"), response.headers.get("Warning")
        if document["kind"] in ("DaemonSet", "Deployment"):
            template = document["spec"]["template"]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**template["metadata"], "name": document["metadata"]["name"]},
                "spec": template["spec"],
            }
            response = kube_api.client.post(
                f"/api/v1/namespaces/{namespace}/pods",
                json=pod,
                params={"dryRun": "All", "fieldValidation": "Strict"},
            )
            assert response.status_code == 201, (document["kind"], response.text)
            assert not response.headers.get("Warning"), response.headers.get("Warning")
    # A dry run stores nothing.
    for document in documents:
        name = document["metadata"]["name"]
        assert kube_api.client.get(f"{collection(document)}/{name}").status_code == 404
    # Strict validation is on: an unknown field is refused; so is a pod the restricted level
    # forbids (the control: the DaemonSet's pod, allowed to escalate privileges).
    daemonset = next(doc for doc in documents if doc["kind"] == "DaemonSet")
    broken = {**daemonset, "spec": {**daemonset["spec"], "replicas": 2}}
    response = create(kube_api, broken, dryRun="All", fieldValidation="Strict")
    assert response.status_code == 400 and "replicas" in response.text
    template = daemonset["spec"]["template"]
    (container,) = template["spec"]["containers"]
    escalating = {**container, "securityContext": {**container["securityContext"],
                                                   "allowPrivilegeEscalation": True}}  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "escalating", "namespace": namespace},
        "spec": {**template["spec"], "containers": [escalating]},
    }
    response = kube_api.client.post(
        f"/api/v1/namespaces/{namespace}/pods", json=pod, params={"dryRun": "All"}
    )
    assert response.status_code == 403 and "allowPrivilegeEscalation" in response.text


def test_fleet_lab_from_pods_to_slack(
    kube_api: KubeAPI,
    org: OrgUnderTest,
    phalanx: PhalanxRepo,
    telegraf_bin: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    kube = kube_api
    phalanx.set_apps(DEFAULTS, ENVIRONMENTS)
    env = org.env(PHALANX_REPO=phalanx.url)

    # InfluxDB, as the CronJobs and the one-off setup would leave it.
    cli_ok(["bucketmaker"], env)
    cli_ok(["bucketmapper"], env)
    tokens = cli_ok(["tokenmaker", "--bot-user", f"bot-{org.name}"], env)["tokens"]
    assert {"telegraf-idfdev", "telegraf-summit", "taskmaker", "notifier"} <= set(tokens)
    # The default checks, and job_failed (off by default).
    checks = f"{DEFAULT_CHECKS},job_failed"
    cli_ok(["taskmaker"], {**env, "INFLUXDB_TOKEN": tokens["taskmaker"], "CHECKS": checks})

    # The cluster: the generated manifests' ServiceAccount and least RBAC, applied for real,
    # and the applications' pods, with their status set as a kubelet would.
    manifests = run_cli(
        ["telegraf-config", "--environment", ENVIRONMENT, "--format", "manifests"], env
    )
    assert manifests.exit_code == 0, manifests.stderr
    documents = list(yaml.safe_load_all(manifests.stdout))
    create_namespace(kube, "monitoring")
    objects = LabObjects(kube)
    now = datetime.now(UTC).replace(microsecond=0)
    with ExitStack() as stack:
        stack.callback(objects.delete_all)
        for document in documents:
            response = create(kube, document)
            assert response.status_code == 201, response.text
            if "namespace" not in document["metadata"]:
                path = f"{collection(document)}/{document['metadata']['name']}"
                stack.callback(kube.client.delete, path)
        for namespace in ("mobu", "times-square", "nublado", "sasquatch"):
            create_namespace(kube, namespace)
        for item in PODS:
            response = kube.client.post(
                f"/api/v1/namespaces/{item['namespace']}/pods", json=item["spec"]
            )
            assert response.status_code == 201, response.text
            set_status(kube, item["namespace"], item["spec"]["metadata"]["name"], item["status"])
        # kube-state-metrics as the generated manifests run it, at its pod's address; the same
        # OOM kill and failed Job in mobu (enabled in idfdev) and sasquatch (not enabled).
        ksm_ip = free_loopback(8080)
        objects.pod("monitoring", "kube-state-metrics-6c8d9f7b4-x7z8c", node=NODE,
                    labels={"app.kubernetes.io/name": "kube-state-metrics"}, ip=ksm_ip)  # fmt: skip
        ksm_issued = kube.client.post(
            "/api/v1/namespaces/monitoring/serviceaccounts/kube-state-metrics/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )  # fmt: skip
        assert ksm_issued.status_code == 201, ksm_issued.text
        stack.enter_context(
            kube_state_metrics(kube, ksm_issued.json()["status"]["token"], host=ksm_ip, port=8080)
        )
        for namespace in ("mobu", "sasquatch"):
            batch_problems(objects, namespace, now)
        api_port = int(kube.url.rsplit(":", 1)[1])
        proxy = stack.enter_context(
            connect_proxy({"kubernetes.default.svc:443": ("127.0.0.1", api_port)})
        )
        issued = kube.client.post(
            "/api/v1/namespaces/monitoring/serviceaccounts/telegraf/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )  # fmt: skip
        assert issued.status_code == 201, issued.text
        service_account_token = issued.json()["status"]["token"]
        token_file = tmp_path / "token"
        token_file.write_text(service_account_token)
        lab_ready = time.monotonic()

        generated = run_cli(["telegraf-config", "--environment", ENVIRONMENT], env)
        assert generated.exit_code == 0, generated.stderr
        assert tokens["telegraf-idfdev"] not in generated.stdout
        listed = [
            {"metadata": {**p["spec"]["metadata"], "namespace": p["namespace"]},
             "spec": p["spec"]["spec"]}
            for p in PODS
        ]  # fmt: skip
        with kubelet_stand_in(service_account_token, listed) as kubelet:
            kubeconfig = write_kubeconfig(kube, token_file, tmp_path / "kubeconfig")
            config = lab_config(generated.stdout, kube, token_file, kubeconfig,
                                kubelet=kubelet.url, proxy=proxy.url)  # fmt: skip
            telegraf_env = {"INFLUX_TOKEN": tokens["telegraf-idfdev"], "NODE_NAME": NODE}
            collect(config, telegraf_env)
            # mobu's container restarts twice before the next collection.
            status = PODS[0]["status"]
            status["containerStatuses"][0]["restartCount"] = 3
            set_status(kube, "mobu", "mobu-0", status)
            time.sleep(1)
            collect(config, telegraf_env)
        assert kubelet.authorizations
        assert set(kubelet.authorizations) == {f"Bearer {service_account_token}"}
        assert proxy.tunnels == 2
    collected = time.monotonic()

    # Routing: each namespace in its application's bucket; sasquatch (not enabled in idfdev)
    # nowhere, not even in its own bucket (summit's); no bucket tag left on any point.
    assert namespaces_in(org, "mobu") == {"mobu"}
    assert namespaces_in(org, "times_square") == {"times-square"}
    assert namespaces_in(org, "nublado") == {"nublado"}
    assert {"cluster", "namespace", "pod_name", "container_name"} <= tag_keys_in(org, "mobu")
    for bucket in [*BUCKETS, "multiapp_", "alerted_"]:
        assert "sasquatch" not in namespaces_in(org, bucket), bucket
        assert "bucket" not in tag_keys_in(org, bucket), bucket
    assert namespaces_in(org, "sasquatch") == set()

    # InfluxQL through the v1 API and bucketmapper's mappings: Telegraf's own points.
    reader = reader_token(org)
    restarts = influxql(
        reader,
        org,
        "mobu",
        "SELECT restarts_total FROM kubernetes_pod_container "
        "WHERE pod_name = 'mobu-0' AND cluster = 'idfdev' AND time > now() - 1h",
    )
    assert [row[1] for row in restarts] == [1, 3]
    usage = influxql(
        reader,
        org,
        "nublado",
        "SELECT cpu_usage_nanocores FROM kubernetes_pod_container WHERE pod_name = 'hub-0'",
    )
    assert [row[1] for row in usage] == [190000000, 190000000]

    # Every check task of every application, forced now (after the last point's second).
    time.sleep(1)
    with httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {org.token}"}, timeout=30
    ) as client:
        listed = client.get("/api/v2/tasks", params={"orgID": org.id, "limit": 500}).json()
    task_ids = [task["id"] for task in listed["tasks"]]
    # restarts, not_running, cpu, oom_killed and job_failed per application; cert_expiry for
    # the fleet; silent per environment (argocd_app and http_5xx: no Argo CD, no ingress-nginx).
    assert len(task_ids) == len(BUCKETS) * 5 + 1 + len(ENVIRONMENTS)
    runs = [(task_id, start_run(org, task_id)) for task_id in task_ids]
    for task_id, run_id in runs:
        assert wait_for_run(org, task_id, run_id, timeout=60).status == "success"

    # The notifier, against the Slack stand-in: exactly the expected alerts, once.
    with slack_server() as slack:
        notifier_env = {
            **org.env(),
            "INFLUXDB_TOKEN": tokens["notifier"],
            "SLACK_WEBHOOK_URL": slack.url(),
        }
        report = cli_ok(["notifier"], notifier_env)
        alerts = {alert["dedup_key"]: alert for alert in report["routes"]["default"]["alerts"]}
        assert set(alerts) == set(EXPECTED_ALERTS), alerts
        delivered = slack.delivered()
        assert delivered, "nothing reached Slack"
        text = "\n".join(post.text for post in delivered)
        for key, (cluster, severity, names) in EXPECTED_ALERTS.items():
            alert = alerts[key]
            assert (alert["cluster"], alert["severity"]) == (cluster, severity), alert
            for name in [cluster, *names]:
                assert name in alert["message"], (name, alert["message"])
            assert alert["message"] in text
        for healthy in ("times-square-ui-0", "proxy-0", "kafka-0", "sasquatch"):
            assert healthy not in text
        again = cli_ok(["notifier"], notifier_env)
        assert again["messages"] == [] and len(slack.posts()) == len(delivered)
    finished = time.monotonic()
    print(
        f"\nfleet lab: setup and cluster {lab_ready - started:.1f}s, two collections "
        f"{collected - lab_ready:.1f}s, checks and notifier {finished - collected:.1f}s, "
        f"total {finished - started:.1f}s"
    )

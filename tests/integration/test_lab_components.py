"""The lab's components on their own: Telegraf writes into the real InfluxDB, the real Kubernetes
API server stores Pods and their status."""

from __future__ import annotations

import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest
from support.kubeapi import KubeAPI
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once, telegraf_agent

from rubin_monitoring.testing.flux import create_bucket, field_types, pod_container_line, query_rows

pytestmark = pytest.mark.integration

TELEGRAF_CONFIG = """
[agent]
  interval = "1s"
  flush_interval = "1s"
  omit_hostname = true

[[inputs.file]]
  files = ["${POINTS_FILE}"]
  data_format = "influx"

[[outputs.influxdb_v2]]
  urls = ["${INFLUX_URL}"]
  token = "${INFLUX_TOKEN}"
  organization = "${INFLUX_ORG}"
  bucket = "${INFLUX_BUCKET}"
"""


def telegraf_env(org: OrgUnderTest, bucket: str, points: Path) -> dict[str, str]:
    return {
        "POINTS_FILE": str(points),
        "INFLUX_URL": org.url,
        "INFLUX_TOKEN": org.token,
        "INFLUX_ORG": org.name,
        "INFLUX_BUCKET": bucket,
    }


def container_rows(org: OrgUnderTest, bucket: str) -> list[dict[str, str]]:
    return query_rows(
        org,
        f'from(bucket: "{bucket}") |> range(start: -1h)'
        ' |> filter(fn: (r) => r._measurement == "kubernetes_pod_container")'
        ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        " |> group()",
    )


def test_telegraf_once_writes_file_points_into_influxdb(
    telegraf_bin: Path, org: OrgUnderTest, tmp_path: Path
) -> None:
    create_bucket(org, "telegraf")
    points = tmp_path / "points.lp"
    points.write_text(
        pod_container_line(
            cluster="lab",
            namespace="mobu",
            pod="mobu-0",
            container="mobu",
            fields={"restarts_total": 3, "state_reason": "CrashLoopBackOff"},
            timestamp=time.time(),
            extra_tags={"state": "waiting"},
        )
        + "\n"
    )

    done = run_telegraf_once(TELEGRAF_CONFIG, telegraf_env(org, "telegraf", points))

    assert done.returncode == 0, done.stderr
    rows = container_rows(org, "telegraf")
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        # Right after Telegraf --once exited, the point was at times not visible yet (1 run in
        # 3 here): give it a moment.
        time.sleep(0.2)
        rows = container_rows(org, "telegraf")
    assert len(rows) == 1, (rows, done.stderr)
    row = rows[0]
    assert (row["cluster"], row["namespace"], row["pod_name"], row["state"]) == (
        "lab",
        "mobu",
        "mobu-0",
        "waiting",
    )
    assert (row["restarts_total"], row["state_reason"]) == ("3", "CrashLoopBackOff")
    types = field_types(org, "telegraf", "kubernetes_pod_container")
    assert types == {"restarts_total": "long", "state_reason": "string"}


def test_telegraf_agent_keeps_writing_until_stopped(
    telegraf_bin: Path, org: OrgUnderTest, tmp_path: Path
) -> None:
    create_bucket(org, "telegraf")
    points = tmp_path / "points.lp"
    # No timestamp: each gather stamps the line with its own time, one point per interval.
    points.write_text(
        "kubernetes_pod_container,cluster=lab,namespace=mobu,pod_name=mobu-0 restarts_total=1i\n"
    )

    with telegraf_agent(TELEGRAF_CONFIG, telegraf_env(org, "telegraf", points)) as agent:
        deadline = time.monotonic() + 30
        while len(container_rows(org, "telegraf")) < 2:
            assert time.monotonic() < deadline, f"fewer than 2 points after 30s:\n{agent.log()}"
            time.sleep(0.5)
    assert agent.process.returncode is not None


def test_kube_api_stores_a_pod_and_its_status(kube_api: KubeAPI) -> None:
    client = kube_api.client
    namespace = f"lab-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/namespaces",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    assert created.status_code == 201, created.text
    pods = f"/api/v1/namespaces/{namespace}/pods"
    created = client.post(
        pods,
        json={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "mobu-0", "labels": {"app": "mobu"}},
            "spec": {"containers": [{"name": "mobu", "image": "example.org/mobu:1.0"}]},
        },
    )
    assert created.status_code == 201, created.text

    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {
                "name": "mobu",
                "image": "example.org/mobu:1.0",
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 3,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container=mobu",
                    }
                },
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    }
    patched = client.patch(
        f"{pods}/mobu-0/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text

    pod = client.get(f"{pods}/mobu-0").json()
    assert pod["status"]["phase"] == "Running"
    (container,) = pod["status"]["containerStatuses"]
    assert container["restartCount"] == 3
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["lastState"]["terminated"]["exitCode"] == 1
    # The spec is untouched by a status write, and RBAC turns the anonymous user away.
    assert pod["spec"]["containers"][0]["image"] == "example.org/mobu:1.0"
    trust = ssl.create_default_context(cafile=str(kube_api.ca_file))
    with httpx.Client(base_url=kube_api.url, verify=trust) as anonymous:
        assert anonymous.get(pods).status_code == 403

"""The data half of ``scripts/demo``: Telegraf-shaped points for one unhealthy container, then
one forced run of every check task of its application, so the notifier has a finding to show.

Reads ``INFLUXDB_URL``, ``INFLUXDB_TOKEN`` and ``INFLUXDB_ORG`` (an operator token); prints
what it did on stderr.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from .flux import pod_container_line, run_task_and_wait, write_lines

CLUSTER = "idfdev"
BUCKET = "nublado"
POD = "nublado-hub-6f7c9d-x2b4q"
CONTAINER = "hub"


@dataclass(frozen=True)
class DemoOrg:
    """The organization the demo writes to (what the Flux helpers need)."""

    url: str
    token: str
    name: str
    id: str


def unhealthy_container_lines(now: datetime) -> list[str]:
    """Nine minutes of one container whose restart count goes from 1 to 4."""
    return [
        pod_container_line(
            cluster=CLUSTER,
            namespace=BUCKET,
            pod=POD,
            container=CONTAINER,
            fields={"restarts_total": 1 if ago > 300 else 4, "state_code": 0},
            timestamp=now - timedelta(seconds=ago),
            extra_tags={"phase": "Running", "state": "running", "readiness": "ready"},
        )
        for ago in range(540, 0, -30)
    ]


def main() -> None:
    """Write the unhealthy container's points and force its application's check tasks."""
    url, token, name = (
        os.environ[key] for key in ("INFLUXDB_URL", "INFLUXDB_TOKEN", "INFLUXDB_ORG")
    )
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        org_id = client.get("/api/v2/orgs", params={"org": name}).json()["orgs"][0]["id"]
        org = DemoOrg(url, token, name, org_id)
        write_lines(org, BUCKET, unhealthy_container_lines(datetime.now(UTC)))
        print(
            f"demo: wrote points for {CLUSTER}/{BUCKET} pod {POD}, container {CONTAINER}",
            file=sys.stderr,
        )
        tasks = client.get("/api/v2/tasks", params={"orgID": org_id, "limit": 500}).json()
    for task in tasks["tasks"]:
        if task["name"].startswith(f"{BUCKET} "):
            run = run_task_and_wait(org, task["id"], timeout=60)
            print(f"demo: forced task {task['name']!r}: {run.status}", file=sys.stderr)


if __name__ == "__main__":
    main()

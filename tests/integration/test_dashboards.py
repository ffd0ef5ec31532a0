"""dashboardmaker on a real InfluxDB: the dashboards under dashboards/ are applied through one
stack, idempotently, never touching hand-made dashboards. That every cell's query and every
variable query returns rows on what the real Telegraf writes is test_lab_checks.py's (and
test_host_telegraf.py's, for the InfluxDB dashboard)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest

from rubin_monitoring.models.dashboards import STACK_NAME
from rubin_monitoring.testing.faultproxy import Fault, FaultProxy, RequestInfo

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.yml"))


@contextmanager
def api(org: OrgUnderTest) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Token {org.token}"}
    with httpx.Client(base_url=org.url, headers=headers, timeout=30) as client:
        yield client


def dashboards(org: OrgUnderTest) -> dict[str, str]:
    """Dashboard ID -> name."""
    with api(org) as client:
        body = client.get("/api/v2/dashboards", params={"orgID": org.id, "limit": 100}).json()
    return {d["id"]: d["name"] for d in body["dashboards"]}


def variables(org: OrgUnderTest) -> dict[str, dict[str, Any]]:
    """Variable name -> variable."""
    with api(org) as client:
        body = client.get("/api/v2/variables", params={"orgID": org.id}).json()
    return {v["name"]: v for v in body["variables"]}


def stacks(org: OrgUnderTest) -> list[dict[str, Any]]:
    with api(org) as client:
        return list(client.get("/api/v2/stacks", params={"orgID": org.id}).json()["stacks"])


def dashboardmaker(org: OrgUnderTest, *flags: str, **env: str) -> Run:
    return run_cli(["dashboardmaker", "--output", "json", *flags], org.env(**env))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def desired_names() -> set[str]:
    return {
        doc["spec"]["name"]
        for path in DASHBOARDS
        for doc in documents(path)
        if doc["kind"] == "Dashboard"
    }


def test_applied_twice_one_stack_no_duplicates_hand_made_untouched(org: OrgUnderTest) -> None:
    with api(org) as client:
        response = client.post(
            "/api/v2/dashboards",
            json={"orgID": org.id, "name": "Rubin K8s applications", "description": "mine"},
        )
        assert response.status_code == 201, response.text
        hand_made = response.json()

    plan = dashboardmaker(org, "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert {c["action"] for c in plan.changes} == {"create"}
    assert {c["name"].split(" (")[0] for c in plan.changes if c["kind"] == "dashboard"} == (
        desired_names()
    )
    assert stacks(org) == []
    assert dashboards(org) == {hand_made["id"]: hand_made["name"]}

    first = dashboardmaker(org)
    assert first.exit_code == 0, first.stderr
    assert {c["status"] for c in first.changes} == {"done"}
    after_first = dashboards(org)
    assert sorted(after_first.values()) == sorted([*desired_names(), hand_made["name"]])

    second = dashboardmaker(org)
    assert second.exit_code == 0, second.stderr
    assert second.changes == []
    assert second.json()["summary"]["unchanged"] == len(first.changes)
    assert dashboards(org) == after_first
    [stack] = stacks(org)
    assert stack["name"] == STACK_NAME
    assert hand_made["id"] not in {r["resourceID"] for r in stack["resources"]}
    with api(org) as client:
        mine = client.get(f"/api/v2/dashboards/{hand_made['id']}").json()
    assert (mine["name"], mine["description"]) == ("Rubin K8s applications", "mine")


def test_stack_created_once_when_the_answer_is_lost(org: OrgUnderTest) -> None:
    dropped: list[int] = []

    def drop_first_stack_create(request: RequestInfo) -> Fault:
        if request.method == "POST" and request.path == "/api/v2/stacks" and not dropped:
            dropped.append(request.index)
            return Fault.DROP_RESPONSE
        return Fault.NONE

    with FaultProxy(org.url) as proxy:
        proxy.set_faults(drop_first_stack_create)
        run = run_cli(
            ["dashboardmaker", "--output", "json"], {**org.env(), "INFLUXDB_URL": proxy.url}
        )
    assert dropped, "the stack was never created"
    assert run.exit_code == 0, run.stderr
    assert len(stacks(org)) == 1
    assert sorted(dashboards(org).values()) == sorted(desired_names())


def test_changed_file_updates_removed_file_is_kept_until_prune(
    org: OrgUnderTest, tmp_path: Path
) -> None:
    directory = tmp_path / "dashboards"
    shutil.copytree(DASHBOARD_DIR, directory)
    assert dashboardmaker(org, DASHBOARDS_DIR=str(directory)).exit_code == 0
    ids = dashboards(org)

    alerts = directory / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("name: Open problems", "name: Open issues"))
    (directory / "influxdb.yml").unlink()
    plan = dashboardmaker(org, "--dry-run", DASHBOARDS_DIR=str(directory))
    assert [(c["action"], c["name"]) for c in plan.changes] == [
        ("update", "Rubin monitoring alerts (alerts.yml)")
    ]
    assert {(o["kind"], o["name"]) for o in plan.json()["orphans"]} == {
        ("dashboard", "Rubin InfluxDB"),
        ("variable", "influxdb_bucket"),
    }
    kept = dashboardmaker(org, DASHBOARDS_DIR=str(directory))
    assert kept.exit_code == 0, kept.stderr
    assert [c["action"] for c in kept.changes] == ["update"]
    assert dashboards(org) == ids
    assert "influxdb_bucket" in variables(org)

    pruned = dashboardmaker(org, "--prune", DASHBOARDS_DIR=str(directory))
    assert pruned.exit_code == 0, pruned.stderr
    assert sorted((c["action"], c["kind"]) for c in pruned.changes) == [
        ("delete", "dashboard"),
        ("delete", "variable"),
    ]
    assert sorted(dashboards(org).values()) == sorted(desired_names() - {"Rubin InfluxDB"})
    assert "influxdb_bucket" not in variables(org)
    assert dashboardmaker(org, "--prune", DASHBOARDS_DIR=str(directory)).changes == []
    assert len(stacks(org)) == 1


def test_objects_deleted_by_hand_are_made_again_and_the_rest_left_alone(
    org: OrgUnderTest,
) -> None:
    """InfluxDB cannot export a stack one of whose objects is gone (500 "dashboard not
    found"): the run must still plan from what is left and make the missing objects again."""
    assert dashboardmaker(org).exit_code == 0
    before = dashboards(org)
    gone_id, gone_name = sorted(before.items())[0]
    with api(org) as client:
        assert client.delete(f"/api/v2/dashboards/{gone_id}").status_code == 204
        variable = variables(org)["cluster"]
        assert client.delete(f"/api/v2/variables/{variable['id']}").status_code == 204

    plan = dashboardmaker(org, "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert sorted((c["action"], c["kind"], c["name"].split(" (")[0]) for c in plan.changes) == [
        ("create", "dashboard", gone_name),
        ("create", "variable", "cluster"),
    ]
    assert {c["reason"] for c in plan.changes} == {"deleted from InfluxDB by hand"}

    repaired = dashboardmaker(org)
    assert repaired.exit_code == 0, repaired.stderr
    after = dashboards(org)
    assert sorted(after.values()) == sorted(before.values())
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if k != gone_id
    }
    assert "cluster" in variables(org)
    again = dashboardmaker(org)
    assert again.exit_code == 0, again.stderr
    assert again.changes == []
    assert len(stacks(org)) == 1


def test_hand_made_variable_of_the_same_name_is_a_conflict_and_untouched(org: OrgUnderTest) -> None:
    with api(org) as client:
        response = client.post(
            "/api/v2/variables",
            json={
                "orgID": org.id,
                "name": "cluster",
                "arguments": {"type": "constant", "values": ["mine"]},
            },
        )
        assert response.status_code == 201, response.text
    run = dashboardmaker(org)
    assert run.exit_code == 1
    assert [(c["kind"], c["name"]) for c in run.json()["conflicts"]] == [("variable", "cluster")]
    assert variables(org)["cluster"]["arguments"] == {"type": "constant", "values": ["mine"]}
    assert "application" in variables(org)


# Every cell's query of every dashboard returns rows on what the real Telegraf wrote with the
# generated configuration: test_lab_checks.py (the InfluxDB dashboard: test_host_telegraf.py).

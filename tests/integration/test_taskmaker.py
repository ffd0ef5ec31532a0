"""taskmaker against a real InfluxDB v2: tasks created, kept in step with templates, health."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

CHECKS = ("restarts", "not_running", "cpu")
APPS = {"argocd": True, "mobu-x": True, "nublado": False}


def api(org: OrgUnderTest) -> httpx.Client:
    return httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {org.token}"}, timeout=30
    )


def tasks(org: OrgUnderTest) -> list[dict[str, Any]]:
    with api(org) as client:
        body = client.get("/api/v2/tasks", params={"orgID": org.id, "limit": 500}).json()
    return list(body["tasks"])


def owned(org: OrgUnderTest) -> dict[str, dict[str, Any]]:
    return {
        t["name"]: t
        for t in tasks(org)
        if "managed-by=rubin-monitoring" in (t.get("description") or "")
    }


def taskmaker(org: OrgUnderTest, repo: PhalanxRepo, *flags: str, **env: str) -> Run:
    """taskmaker with the application checks of CHECKS (unless ``CHECKS`` is given)."""
    settings = org.env(PHALANX_REPO=repo.url, **{"CHECKS": ",".join(CHECKS), **env})
    return run_cli(["taskmaker", "--output", "json", *flags], settings)


@pytest.fixture
def repo(phalanx: PhalanxRepo) -> PhalanxRepo:
    phalanx.set_apps(APPS, {"dev": {}, "prod": {"applications": {"nublado": True}}})
    return phalanx


EXPECTED = {f"{app} {check}" for app in ("argocd", "mobu_x", "nublado") for check in CHECKS}


def test_first_run_creates_one_task_per_app_and_check_then_converges(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    first = taskmaker(org, repo)
    assert first.exit_code == 0, first.stderr
    assert {c["name"] for c in first.changes} == EXPECTED
    created = owned(org)
    assert set(created) == EXPECTED
    for name, task in created.items():
        app, check = name.split()
        assert task["status"] == "active"
        assert task["every"] == "5m"
        marker = f"(managed-by=rubin-monitoring bucket={app} check={check})"
        assert task["description"].endswith(marker)
        assert f'application = "{app}"' in task["flux"]
        assert "multiapp_" in task["flux"]
    offsets = {t["offset"] for t in created.values()}
    assert len(offsets) > 1, "offsets are staggered"

    second = taskmaker(org, repo)
    assert second.exit_code == 0
    assert second.changes == []
    assert second.json()["summary"]["unchanged"] == len(EXPECTED)


def test_hand_edited_task_is_restored_in_place(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    taskmaker(org, repo)
    original = owned(org)["argocd cpu"]
    with api(org) as client:
        edited = original["flux"].replace("multiapp_", "somewhere_else")
        client.patch(f"/api/v2/tasks/{original['id']}", json={"flux": edited}).raise_for_status()
        client.patch(
            f"/api/v2/tasks/{owned(org)['mobu_x restarts']['id']}", json={"every": "1h"}
        ).raise_for_status()

    run = taskmaker(org, repo)
    assert run.exit_code == 0
    assert sorted((c["action"], c["name"], c["reason"]) for c in run.changes) == [
        ("update", "argocd cpu", "Flux differs from the template"),
        ("update", "mobu_x restarts", "every 1h -> 300s"),
    ]
    restored = owned(org)
    assert restored["argocd cpu"]["id"] == original["id"]
    assert restored["argocd cpu"]["flux"] == original["flux"]
    assert restored["mobu_x restarts"]["every"] == "5m"
    assert taskmaker(org, repo).changes == []


def test_template_change_updates_every_owned_task_in_place(
    org: OrgUnderTest, repo: PhalanxRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    taskmaker(org, repo)
    before = {name: t["id"] for name, t in owned(org).items()}

    from rubin_monitoring.services import tasks as task_service
    from rubin_monitoring.services.checks import render_check

    render = render_check

    def changed_template(*args: Any, **kwargs: Any) -> str:
        return render(*args, **kwargs) + "// template revision 2\n"

    monkeypatch.setattr(task_service, "render_check", changed_template)
    run = taskmaker(org, repo)
    assert run.exit_code == 0
    assert {(c["action"], c["name"]) for c in run.changes} == {("update", n) for n in EXPECTED}
    after = owned(org)
    assert {name: t["id"] for name, t in after.items()} == before
    assert all(t["flux"].endswith("// template revision 2\n") for t in after.values())


def test_setting_change_reaches_existing_tasks(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    taskmaker(org, repo)
    run = taskmaker(org, repo, CPU_THRESHOLD="75")
    assert {(c["action"], c["name"]) for c in run.changes} == {
        ("update", f"{app} cpu") for app in ("argocd", "mobu_x", "nublado")
    }


def test_force_recreates_owned_tasks_and_leaves_unowned_alone(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    taskmaker(org, repo)
    before = owned(org)
    theirs_flux = (
        'option task = {name: "argocd cpu", every: 1h}\nfrom(bucket: "argocd") '
        "|> range(start: -1h) |> yield()\n"
    )
    with api(org) as client:
        response = client.post("/api/v2/tasks", json={"orgID": org.id, "flux": theirs_flux})
        response.raise_for_status()
        theirs = response.json()["id"]

    run = taskmaker(org, repo, FORCE="1", PRUNE="1")
    assert run.exit_code == 0
    assert {(c["action"], c["name"]) for c in run.changes} == {("recreate", n) for n in EXPECTED}
    after = owned(org)
    assert set(after) == EXPECTED
    assert all(after[name]["id"] != before[name]["id"] for name in EXPECTED)
    untouched = [t for t in tasks(org) if t["id"] == theirs]
    assert len(untouched) == 1 and untouched[0]["flux"] == theirs_flux


def test_disabled_app_tasks_are_orphans_until_prune(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    taskmaker(org, repo)
    repo.set_apps({**APPS, "mobu-x": False}, {"dev": {}, "prod": {}}, "disable")
    run = taskmaker(org, repo)
    orphans = {o["name"] for o in run.json()["orphans"]}
    assert orphans == {f"{app} {check}" for app in ("mobu_x", "nublado") for check in CHECKS}
    assert run.changes == []
    assert set(owned(org)) == EXPECTED

    pruned = taskmaker(org, repo, "--prune")
    assert {(c["action"], c["name"]) for c in pruned.changes} == {("delete", n) for n in orphans}
    assert set(owned(org)) == {f"argocd {check}" for check in CHECKS}


def test_check_list_setting_and_bad_check_name(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    run = taskmaker(org, repo, CHECKS="memory")
    assert run.exit_code == 0
    assert set(owned(org)) == {f"{app} memory" for app in ("argocd", "mobu_x", "nublado")}
    bad = taskmaker(org, repo, CHECKS="restarts,disks")
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: invalid CHECKS (--checks):")
    assert "disks" in bad.stderr


def test_health_reports_failing_tasks(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    run = taskmaker(org, repo, CHECKS="cpu")  # no app buckets exist: every run fails
    assert run.exit_code == 0
    task = owned(org)["argocd cpu"]
    with api(org) as client:
        client.post(f"/api/v2/tasks/{task['id']}/runs", json={}).raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = client.get(f"/api/v2/tasks/{task['id']}").json()
            if current.get("lastRunStatus") == "failed":
                break
            time.sleep(0.2)
    health = run_cli(["taskmaker", "--health", "--output", "json"], org.env())
    assert health.exit_code == 1
    failing = health.json()["failing"]
    assert [(f["application"], f["check"]) for f in failing] == [("argocd", "cpu")]
    assert "argocd" in failing[0]["last_run_error"]
    assert health.json()["owned_tasks"] == 3


def test_default_checks_add_one_silent_task_per_environment(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    """silent is on by default: one task per environment, from the inventory; and so are
    oom_killed (per application), argocd_app (over Argo CD's bucket: argocd is enabled;
    http_5xx is not installed, ingress-nginx is not) and cert_expiry (the fleet)."""
    settings = org.env(PHALANX_REPO=repo.url)
    run = run_cli(["taskmaker", "--output", "json"], settings)
    assert run.exit_code == 0, run.stderr
    created = owned(org)
    per_application = {
        f"{app} {check}" for app in ("argocd", "mobu_x", "nublado")
        for check in ("oom_killed",)
    }  # fmt: skip
    assert set(created) == EXPECTED | per_application | {
        "argocd argocd_app",
        "certificates cert_expiry",
        "dev silent",
        "prod silent",
    }
    marker = "(managed-by=rubin-monitoring fleet=certificates check=cert_expiry)"
    assert created["certificates cert_expiry"]["description"].endswith(marker)
    assert created["argocd argocd_app"]["description"].endswith(
        "(managed-by=rubin-monitoring bucket=argocd check=argocd_app)"
    )
    prod = created["prod silent"]
    assert prod["description"].endswith("(managed-by=rubin-monitoring cluster=prod check=silent)")
    # prod enables nublado on top of the defaults; dev only the defaults.
    assert 'expected = ["argocd", "mobu_x", "nublado"]' in prod["flux"]
    assert 'expected = ["argocd", "mobu_x"]' in created["dev silent"]["flux"]
    assert run_cli(["taskmaker", "--output", "json"], settings).changes == []

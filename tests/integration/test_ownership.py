"""Issue 8's ownership cases on a real InfluxDB: hand-made objects that look like the toolkit's
are never changed or deleted. Each was seen to fail before ownership became exact."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest

from rubin_monitoring.models.tokens import ROLE_NAMES
from rubin_monitoring.testing.flux import create_bucket, query_rows, write_lines
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

# The default checks of each application, and of the fleet.
CHECKS = ("restarts", "not_running", "cpu", "oom_killed")
FLEET = ("certificates cert_expiry",)
HAND_MADE_FLUX = """option task = {name: "gafaelfawr restarts", every: 1h}
from(bucket: "gafaelfawr") |> range(start: -1h) |> yield(name: "mine")
"""


def api(org: OrgUnderTest, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Token {token or org.token}"}
    return httpx.Client(base_url=org.url, headers=headers, timeout=30)


def tasks(org: OrgUnderTest) -> dict[str, dict[str, Any]]:
    with api(org) as client:
        body = client.get("/api/v2/tasks", params={"orgID": org.id, "limit": 500}).json()
    return {task["id"]: task for task in body["tasks"]}


def authorizations(org: OrgUnderTest) -> dict[str, dict[str, Any]]:
    with api(org) as client:
        body = client.get("/api/v2/authorizations", params={"orgID": org.id}).json()
    return {auth["id"]: auth for auth in body["authorizations"]}


def setup_fleet(org: OrgUnderTest, repo: PhalanxRepo) -> dict[str, str]:
    """bucketmaker, then tokenmaker: the tokens, by role."""
    env = org.env(PHALANX_REPO=repo.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    made = run_cli(["tokenmaker", "--output", "json", "--bot-user", f"bot-{org.name}"], env)
    assert made.exit_code == 0, made.stderr
    tokens: dict[str, str] = made.json()["tokens"]
    return tokens


def taskmaker(org: OrgUnderTest, repo: PhalanxRepo, token: str, *flags: str, **env: str) -> Run:
    settings = org.env(PHALANX_REPO=repo.url, **env)
    settings["INFLUXDB_TOKEN"] = token
    return run_cli(["taskmaker", "--output", "json", *flags], settings, secrets=[token])


@pytest.fixture
def repo(phalanx: PhalanxRepo) -> PhalanxRepo:
    phalanx.set_apps({"gafaelfawr": True, "mobu": True}, {"idfdev": {}})
    return phalanx


def hand_made_task(org: OrgUnderTest, description: str) -> dict[str, Any]:
    """A person's task (the operator's user, not the bot), inactive, described as given."""
    body = {
        "orgID": org.id,
        "flux": HAND_MADE_FLUX,
        "description": description,
        "status": "inactive",
    }
    with api(org) as client:
        response = client.post("/api/v2/tasks", json=body)
        response.raise_for_status()
        task: dict[str, Any] = response.json()
    return task


@pytest.mark.parametrize(
    "description",
    [
        # 0.1.0's description of its own task, copied by hand.
        "Alert check restarts of gafaelfawr "
        "(managed-by=rubin-monitoring app=gafaelfawr check=restarts)",
        # The current one, copied by hand.
        "Alert check restarts of gafaelfawr "
        "(managed-by=rubin-monitoring bucket=gafaelfawr check=restarts)",
        "NOT managed-by=rubin-monitoring app=gafaelfawr check=restarts",
    ],
)
def test_a_hand_made_task_with_the_toolkits_description_is_left_alone(
    org: OrgUnderTest, repo: PhalanxRepo, description: str
) -> None:
    tokens = setup_fleet(org, repo)
    before_first_run = hand_made_task(org, description)  # made before the toolkit's tasks
    first = taskmaker(org, repo, tokens["taskmaker"])
    assert first.exit_code == 0, first.stderr
    after_first_run = hand_made_task(org, description)  # and one made after
    for flags, env in (((), {}), (("--prune",), {}), ((), {"FORCE": "1"})):
        run = taskmaker(org, repo, tokens["taskmaker"], *flags, **env)
        assert run.exit_code == 0, run.stderr
        touched = {c["name"] for c in run.changes if c["action"] != "recreate"}
        assert touched == set(), touched
    stored = tasks(org)
    for mine in (before_first_run, after_first_run):
        task = stored[mine["id"]]
        assert task["status"] == "inactive"
        assert task["flux"] == HAND_MADE_FLUX
        assert task["description"] == description
        assert task["name"] == "gafaelfawr restarts"
    ours = [
        t for t in stored.values() if t["id"] not in (before_first_run["id"], after_first_run["id"])
    ]
    assert sorted(t["name"] for t in ours) == sorted(
        [
            *(f"{app} {check}" for app in ("gafaelfawr", "mobu") for check in CHECKS),
            *FLEET,
            "idfdev silent",
        ]
    )


def test_prune_never_deletes_a_bucket_whose_description_merely_mentions_the_marker(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    for name, description in (
        ("gafaelfawr-archive", "NOT managed-by=rubin-monitoring"),
        ("old-mobu", "keep (managed-by=rubin-monitoring) forever"),
    ):
        bucket_id = create_bucket(org, name, retention_seconds=0)
        with api(org) as client:
            client.patch(
                f"/api/v2/buckets/{bucket_id}", json={"description": description}
            ).raise_for_status()
        write_lines(org, name, [f"probe value=1 {10**18}"])
    run = run_cli(["bucketmaker", "--output", "json", "--prune"], org.env(PHALANX_REPO=repo.url))
    assert run.exit_code == 0, run.stderr
    assert not {c["name"] for c in run.changes} & {"gafaelfawr-archive", "old-mobu"}
    for name in ("gafaelfawr-archive", "old-mobu"):
        rows = query_rows(org, f'from(bucket: "{name}") |> range(start: 0)')
        assert len(rows) == 1, f"bucket {name} or its data is gone"


def test_prune_never_deletes_the_real_token_for_a_look_alike(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    setup_fleet(org, repo)
    # The org is new: every token in it now is one tokenmaker made (values are hashed on 2.10).
    real = set(authorizations(org))
    assert len(real) == 2 + len(ROLE_NAMES)  # telegraf-idfdev, receiver-idfdev, the fixed roles
    telegraf_id = next(
        a["id"]
        for a in authorizations(org).values()
        if a["description"].endswith("(managed-by=rubin-monitoring token=telegraf-idfdev)")
    )
    look_alikes = []
    with api(org) as client:
        me = client.get("/api/v2/me").json()["id"]
        person = client.post("/api/v2/users", json={"name": f"person-{org.name}"}).json()["id"]
        for description, user in (
            ("NOT managed-by=rubin-monitoring token=telegraf-idfdev", me),
            (
                "rubin-monitoring telegraf-idfdev token "
                "(managed-by=rubin-monitoring token=telegraf-idfdev)",
                person,
            ),
            # Like the single Telegraf token of the old scheme (an orphan if it were ours).
            (
                "rubin-monitoring telegraf token (managed-by=rubin-monitoring token=telegraf)",
                person,
            ),
        ):
            body = {
                "orgID": org.id,
                "userID": user,
                "description": description,
                "permissions": [
                    {"action": "read", "resource": {"type": "buckets", "orgID": org.id}}
                ],
            }
            response = client.post("/api/v2/authorizations", json=body)
            response.raise_for_status()
            look_alikes.append(response.json()["id"])
    env = org.env(PHALANX_REPO=repo.url, PRUNE="1")
    run = run_cli(["tokenmaker", "--output", "json", "--bot-user", f"bot-{org.name}"], env)
    assert run.exit_code == 0, run.stderr
    assert run.changes == []
    assert run.json()["existing"] == ["telegraf-idfdev", "receiver-idfdev", *ROLE_NAMES]
    assert run.json()["orphans"] == []
    after = authorizations(org)
    assert real | set(look_alikes) <= set(after)
    assert telegraf_id in after

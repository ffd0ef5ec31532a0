"""tokenmaker against a real InfluxDB v2: every token does its job and nothing else.

Status codes InfluxDB 2.7.12 uses for a permission it does not grant: 403 on /api/v2/write;
401 ("... is unauthorized") on most management APIs; 500 ("failed to create task:
unauthorized") on task creation; 404 ("could not find bucket") for a query of a bucket the token
cannot see; and list calls silently leave out what the token cannot read.
"""

from __future__ import annotations

import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.cli import Run, run_cli

from rubin_monitoring.models.changes import ReconcileOptions
from rubin_monitoring.models.dashboards import STACK_NAME
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.models.tokens import ROLE_NAMES, Permission, token_description
from rubin_monitoring.services.buckets import BucketMaker
from rubin_monitoring.services.reconcile import reconcile
from rubin_monitoring.storage.authorizations import MEMBER, OWNER, AuthorizationStore
from rubin_monitoring.storage.http import InfluxHTTP
from rubin_monitoring.storage.influxdb import InfluxDBStore
from rubin_monitoring.testing.influxd import InfluxServer
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

# One Telegraf token per environment, writing exactly its applications' buckets.
ENVIRONMENTS: dict[str, tuple[str, ...]] = {"idfdev": ("alpha", "beta"), "summit": ("alpha",)}
IDF, SUMMIT = "telegraf-idfdev", "telegraf-summit"
# Each environment's remote-write credential: a token that may read the org, no more.
CREDENTIALS = ["receiver-idfdev", "receiver-summit"]
ROLES = [IDF, SUMMIT, *CREDENTIALS, *ROLE_NAMES]
DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"
COPY_TASK = """option task = {{name: "{name}", every: 1h}}

from(bucket: "alpha")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "probe")
  |> set(key: "_measurement", value: "{name}")
  |> to(bucket: "multiapp_")
"""


@dataclass(frozen=True)
class Org:
    url: str
    token: str
    name: str
    id: str
    repo: PhalanxRepo

    @property
    def bot(self) -> str:
        return f"bot-{self.name}"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "INFLUXDB_URL": self.url,
            "INFLUXDB_TOKEN": self.token,
            "INFLUXDB_ORG": self.name,
            "PHALANX_REPO": self.repo.url,
            **extra,
        }


def new_org(server: InfluxServer, directory: Path) -> Org:
    """A new org, and its configuration repository (tokenmaker reads the environments)."""
    name = f"tok-{uuid.uuid4().hex[:10]}"
    with server.client() as client:
        response = client.post("/api/v2/orgs", json={"name": name})
        response.raise_for_status()
        repo = PhalanxRepo(directory / name)
        return Org(server.url, server.token, name, response.json()["id"], repo)


def client(org: Org, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {token or org.token}"}, timeout=30
    )


def make_buckets(org: Org, environments: dict[str, tuple[str, ...]] = ENVIRONMENTS) -> None:
    """Commit ``environments`` to the org's repository and make their buckets."""
    apps = sorted({app for enabled in environments.values() for app in enabled})
    org.repo.set_apps(
        {app: False for app in apps},
        {
            env: {"applications": dict.fromkeys(enabled, True)}
            for env, enabled in environments.items()
        },
    )
    inventory = Inventory(
        tuple(
            Environment(env, None, f"values-{env}.yaml", enabled)
            for env, enabled in environments.items()
        )
    )
    with InfluxHTTP(org.url, org.token) as http:
        maker = BucketMaker(InfluxDBStore(http, org.name), inventory, retention_seconds=0)
        report = reconcile(maker, ReconcileOptions(concurrency=4))
    assert report.exit_code == 0


def tokenmaker(org: Org, *args: str, known: tuple[str, ...] = ()) -> Run:
    """Run tokenmaker (JSON output, debug logs) and check no token reaches the logs."""
    run = run_cli(
        ["tokenmaker", "--output", "json", "--debug", "--bot-user", org.bot, *args], org.env()
    )
    values = list(known)
    if run.stdout.startswith("{"):
        values += list(run.json()["tokens"].values())
    for value in values:
        assert value not in run.stderr, "a token reached the logs"
    return run


def tokens_of(run: Run) -> dict[str, str]:
    assert run.exit_code == 0, run.stderr
    tokens: dict[str, str] = run.json()["tokens"]
    return tokens


def write(org: Org, token: str, bucket: str, line: str, org_name: str | None = None) -> int:
    with client(org, token) as api:
        response = api.post(
            "/api/v2/write",
            params={"org": org_name or org.name, "bucket": bucket},
            content=line,
        )
    return response.status_code


def query(org: Org, token: str, flux: str) -> httpx.Response:
    with client(org, token) as api:
        return api.post("/api/v2/query", params={"org": org.name}, json={"query": flux})


def authorizations(org: Org) -> list[dict[str, Any]]:
    with client(org) as api:
        body = api.get("/api/v2/authorizations", params={"orgID": org.id}).json()
    return list(body["authorizations"])


def bot_id(org: Org) -> str:
    with client(org) as api:
        return str(api.get("/api/v2/users", params={"name": org.bot}).json()["users"][0]["id"])


def run_task(org: Org, token: str, flux: str) -> tuple[dict[str, Any], str, list[str]]:
    """Create a task with ``token``, force one run, wait for it; (task, status, log lines)."""
    with client(org, token) as api:
        created = api.post("/api/v2/tasks", json={"orgID": org.id, "flux": flux})
        assert created.status_code == 201, created.text
        task = created.json()
        run = api.post(f"/api/v2/tasks/{task['id']}/runs", json={})
        assert run.status_code == 201, run.text
        path = f"/api/v2/tasks/{task['id']}/runs/{run.json()['id']}"
        deadline = time.monotonic() + 20
        status = ""
        while time.monotonic() < deadline:
            status = api.get(path).json().get("status", "")
            if status in ("success", "failed", "canceled"):
                break
            time.sleep(0.1)
        # The logs endpoint can answer 404 for a moment after the run finished.
        logs_answer = api.get(f"{path}/logs")
        while logs_answer.status_code == 404 and time.monotonic() < deadline + 5:
            time.sleep(0.1)
            logs_answer = api.get(f"{path}/logs")
        logs = [event["message"] for event in logs_answer.json()["events"]]
    return task, status, logs


# One org set up once for the "each token does its job" tests.


@pytest.fixture(scope="module")
def fleet(
    influxdb: InfluxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Org, dict[str, str]]]:
    org = new_org(influxdb, tmp_path_factory.mktemp("tokenmaker"))
    make_buckets(org)
    yield org, tokens_of(tokenmaker(org))


def test_tokens_are_org_scoped_and_least_privilege(fleet: tuple[Org, dict[str, str]]) -> None:
    org, tokens = fleet
    assert set(tokens) == set(ROLES)
    ours = {a["description"].rsplit("token=", 1)[1].rstrip(")"): a for a in authorizations(org)}
    assert set(ours) == set(ROLES)
    for auth in ours.values():
        assert "managed-by=rubin-monitoring" in auth["description"]
        for permission in auth["permissions"]:
            if permission["resource"]["type"] == "users":
                # taskmaker's token may read its own (bot) user, for GET /api/v2/me: users
                # are not org-scoped; nothing else is outside the org.
                assert auth is ours["taskmaker"] and permission["action"] == "read"
                assert permission["resource"]["id"] == bot_id(org)
                continue
            assert permission["resource"]["orgID"] == org.id
    # Each cluster's Telegraf: its applications' buckets, and probes_ (its control plane).
    outside = {IDF: {"alpha", "beta", "probes_"}, SUMMIT: {"alpha", "probes_"}}
    outside.update({"probe-telegraf": {"probes_"}, "host-telegraf": {"influxdb_"}})
    outside["receiver"] = {"alpha", "beta", "influxdb_"}
    for role, apps in outside.items():
        permissions = ours[role]["permissions"]
        assert {(p["action"], p["resource"]["name"]) for p in permissions} == {
            ("write", app) for app in apps
        }
        assert ours[role]["userID"] != bot_id(org)
    assert ours["taskmaker"]["userID"] == bot_id(org)
    with client(org) as api:
        owners = api.get(f"/api/v2/orgs/{org.id}/owners").json()["users"]
        assert org.bot in {user["name"] for user in owners}
        orgs = api.get("/api/v2/orgs", params={"userID": bot_id(org)}).json()["orgs"]
        assert [o["name"] for o in orgs] == [org.name]


def test_telegraf_writes_its_environments_app_buckets_only(
    fleet: tuple[Org, dict[str, str]], influxdb: InfluxServer, tmp_path: Path
) -> None:
    org, tokens = fleet
    token = tokens[IDF]
    assert write(org, token, "alpha", "probe,host=a value=1") == 204
    assert write(org, token, "beta", "probe,host=b value=1") == 204
    assert write(org, token, "multiapp_", "probe value=1") == 403
    assert write(org, token, "alerted_", "probe value=1") == 403
    assert write(org, token, "influxdb_", "probe value=1") == 403
    # The control plane's certificate, read by the cluster's own Telegraf.
    assert write(org, token, "probes_", "x509_cert,cluster=idfdev expiry=86400i") == 204
    # summit does not enable beta: its cluster's token cannot write there.
    assert write(org, tokens[SUMMIT], "alpha", "probe,host=s value=1") == 204
    assert write(org, tokens[SUMMIT], "beta", "probe,host=s value=1") == 403
    other = new_org(influxdb, tmp_path)
    make_buckets(other)
    assert write(org, token, "alpha", "probe value=1", org_name=other.name) == 403
    assert query(org, token, 'from(bucket: "alpha") |> range(start: -1h)').status_code == 404


def test_receiver_writes_every_environments_buckets_and_its_credentials_nothing(
    fleet: tuple[Org, dict[str, str]],
) -> None:
    org, tokens = fleet
    receiver = tokens["receiver"]
    for bucket in ("alpha", "beta", "influxdb_"):
        assert write(org, receiver, bucket, "probe,host=r value=1") == 204
    assert write(org, receiver, "multiapp_", "probe value=1") == 403
    for role in CREDENTIALS:
        assert write(org, tokens[role], "alpha", "probe value=1") == 403
        assert query(
            org, tokens[role], 'from(bucket: "alpha") |> range(start: -1h)'
        ).status_code in (
            403,
            404,
        )
        permissions = [
            auth["permissions"]
            for auth in authorizations(org)
            if auth["description"].endswith(f"token={role})")
        ]
        ((permission,),) = permissions
        assert permission["action"] == "read"
        assert (permission["resource"]["type"], permission["resource"]["id"]) == ("orgs", org.id)


def test_taskmaker_task_runs_as_the_bot_and_writes_multiapp(
    fleet: tuple[Org, dict[str, str]],
) -> None:
    org, tokens = fleet
    token = tokens["taskmaker"]
    # A forced run's now() is its scheduledFor, in whole seconds: write a minute earlier.
    minute_ago = time.time_ns() - 60 * 10**9
    assert write(org, tokens[IDF], "alpha", f"probe,host=t value=42 {minute_ago}") == 204
    task, status, logs = run_task(org, token, COPY_TASK.format(name="copied"))
    assert status == "success", logs
    assert task["ownerID"] == bot_id(org)
    rows = query(org, org.token, 'from(bucket: "multiapp_") |> range(start: -1h)').text
    assert "copied" in rows and "42" in rows

    with client(org, token) as api:
        listed = api.get("/api/v2/tasks", params={"orgID": org.id}).json()["tasks"]
        assert task["id"] in {t["id"] for t in listed}
        patched = api.patch(
            f"/api/v2/tasks/{task['id']}",
            json={"flux": COPY_TASK.format(name="copied").replace("1h}", "2h}")},
        )
        assert patched.status_code == 200, patched.text
        assert api.get(f"/api/v2/tasks/{task['id']}/runs").status_code == 200
        assert api.get("/api/v2/buckets", params={"org": org.name}).status_code == 200
        # Outside its scope:
        alpha = next(
            b["id"]
            for b in api.get("/api/v2/buckets", params={"org": org.name}).json()["buckets"]
            if b["name"] == "alpha"
        )
        assert api.delete(f"/api/v2/buckets/{alpha}").status_code == 401
        denied = api.post(
            "/api/v2/buckets", json={"orgID": org.id, "name": "sneaky", "retentionRules": []}
        )
        assert denied.status_code == 401
        grant = api.post(
            "/api/v2/authorizations",
            json={
                "orgID": org.id,
                "permissions": [
                    {"action": "write", "resource": {"type": "buckets", "orgID": org.id}}
                ],
            },
        )
        assert grant.status_code == 401
        assert api.delete(f"/api/v2/tasks/{task['id']}").status_code == 204
    assert write(org, token, "multiapp_", "direct value=1") == 403


def test_notifier_reads_findings_and_records_alerts_only(
    fleet: tuple[Org, dict[str, str]],
) -> None:
    org, tokens = fleet
    token = tokens["notifier"]
    with client(org) as api:
        api.post(
            "/api/v2/write",
            params={"org": org.name, "bucket": "multiapp_"},
            content='alert,check=restarts message="x"',
        ).raise_for_status()
    findings = query(org, token, 'from(bucket: "multiapp_") |> range(start: -1h)')
    assert findings.status_code == 200 and "restarts" in findings.text
    assert write(org, token, "alerted_", 'alert,dedup_key=k message="sent"') == 204
    recorded = query(org, token, 'from(bucket: "alerted_") |> range(start: -1h)')
    assert recorded.status_code == 200 and "sent" in recorded.text
    # Silences it reads; the heartbeat lists the tasks.
    assert query(org, token, 'from(bucket: "silences_") |> range(start: -1h)').status_code == 200
    with client(org, token) as api:
        assert api.get("/api/v2/tasks", params={"orgID": org.id}).status_code == 200
    # Outside its scope:
    assert write(org, token, "multiapp_", "alert value=1") == 403
    assert write(org, token, "silences_", 'silence,id=x comment="y"') == 403
    assert write(org, token, "alpha", "probe value=1") == 403
    assert query(org, token, 'from(bucket: "alpha") |> range(start: -1h)').status_code == 404
    with client(org, token) as api:
        denied = api.post(
            "/api/v2/buckets", json={"orgID": org.id, "name": "sneaky", "retentionRules": []}
        )
        assert denied.status_code == 401


def test_silencer_reads_and_writes_silences_and_nothing_else(
    fleet: tuple[Org, dict[str, str]],
) -> None:
    org, tokens = fleet
    token = tokens["silencer"]
    assert write(org, token, "silences_", 'silence,id=s1 comment="maintenance"') == 204
    stored = query(org, token, 'from(bucket: "silences_") |> range(start: -1h)')
    assert stored.status_code == 200 and "maintenance" in stored.text
    for bucket in ("multiapp_", "alerted_", "alpha"):
        assert write(org, token, bucket, "probe value=1") == 403, bucket
        query_other = query(org, token, f'from(bucket: "{bucket}") |> range(start: -1h)')
        assert query_other.status_code == 404, bucket
    with client(org, token) as api:
        label = api.post("/api/v2/labels", json={"orgID": org.id, "name": "no-lease"})
        assert label.status_code == 401  # no lease: silences are points with unique IDs
        denied = api.post(
            "/api/v2/buckets", json={"orgID": org.id, "name": "sneaky", "retentionRules": []}
        )
        assert denied.status_code == 401


def test_bucketmaker_token_runs_bucketmaker_and_bucketmapper(
    fleet: tuple[Org, dict[str, str]], phalanx: PhalanxRepo
) -> None:
    org, tokens = fleet
    token = tokens["bucketmaker"]
    phalanx.set_apps({"alpha": True, "beta": True, "gamma": True}, {"test": {}})
    env = {**org.env(PHALANX_REPO=phalanx.url, BUCKET_RETENTION="inf"), "INFLUXDB_TOKEN": token}
    made = run_cli(["bucketmaker", "--output", "json"], env)
    assert made.exit_code == 0, made.stderr
    assert [(c["action"], c["name"]) for c in made.changes] == [("create", "gamma")]
    mapped = run_cli(["bucketmapper", "--output", "json"], env)
    assert mapped.exit_code == 0, mapped.stderr
    assert {c["name"].split("/")[0] for c in mapped.changes if c["action"] == "create"} == {
        "alpha",
        "beta",
        "gamma",
        "multiapp_",
        "alerted_",
        "silences_",
        "influxdb_",
        "probes_",
    }
    # Outside its scope:
    with client(org, token) as api:
        denied = api.post(
            "/api/v2/tasks",
            json={"orgID": org.id, "flux": COPY_TASK.format(name="nope")},
        )
        assert denied.status_code == 500 and "unauthorized" in denied.text
        assert api.get("/api/v2/tasks", params={"orgID": org.id}).json()["tasks"] == []
        assert api.get("/api/v2/authorizations").json()["authorizations"] == []
    assert query(org, token, 'from(bucket: "alpha") |> range(start: -1h)').status_code == 200


def test_outside_telegrafs_write_their_one_bucket_only(
    fleet: tuple[Org, dict[str, str]],
) -> None:
    org, tokens = fleet
    probe, host = tokens["probe-telegraf"], tokens["host-telegraf"]
    assert write(org, probe, "probes_", "http_response,cluster=a result_code=0i") == 204
    assert write(org, host, "influxdb_", "disk,path=/ used_percent=50") == 204
    for token, others in ((probe, ["influxdb_", "alpha"]), (host, ["probes_", "alpha"])):
        for bucket in [*others, "multiapp_", "alerted_"]:
            assert write(org, token, bucket, "probe value=1") == 403, bucket
        assert query(org, token, 'from(bucket: "probes_") |> range(start: -1h)').status_code == 404


def stacks(org: Org) -> list[dict[str, Any]]:
    with client(org) as api:
        return list(api.get("/api/v2/stacks", params={"orgID": org.id}).json()["stacks"])


def test_dashboardmaker_token_applies_through_the_stack_tokenmaker_made(
    fleet: tuple[Org, dict[str, str]], tmp_path: Path
) -> None:
    """A stack cannot be granted (there is no such permission type; creating one takes write
    on the org), so tokenmaker makes dashboardmaker's, and the token does the rest."""
    org, tokens = fleet
    token = tokens["dashboardmaker"]
    assert [s["name"] for s in stacks(org)] == [STACK_NAME]
    directory = tmp_path / "dashboards"
    shutil.copytree(DASHBOARD_DIR, directory)
    env = {**org.env(DASHBOARDS_DIR=str(directory)), "INFLUXDB_TOKEN": token}

    first = run_cli(["dashboardmaker", "--output", "json"], env)
    assert first.exit_code == 0, first.stderr
    assert first.changes and {c["action"] for c in first.changes} == {"create"}
    assert run_cli(["dashboardmaker", "--output", "json"], env).changes == []
    (directory / "influxdb.yml").unlink()
    pruned = run_cli(["dashboardmaker", "--output", "json", "--prune"], env)
    assert pruned.exit_code == 0, pruned.stderr
    assert {c["action"] for c in pruned.changes} == {"delete"}
    # Outside its scope:
    assert write(org, token, "alpha", "probe value=1") == 403
    with client(org, token) as api:
        denied = api.post(
            "/api/v2/buckets", json={"orgID": org.id, "name": "sneaky", "retentionRules": []}
        )
        assert denied.status_code == 401
        assert api.post("/api/v2/stacks", json={"orgID": org.id, "name": "x"}).status_code == 401

    # Without the stack, the token cannot go on, and says who makes it; tokenmaker does.
    [stack] = stacks(org)
    with client(org) as api:
        gone = api.delete(f"/api/v2/stacks/{stack['id']}", params={"orgID": org.id})
        assert gone.status_code == 204, gone.text
    stuck = run_cli(["dashboardmaker"], env)
    assert stuck.exit_code == 3
    assert "the token lacks the permission" in stuck.stderr
    assert "tokenmaker creates it" in stuck.stderr
    remade = tokenmaker(org, "--role", "dashboardmaker", known=tuple(tokens.values()))
    assert remade.exit_code == 0, remade.stderr
    assert [(c["action"], c["kind"]) for c in remade.changes] == [("create", "stack")]
    assert remade.json()["tokens"] == {}
    assert run_cli(["dashboardmaker"], env).exit_code == 0
    assert len(stacks(org)) == 1


# Idempotence, rotation, output


def test_rerun_creates_nothing_new_app_is_stale_and_rotate_replaces(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    org = new_org(influxdb, tmp_path)
    make_buckets(org)
    first = tokens_of(tokenmaker(org))
    before = {a["id"] for a in authorizations(org)}

    again = tokenmaker(org, known=tuple(first.values()))
    assert again.exit_code == 0, again.stderr
    assert again.changes == [] and again.json()["tokens"] == {}
    assert again.json()["existing"] == ROLES
    for value in first.values():
        assert value not in again.stdout
    text = run_cli(["tokenmaker", "--bot-user", org.bot], org.env())
    assert text.exit_code == 0 and text.stdout.count("exists   token") == len(ROLES)
    assert {a["id"] for a in authorizations(org)} == before

    # gamma enabled in idfdev only: only idfdev's token is stale.
    make_buckets(org, {"idfdev": ("alpha", "beta", "gamma"), "summit": ("alpha",)})
    stale = tokenmaker(org, known=tuple(first.values()))
    assert stale.exit_code == 0
    # (and the receiver's, which writes every environment's buckets)
    assert stale.json()["stale"] == [
        {"role": IDF, "reason": "lacks write:buckets/gamma"},
        {"role": "receiver", "reason": "lacks write:buckets/gamma"},
    ]
    assert write(org, first[IDF], "gamma", "probe value=1") == 403

    # One cluster's token is rotated alone: the other clusters' keep working.
    alone_run = tokenmaker(org, "--rotate", "--role", IDF, known=tuple(first.values()))
    alone = tokens_of(alone_run)
    assert [(c["action"], c["name"]) for c in alone_run.changes] == [("recreate", IDF)]
    assert list(alone) == [IDF]
    assert write(org, alone[IDF], "gamma", "probe value=1") == 204
    assert write(org, first[IDF], "alpha", "probe value=1") == 401
    assert write(org, first[SUMMIT], "alpha", "probe value=1") == 204
    assert tokenmaker(org, known=(*first.values(), *alone.values())).json()["stale"] == [
        {"role": "receiver", "reason": "lacks write:buckets/gamma"}
    ]

    rotated_run = tokenmaker(org, "--rotate", known=(*first.values(), *alone.values()))
    rotated = tokens_of(rotated_run)
    assert [(c["action"], c["name"]) for c in rotated_run.changes] == [
        ("recreate", role) for role in ROLES
    ]
    assert set(rotated) == set(ROLES)
    assert not set(rotated.values()) & set(first.values())
    assert not set(rotated.values()) & set(alone.values())
    assert write(org, rotated[IDF], "gamma", "probe value=1") == 204
    assert write(org, rotated[SUMMIT], "gamma", "probe value=1") == 403
    for role, old in [*first.items(), *alone.items()]:
        with client(org, old) as api:
            assert api.get("/api/v2/buckets", params={"org": org.name}).status_code == 401, role
    assert len(authorizations(org)) == len(ROLES)
    assert tokenmaker(org).json()["stale"] == []


def test_secret_manifest_gets_the_values_and_stdout_none(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    org = new_org(influxdb, tmp_path)
    make_buckets(org)
    path = tmp_path / "tokens.yaml"
    run = run_cli(
        [
            "tokenmaker",
            "--bot-user",
            org.bot,
            "--secret-manifest",
            str(path),
            "--secret-name",
            "influxdb-tokens",
            "--namespace",
            "monitoring",
        ],
        org.env(),
    )
    assert run.exit_code == 0, run.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = yaml.safe_load(path.read_text())
    assert secret["kind"] == "Secret" and secret["apiVersion"] == "v1"
    assert secret["metadata"]["name"] == "influxdb-tokens"
    assert secret["metadata"]["namespace"] == "monitoring"
    # One key per cluster: telegraf-idfdev-token, telegraf-summit-token, the clusters'
    # remote-write passwords, then the jobs'.
    assert list(secret["stringData"]) == [
        f"{role}-password" if role in CREDENTIALS else f"{role}-token" for role in ROLES
    ]
    for value in secret["stringData"].values():
        assert value not in run.stdout and value not in run.stderr
    assert f"{path} written" in run.stdout
    data = secret["stringData"]
    assert write(org, data["telegraf-idfdev-token"], "beta", "probe value=1") == 204
    assert write(org, data["telegraf-summit-token"], "beta", "probe value=1") == 403

    content = path.read_text()
    again = run_cli(
        ["tokenmaker", "--bot-user", org.bot, "--secret-manifest", str(path)], org.env()
    )
    assert again.exit_code == 0 and "not written" in again.stdout
    assert path.read_text() == content


def test_dry_run_changes_nothing(influxdb: InfluxServer, tmp_path: Path) -> None:
    org = new_org(influxdb, tmp_path)
    make_buckets(org)
    run = tokenmaker(org, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert [(c["action"], c["kind"]) for c in run.changes] == [
        ("create", "user"),
        ("create", "org-owner"),
        *[("create", "token")] * len(ROLES),
        ("create", "stack"),
    ]
    assert run.json()["tokens"] == {}
    assert authorizations(org) == []
    assert stacks(org) == []
    with client(org) as api:
        assert api.get("/api/v2/users", params={"name": org.bot}).status_code == 404


def test_missing_internal_buckets_and_bad_token_exit_codes(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    org = new_org(influxdb, tmp_path)
    org.repo.set_apps({"alpha": True}, {"idfdev": {}})
    run = run_cli(["tokenmaker", "--bot-user", org.bot], org.env())
    assert run.exit_code == 2
    # One line of error; the others are the INFO lines of reading the repository.
    lines = [line for line in run.stderr.splitlines() if " INFO rubin_monitoring." not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "run bucketmaker first" in lines[0]
    assert authorizations(org) == []
    refused = run_cli(
        ["tokenmaker", "--bot-user", org.bot], {**org.env(), "INFLUXDB_TOKEN": "not-a-token"}
    )
    assert refused.exit_code == 3, refused.stderr


def test_bucket_ownership_does_not_let_a_task_write_org_ownership_does(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    """Why the bot user is an org owner: a task's run permissions come from its owner's
    user-resource mappings, and only the org-owner mapping grants bucket write."""
    org = new_org(influxdb, tmp_path)
    make_buckets(org)
    with InfluxHTTP(org.url, org.token) as http:
        auths = AuthorizationStore(http)
        buckets = {b.name: b.id for b in InfluxDBStore(http, org.name).list_buckets()}
        user = auths.create_user(org.bot)
        auths.add_mapping("orgs", org.id, MEMBER, user.id)
        auths.add_mapping("buckets", buckets["multiapp_"], OWNER, user.id)
        assert user.id in auths.org_member_ids(org.id)
        assert user.id in auths.mapped_user_ids("buckets", buckets["multiapp_"], OWNER)
        assert user.id not in auths.org_owner_ids(org.id)

        # Org member and owner of multiapp_: the task can read alpha but not write multiapp_.
        run = tokenmaker(org, "--role", "taskmaker", "--role", "telegraf", "--dry-run")
        assert (run.changes[0]["action"], run.changes[0]["kind"]) == ("update", "org-owner")
        tokens = tokens_of(tokenmaker(org, "--role", "taskmaker", "--role", "telegraf"))
        assert user.id in auths.org_owner_ids(org.id)
        assert user.id not in auths.org_member_ids(org.id)
        auths.remove_mapping("orgs", org.id, OWNER, user.id)
        auths.add_mapping("orgs", org.id, MEMBER, user.id)
        assert set(tokens) == {"taskmaker", IDF, SUMMIT}  # telegraf: every environment's
        assert write(org, tokens[IDF], "alpha", "probe value=7") == 204
        _, status, logs = run_task(org, tokens["taskmaker"], COPY_TASK.format(name="member"))
        assert status == "failed"
        assert any("user not authorized to write" in line for line in logs), logs

        # A rerun of tokenmaker makes it an owner again, and the same task can write.
        # (and makes the roles not selected before, and dashboardmaker's stack)
        rerun = tokenmaker(org).changes
        assert [c["kind"] for c in rerun] == ["org-owner", *["token"] * 9, "stack"]
        _, status, logs = run_task(org, tokens["taskmaker"], COPY_TASK.format(name="owner"))
        assert status == "success", logs


def test_the_old_single_telegraf_token_is_reported_then_pruned(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    """A token of the old scheme (one Telegraf token for every cluster) is an orphan: kept and
    reported until the per-environment tokens are deployed, deleted with --prune."""
    org = new_org(influxdb, tmp_path)
    make_buckets(org)
    with InfluxHTTP(org.url, org.token) as http:
        store = InfluxDBStore(http, org.name)
        alpha = next(b for b in store.list_buckets() if b.name == "alpha")
        legacy = AuthorizationStore(http).create_authorization(
            org.id,
            token_description("telegraf"),
            [Permission("write", "buckets", org.id, alpha.id)],
            store.current_user_id(),
        )
    first = tokenmaker(org, known=(legacy.token,))
    tokens = tokens_of(first)
    assert set(tokens) == set(ROLES)
    assert first.json()["orphans"] == [
        {
            "kind": "token",
            "name": f"telegraf ({legacy.id})",
            "reason": "the single Telegraf token of the old scheme: each cluster now has its "
            "own telegraf-<environment> token; deploy those, then --prune deletes this one",
        }
    ]
    assert write(org, legacy.token, "alpha", "probe value=1") == 204

    pruned = tokenmaker(org, "--prune", known=(legacy.token, *tokens.values()))
    assert pruned.exit_code == 0, pruned.stderr
    assert [(c["action"], c["name"]) for c in pruned.changes] == [
        ("delete", f"telegraf ({legacy.id})")
    ]
    assert write(org, legacy.token, "alpha", "probe value=1") == 401
    assert write(org, tokens[SUMMIT], "alpha", "probe value=1") == 204
    assert len(authorizations(org)) == len(ROLES)

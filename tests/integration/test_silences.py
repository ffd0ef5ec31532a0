"""Silences, inhibition, per-route timing and grouping, and the heartbeat, end to end: a real
influxd (buckets made by bucketmaker, tokens by tokenmaker where the test is about rights), the
notifier against the Slack stand-in, which also records the heartbeat's GETs.

No stdout, stderr or log line of any run may contain a webhook's or the heartbeat URL's secret.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.flux import (
    InfluxOrg,
    create_bucket,
    line_protocol,
    query_alerts,
    query_rows,
    write_lines,
)
from rubin_monitoring.testing.influxd import InfluxServer, influx_server
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.slack_server import (
    SECRET_PATH,
    SlackServer,
    assert_no_secret,
    slack_server,
)

pytestmark = pytest.mark.integration

HEARTBEAT_PATH = "/ping/SECRETxyz-heartbeat"
INTERNAL = ("multiapp_", "alerted_", "silences_")


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with slack_server() as server:
        yield server


@pytest.fixture
def buckets(org: OrgUnderTest) -> OrgUnderTest:
    for bucket in INTERNAL:
        create_bucket(org, bucket)
    return org


def cli(args: Sequence[str], env: Mapping[str, str]) -> Run:
    run = run_cli(list(args), dict(env))
    assert_no_secret(run.stdout, run.stderr)
    return run


def finding(
    check: str,
    cluster: str,
    application: str,
    *,
    pod: str = "",
    severity: str = "warning",
    minutes_ago: float = 0.5,
) -> str:
    if pod:
        key = f"{check}/{cluster}/{application}/{application}/{pod}/main"
        message = f"container main of pod {pod} in {cluster}: {check}"
    else:
        key = f"{check}/{cluster}/{application}/{cluster}"
        message = f"{application} of {cluster}: {check}"
    return line_protocol(
        "alert",
        {
            "check": check,
            "application": application,
            "cluster": cluster,
            "severity": severity,
            "dedup_key": key,
        },
        {"message": message, "value": 1.0},
        datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )


def sent_keys(slack: SlackServer, path: str = SECRET_PATH) -> list[str]:
    """The dedup keys (as ``pod in cluster``/``application of cluster`` texts) Slack got."""
    return [line for post in slack.delivered(path) for line in post.text.splitlines()[1:]]


def recorded(org: InfluxOrg) -> set[str]:
    return {alert.dedup_key for alert in query_alerts(org, bucket="alerted_")}


def tokens_for(org: OrgUnderTest, phalanx: PhalanxRepo, tmp_path: Path) -> dict[str, str]:
    """bucketmaker, then tokenmaker's Secret manifest: the role -> token values."""
    phalanx.set_apps({"nublado": True, "mobu": True}, {"summit": {}})
    env = org.env(PHALANX_REPO=phalanx.url)
    assert cli(["bucketmaker"], env).exit_code == 0
    manifest = tmp_path / "tokens.yaml"
    bot = f"bot-{uuid.uuid4().hex[:8]}"
    made = run_cli(["tokenmaker", "--bot-user", bot, "--secret-manifest", str(manifest)], env)
    assert made.exit_code == 0, made.stderr
    data = yaml.safe_load(manifest.read_text())["stringData"]
    return {key.removesuffix("-token"): value for key, value in data.items()}


# Silences


def test_a_silence_mutes_a_firing_alert_and_once_expired_it_is_sent(
    org: OrgUnderTest, phalanx: PhalanxRepo, slack: SlackServer, tmp_path: Path
) -> None:
    """With tokenmaker's tokens: the silencer token adds, lists and expires; the notifier token
    reads the silence and mutes what it matches, reports it, records nothing for it; once the
    silence is expired, the next run sends the alert."""
    tokens = tokens_for(org, phalanx, tmp_path)
    silencer = {**org.env(), "INFLUXDB_TOKEN": tokens["silencer"]}
    notifier = {**org.env(SLACK_WEBHOOK_URL=slack.url()), "INFLUXDB_TOKEN": tokens["notifier"]}
    write_lines(
        org,
        "multiapp_",
        [
            finding("not_running", "summit", "nublado", pod="prepull-x1"),
            finding("not_running", "summit", "nublado", pod="hub-1"),
            finding("not_running", "base", "nublado", pod="prepull-x2"),
        ],
    )
    added = cli(
        [
            *("silence", "add", "cluster=summit", "pod=prepull-*", "--duration", "2h"),
            *("--author", "alice", "--comment", "image pre-pull during maintenance"),
        ],
        silencer,
    )
    assert added.exit_code == 0, added.stderr
    silence_id = added.stdout.strip()
    assert str(uuid.UUID(silence_id)) == silence_id and added.stdout == silence_id + "\n"

    plan = cli(["notifier", "--dry-run"], notifier)
    assert plan.exit_code == 0, plan.stderr
    assert f"by silence {silence_id}" in plan.stdout
    assert "1 silenced, 0 inhibited, 2 planned" in plan.stdout

    first = cli(["notifier", "--output", "json"], notifier)
    assert first.exit_code == 0, first.stderr
    report = first.json()
    assert report["summary"]["silenced"] == 1 and report["summary"]["sent"] == 2
    (muted,) = report["silenced"]
    assert muted["silence_id"] == silence_id and "prepull-x1" in muted["dedup_key"]
    assert not any("prepull-x1" in line for line in sent_keys(slack))
    assert len(sent_keys(slack)) == 2
    assert not any("prepull-x1" in key for key in recorded(org))

    again = cli(["notifier", "--output", "json"], notifier).json()
    assert again["summary"]["silenced"] == 1 and again["messages"] == []

    listed = cli(["silence", "query", "--output", "json"], silencer)
    (shown,) = listed.json()["silences"]
    assert shown["id"] == silence_id and shown["state"] == "active"
    assert shown["matchers"] == ["cluster=summit", "pod=prepull-*"]
    assert shown["created_by"] == "alice"
    text = cli(["silence", "query"], silencer).stdout
    assert text.startswith(f"{silence_id} active cluster=summit pod=prepull-*")

    expired = cli(["silence", "expire", silence_id], silencer)
    assert expired.exit_code == 0 and expired.stdout == f"{silence_id} expired\n"
    assert cli(["silence", "query"], silencer).stdout == "no active or pending silences\n"

    after = cli(["notifier", "--output", "json"], notifier)
    assert after.exit_code == 0, after.stderr
    assert after.json()["summary"]["silenced"] == 0 and after.json()["summary"]["sent"] == 1
    assert "prepull-x1" in sent_keys(slack)[-1]
    assert any("prepull-x1" in key for key in recorded(org))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clustr=summit"], "error: invalid matcher: unknown label 'clustr'"),
        (["cluster=~("], "error: invalid matcher: matcher cluster=~(: invalid regular"),
        (["cluster=summit", "--duration", "2 hours"], "error: invalid --duration:"),
        (["cluster=summit", "--duration", "45d"], "a silence may last at most 30d"),
        (["cluster=summit", "--end", "yesterday"], "error: invalid --end 'yesterday'"),
        (["cluster!=summit"], "these matchers match every alert"),
        ([], "give at least one matcher"),
    ],
)
def test_a_bad_matcher_or_duration_is_one_line_exit_2_and_nothing_is_stored(
    buckets: OrgUnderTest, args: list[str], message: str
) -> None:
    run = cli(["silence", "add", *args, "--comment", "why"], buckets.env())
    assert run.exit_code == 2 and run.stdout == ""
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(message) or message in line, line
    assert query_rows(buckets, 'from(bucket: "silences_") |> range(start: -1d)') == []


def test_silence_commands_exit_codes(buckets: OrgUnderTest) -> None:
    unknown = cli(["silence", "expire", "0" * 8], buckets.env())
    assert unknown.exit_code == 2 and "no silence with ID" in unknown.stderr
    refused = cli(["silence", "query"], buckets.env(INFLUXDB_TOKEN="wrong-token"))
    assert refused.exit_code == 3 and "token was refused" in refused.stderr
    gone = cli(["silence", "query"], buckets.env(INFLUXDB_URL="http://127.0.0.1:9"))
    assert gone.exit_code == 3 and "cannot reach InfluxDB" in gone.stderr


def test_the_notifier_without_silences_bucket_still_alerts_and_exits_1(
    org: OrgUnderTest, slack: SlackServer
) -> None:
    """An upgrade before bucketmaker made silences_ (or with a notifier token made before it
    could read it) must not stop alerting: alerts go out unsilenced, the run exits 1 saying why."""
    for bucket in ("multiapp_", "alerted_"):
        create_bucket(org, bucket)
    write_lines(org, "multiapp_", [finding("restarts", "summit", "mobu", pod="mobu-1")])
    run = cli(["notifier", "--output", "json"], org.env(SLACK_WEBHOOK_URL=slack.url()))
    assert run.exit_code == 1
    assert run.json()["summary"]["sent"] == 1 and len(slack.delivered()) == 1
    assert "silences not applied, alerts are sent without them: bucket silences_ not" in run.stderr


# Inhibition


def test_a_silent_cluster_inhibits_its_application_findings_until_it_resolves(
    buckets: OrgUnderTest, slack: SlackServer, tmp_path: Path
) -> None:
    write_lines(
        buckets,
        "multiapp_",
        [
            finding("silent", "summit", "all", severity="critical", minutes_ago=6),
            finding("restarts", "summit", "nublado", pod="hub-1"),
            finding("not_running", "summit", "mobu", pod="mobu-1", severity="critical"),
            finding("restarts", "base", "nublado", pod="hub-2"),
        ],
    )
    env = buckets.env(SLACK_WEBHOOK_URL=slack.url())
    first = cli(["notifier", "--output", "json"], env)
    assert first.exit_code == 0, first.stderr
    report = first.json()
    assert report["summary"]["inhibited"] == 2 and report["summary"]["sent"] == 2
    assert {(i["cluster"], i["application"], i["rule"]) for i in report["inhibited"]} == {
        ("summit", "nublado", "silent-cluster"),
        ("summit", "mobu", "silent-cluster"),
    }
    assert {i["source"] for i in report["inhibited"]} == {"silent/summit/all/summit"}
    assert recorded(buckets) == {
        "silent/summit/all/summit",
        "restarts/base/nublado/nublado/hub-2/main",
    }

    # The cluster is back: its silent finding (6 minutes old) is out of a 5 minute look-back,
    # while its applications still fire. They are sent now, once.
    resolved = cli(["notifier", "--output", "json", "--alert-lookback", "5m"], env).json()
    assert resolved["summary"]["inhibited"] == 0 and resolved["summary"]["sent"] == 2
    assert {a["application"] for a in resolved["routes"]["default"]["alerts"]} == {
        "nublado",
        "mobu",
    }
    assert (
        cli(["notifier", "--output", "json", "--alert-lookback", "5m"], env).json()["messages"]
        == []
    )

    # default_inhibit_rules: false turns the built-in rules off.
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes: []\ndefault_inhibit_rules: false\n")
    write_lines(buckets, "multiapp_", [finding("silent", "summit", "all", severity="critical")])
    plain = cli(
        ["notifier", "--dry-run", "--output", "json"], {**env, "SLACK_ROUTES_FILE": str(routes)}
    )
    assert plain.json()["summary"]["inhibited"] == 0


# Per-route timing and grouping


def test_each_route_repeats_and_groups_on_its_own(
    buckets: OrgUnderTest, slack: SlackServer, tmp_path: Path
) -> None:
    fast, slow = "/services/T000/B100/SECRETxyz-fast", "/services/T000/B200/SECRETxyz-slow"
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        f"""routes:
  - name: base-fast
    webhook: {slack.url(fast)}
    clusters: base
    group_by: [application]
    repeat_interval: 3s
  - name: summit-slow
    webhook: {slack.url(slow)}
    clusters: summit
"""
    )
    write_lines(
        buckets,
        "multiapp_",
        [
            finding("restarts", "base", "nublado", pod="hub-1"),
            finding("restarts", "base", "mobu", pod="mobu-1"),
            finding("restarts", "base", "mobu", pod="mobu-2"),
            finding("restarts", "summit", "nublado", pod="hub-3"),
        ],
    )
    env = buckets.env(SLACK_ROUTES_FILE=str(routes))
    first = cli(["notifier", "--output", "json"], env)
    assert first.exit_code == 0, first.stderr
    groups = [(m["route"], m["group"], len(m["alerts"])) for m in first.json()["messages"]]
    assert groups == [
        ("base-fast", {"application": "mobu"}, 2),
        ("base-fast", {"application": "nublado"}, 1),
        ("summit-slow", {}, 1),
    ]
    headers = [post.text.splitlines()[0] for post in slack.delivered(fast)]
    assert headers == [
        "*rubin-monitoring alerts* application=mobu: 2 firing (2 warning)",
        "*rubin-monitoring alerts* application=nublado: 1 firing (1 warning)",
    ]
    time.sleep(3.5)  # past base-fast's repeat interval, well within the global hour
    second = cli(["notifier", "--output", "json"], env).json()
    assert second["summary"]["sent"] == 3 and second["summary"]["suppressed"] == 1
    assert {m["route"] for m in second["messages"]} == {"base-fast"}
    assert len(slack.delivered(slow)) == 1 and len(slack.delivered(fast)) == 4


# The heartbeat


def tasks_of(org: InfluxOrg) -> list[dict[str, Any]]:
    with httpx.Client(base_url=org.url, headers={"Authorization": f"Token {org.token}"}) as api:
        response = api.get("/api/v2/tasks", params={"orgID": org.id, "limit": 500})
        response.raise_for_status()
        return list(response.json()["tasks"])


def force_runs(org: InfluxOrg, expected: Mapping[str, str], timeout: float = 30) -> None:
    """Run each task once now; wait until each task's last run has the status expected of it
    (by name)."""
    with httpx.Client(base_url=org.url, headers={"Authorization": f"Token {org.token}"}) as api:
        for task in tasks_of(org):
            api.post(f"/api/v2/tasks/{task['id']}/runs", json={}).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = {task["name"]: task.get("lastRunStatus") for task in tasks_of(org)}
        if status == dict(expected):
            return
        time.sleep(0.2)
    raise AssertionError(f"task runs did not end as expected: {status}")


def heartbeats(slack: SlackServer) -> int:
    return len([post for post in slack.posts(HEARTBEAT_PATH) if post.method == "GET"])


def test_heartbeat_only_when_the_chain_is_healthy(
    org: OrgUnderTest, phalanx: PhalanxRepo, slack: SlackServer, tmp_path: Path
) -> None:
    """With tokenmaker's notifier token: the heartbeat is called after a good run while every
    check task's last run succeeded, and not once a task's last run failed, nor on a dry run."""
    tokens = tokens_for(org, phalanx, tmp_path)
    repo = org.env(PHALANX_REPO=phalanx.url, CHECKS="restarts", CHECK_EVERY="1m")
    assert cli(["taskmaker"], repo).exit_code == 0
    force_runs(org, {"mobu restarts": "success", "nublado restarts": "success"})
    env = {
        **org.env(SLACK_WEBHOOK_URL=slack.url(), HEARTBEAT_URL=slack.url(HEARTBEAT_PATH)),
        "INFLUXDB_TOKEN": tokens["notifier"],
    }
    run = cli(["notifier", "--output", "json", "--debug"], env)
    assert run.exit_code == 0, run.stderr
    assert run.json()["heartbeat"] == {
        "status": "sent",
        "reason": "the chain is healthy",
        "attempts": 1,
    }
    assert heartbeats(slack) == 1
    dry = cli(["notifier", "--dry-run"], env)
    assert "heartbeat skipped: dry run" in dry.stdout and heartbeats(slack) == 1

    # An application enabled later whose bucket is missing: its task fails.
    phalanx.set_apps({"nublado": True, "mobu": True, "ghost": True}, {"summit": {}})
    assert cli(["taskmaker"], repo).exit_code == 0
    force_runs(
        org, {"mobu restarts": "success", "nublado restarts": "success", "ghost restarts": "failed"}
    )
    skipped = cli(["notifier", "--output", "json"], env)
    assert skipped.exit_code == 0, skipped.stderr
    heartbeat = skipped.json()["heartbeat"]
    assert heartbeat["status"] == "skipped"
    assert heartbeat["reason"].startswith("task ghost restarts: last run failed (")
    assert heartbeats(slack) == 1


def test_heartbeat_not_called_when_influxd_is_down(slack: SlackServer) -> None:
    """A throwaway influxd: a healthy run calls the heartbeat; with the server stopped the run
    exits 3 and does not."""
    with influx_server() as server:
        org = _SingleOrg(server)
        for bucket in INTERNAL:
            create_bucket(org, bucket)
        task = """option task = {name: "app restarts", every: 1m}
from(bucket: "multiapp_") |> range(start: -1m) |> yield()"""
        with httpx.Client(base_url=org.url, headers={"Authorization": f"Token {org.token}"}) as api:
            api.post(
                "/api/v2/tasks",
                json={
                    "orgID": org.id,
                    "flux": task,
                    "description": "Alert check restarts of app "
                    "(managed-by=rubin-monitoring bucket=app check=restarts)",
                },
            ).raise_for_status()
        env = {
            "INFLUXDB_URL": org.url,
            "INFLUXDB_TOKEN": org.token,
            "INFLUXDB_ORG": org.name,
            "SLACK_WEBHOOK_URL": slack.url(),
            "HEARTBEAT_URL": slack.url(HEARTBEAT_PATH),
            "HTTP_TIMEOUT": "2",
        }
        healthy = cli(["notifier"], env)
        assert healthy.exit_code == 0, healthy.stderr
        assert "heartbeat sent" in healthy.stdout and heartbeats(slack) == 1
    down = cli(["notifier"], env)
    assert down.exit_code == 3 and "cannot reach InfluxDB" in down.stderr
    assert heartbeats(slack) == 1


class _SingleOrg:
    """The onboarded organization of a throwaway server."""

    def __init__(self, server: InfluxServer) -> None:
        self.url, self.token, self.name, self.id = (
            server.url,
            server.token,
            server.org,
            server.org_id,
        )

"""The notifier command end to end: a real influxd (multiapp_ -> alerted_) and a local server
speaking the Slack webhook protocol.

Every webhook URL carries a secret-looking path; no stdout, stderr or log line of any run may
contain it, and neither may anything stored in InfluxDB.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.orgs import OrgUnderTest

from rubin_monitoring.cli import notifier_command
from rubin_monitoring.models.checks import CheckSettings
from rubin_monitoring.services.checks import render_check
from rubin_monitoring.testing.flux import (
    create_bucket,
    create_task,
    line_protocol,
    pod_container_line,
    query_alerts,
    query_rows,
    run_task_and_wait,
    write_lines,
)
from rubin_monitoring.testing.slack_server import (
    SECRET_PATH,
    Fail,
    Hang,
    RateLimited,
    SlackServer,
    assert_no_secret,
    max_per_second,
    min_gap,
    slack_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_webhook_in_output(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    # The command installs its own log handler on the root logger; put pytest's back after.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    caplog.set_level(logging.DEBUG)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capfd.readouterr()
    assert_no_secret(out, err, *(record.getMessage() for record in caplog.records))


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with slack_server() as server:
        yield server


@pytest.fixture
def buckets(org: OrgUnderTest) -> OrgUnderTest:
    create_bucket(org, "multiapp_")
    create_bucket(org, "alerted_")
    create_bucket(org, "silences_")
    return org


def env(org: OrgUnderTest, slack: SlackServer, **extra: str) -> dict[str, str]:
    return org.env(SLACK_WEBHOOK_URL=slack.url(), **extra)


def invoke(environ: Mapping[str, str], *args: str) -> Result:
    result = CliRunner().invoke(notifier_command, list(args), env=dict(environ))
    assert_no_secret(result.stdout, result.stderr)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_json(environ: Mapping[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke(environ, "--output", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def write_alerts(
    org: OrgUnderTest,
    count: int,
    *,
    cluster: str = "idfdev",
    prefix: str = "",
    minutes_ago: float = 1,
    message: str = "container restarted {i} times in 10m",
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    lines = [
        line_protocol(
            "alert",
            {
                "check": "restarts",
                "application": f"app{i % 9}",
                "cluster": cluster,
                "severity": "critical" if i % 4 else "warning",
                "dedup_key": f"{prefix or cluster}-restarts-app{i}",
            },
            {"message": message.format(i=i), "value": float(i)},
            now - timedelta(milliseconds=i),
        )
        for i in range(count)
    ]
    write_lines(org, "multiapp_", lines)


def records(org: OrgUnderTest) -> list[Any]:
    return query_alerts(org, bucket="alerted_")


def assert_bucket_has_no_secret(org: OrgUnderTest) -> None:
    rows = query_rows(org, 'from(bucket: "alerted_") |> range(start: -1d)')
    assert_no_secret(json.dumps(rows))


def test_each_alert_is_sent_once_recorded_then_suppressed(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(buckets, 3)
    write_alerts(buckets, 2, minutes_ago=2)  # older rows of the same two keys
    code, report = run_json(env(buckets, slack))
    assert code == 0, report
    assert report["job"] == "notifier" and report["dry_run"] is False
    assert report["summary"]["findings"] == 5 and report["summary"]["sent"] == 3
    assert [a["dedup_key"] for a in report["routes"]["default"]["alerts"]] == [
        "idfdev-restarts-app1",
        "idfdev-restarts-app2",
        "idfdev-restarts-app0",
    ]
    (post,) = slack.delivered()
    assert (
        post.text.splitlines()[0] == "*rubin-monitoring alerts*: 3 firing (2 critical, 1 warning)"
    )
    assert "*CRITICAL* `idfdev` app1 restarts: container restarted 1 times in 10m" in post.text
    saved = records(buckets)
    assert sorted(r.dedup_key for r in saved) == [f"idfdev-restarts-app{i}" for i in range(3)]
    assert {(r.tags["route"], r.tags["status"], r.cluster) for r in saved} == {
        ("default", "firing", "idfdev")
    }
    assert_bucket_has_no_secret(buckets)

    code, report = run_json(env(buckets, slack))
    assert code == 0 and report["summary"]["suppressed"] == 3 and report["messages"] == []
    assert len(slack.posts()) == 1 and len(records(buckets)) == 3


def test_through_a_429_nothing_is_lost(buckets: OrgUnderTest, slack: SlackServer) -> None:
    write_alerts(buckets, 2)
    slack.script(SECRET_PATH, RateLimited(retry_after=1))
    code, report = run_json(env(buckets, slack))
    assert code == 0, report
    limited, delivered = slack.posts()
    assert delivered.ok and delivered.arrived - limited.arrived >= 0.95
    assert report["messages"][0]["attempts"] == 2
    assert len(records(buckets)) == 2


def test_through_a_500_the_alert_is_not_recorded_and_goes_out_next_run(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(buckets, 2)
    slack.script(SECRET_PATH, Fail(500), Fail(500), Fail(500))
    code, report = run_json(env(buckets, slack))
    assert code == 1
    assert report["summary"]["failed"] == 2 and report["summary"]["sent"] == 0
    assert {f["route"] for f in report["failures"]} == {"default"}
    assert "500" in report["failures"][0]["error"]
    assert slack.delivered() == [] and len(slack.posts()) == 3  # bounded retries
    assert records(buckets) == []

    code, report = run_json(env(buckets, slack))
    assert code == 0 and report["summary"]["sent"] == 2
    assert len(slack.delivered()) == 1 and len(records(buckets)) == 2


def test_a_hung_slack_does_not_hang_the_job(buckets: OrgUnderTest, slack: SlackServer) -> None:
    write_alerts(buckets, 1)
    slack.default(SECRET_PATH, Hang(60))
    started = time.monotonic()
    result = invoke(env(buckets, slack, SLACK_TIMEOUT="1"))
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 10  # 3 attempts of 1s, backoff 1s + 2s
    assert "timed out" in result.stdout and "[failed]" in result.stdout
    assert records(buckets) == []


def test_a_flood_of_500_alerts_goes_out_in_a_handful_of_messages_at_one_per_second(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(
        buckets, 500, message="pod app-{i}-7d9f8c6b5-x2x4z container main restarted 5 times"
    )
    started = time.monotonic()
    code, report = run_json(env(buckets, slack))
    elapsed = time.monotonic() - started
    assert code == 0, report["failures"]
    posts = slack.delivered()
    assert 2 <= len(posts) <= 5 and len(slack.posts()) == len(posts)
    assert all(len(post.text) <= 40_000 for post in posts)
    times = [post.arrived for post in posts]
    gap = min_gap(times)
    assert gap is not None and gap >= 0.95 and max_per_second(times) == 1
    assert sum(len(post.text.splitlines()) - 1 for post in posts) == 500
    assert report["summary"]["sent"] == 500 and len(records(buckets)) == 500
    assert elapsed < 30


def test_routes_file_sends_each_cluster_to_its_own_webhook(
    buckets: OrgUnderTest, slack: SlackServer, tmp_path: Path
) -> None:
    for cluster in ("summit", "base", "idfdev"):
        write_alerts(buckets, 3, cluster=cluster)
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        f"""routes:
  - name: summit
    webhook: {slack.url("/services/T000/B100/SECRETxyz-summit")}
    clusters: summit
  - name: base-critical
    webhook_env: BASE_WEBHOOK
    clusters: [base]
    severities: [critical]
"""
    )
    environ = env(
        buckets,
        slack,
        SLACK_ROUTES_FILE=str(routes),
        BASE_WEBHOOK=slack.url("/services/T000/B200/SECRETxyz-base"),
    )
    code, report = run_json(environ)
    assert code == 0, report
    clusters = {
        path: {
            line.split("`")[1]
            for post in slack.delivered(path)
            for line in post.text.splitlines()[1:]
        }
        for path in (
            "/services/T000/B100/SECRETxyz-summit",
            "/services/T000/B200/SECRETxyz-base",
            SECRET_PATH,
        )
    }
    assert clusters == {
        "/services/T000/B100/SECRETxyz-summit": {"summit"},
        "/services/T000/B200/SECRETxyz-base": {"base"},
        SECRET_PATH: {"idfdev", "base"},  # base warnings fall through to the default route
    }
    assert {name: len(route["alerts"]) for name, route in report["routes"].items()} == {
        "summit": 3,
        "base-critical": 2,
        "default": 4,
    }
    assert {r.tags["route"] for r in records(buckets) if r.cluster == "summit"} == {"summit"}
    assert_bucket_has_no_secret(buckets)


def test_dry_run_shows_messages_per_route_name_and_sends_nothing(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(buckets, 2)
    result = invoke(env(buckets, slack), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "notifier plan (dry run):\n  route default, message 1/1, 2 alerts"
    )
    assert "| *rubin-monitoring alerts*: 2 firing (1 critical, 1 warning)" in result.stdout
    assert slack.posts() == [] and records(buckets) == []


def test_send_resolved_when_a_problem_stops_appearing(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(buckets, 2, minutes_ago=7)
    environ = env(buckets, slack, SEND_RESOLVED="1")
    assert run_json(environ)[0] == 0
    # With a 5 minute look-back the findings are gone, but the records (1h) remain.
    code, report = run_json(environ, "--alert-lookback", "5m")
    assert code == 0 and report["summary"]["resolved"] == 2
    assert slack.delivered()[-1].text.count("*RESOLVED*") == 2
    statuses = sorted((r.dedup_key, r.tags["status"]) for r in records(buckets))
    assert [status for _, status in statuses] == ["firing", "resolved"] * 2
    assert run_json(environ, "--alert-lookback", "5m")[1]["messages"] == []


def test_debug_and_json_logs_never_show_the_webhook(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    write_alerts(buckets, 1)
    slack.script(SECRET_PATH, Fail(503, f"upstream {SECRET_PATH} down"))
    result = invoke(env(buckets, slack), "--debug", "--log-format", "json")
    assert result.exit_code == 0
    assert "retrying" in result.stderr and "<webhook>" in result.stderr


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"INFLUXDB_TOKEN": "wrong-token"}, 3, "token was refused"),
        ({"INFLUXDB_URL": "http://127.0.0.1:9"}, 3, "cannot reach InfluxDB"),
        ({"SLACK_WEBHOOK_URL": "hooks.slack.com/SECRETxyz"}, 2, "SLACK_WEBHOOK_URL"),
        ({"SLACK_ROUTES_FILE": "/nonexistent/routes.yaml"}, 2, "cannot read"),
        ({"ALERT_LOOKBACK": "soon"}, 2, "ALERT_LOOKBACK"),
    ],
)
def test_exit_codes(
    buckets: OrgUnderTest,
    slack: SlackServer,
    change: dict[str, str],
    code: int,
    message: str,
) -> None:
    write_alerts(buckets, 1)
    result = invoke({**env(buckets, slack), **change})
    assert result.exit_code == code
    assert message in result.stderr
    assert slack.posts() == []


def test_missing_buckets_exit_2(org: OrgUnderTest, slack: SlackServer) -> None:
    result = invoke(env(org, slack))
    assert result.exit_code == 2
    assert "bucket multiapp_ not found" in result.stderr and "bucketmaker" in result.stderr


def test_no_webhook_configured_exits_2(buckets: OrgUnderTest) -> None:
    result = invoke(buckets.env())
    assert result.exit_code == 2 and "nowhere to send alerts" in result.stderr


def test_end_to_end_from_telegraf_data_to_slack_once(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    """Telegraf-shaped points -> the restarts check as a real task -> finding in multiapp_ ->
    notifier -> Slack -> record in alerted_; the next check run finds the same problem again and
    the next notifier run sends nothing."""
    create_bucket(buckets, "mobu")
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    lines = [
        pod_container_line(
            cluster="idfdev",
            namespace="mobu",
            pod="mobu-7d9f-x2",
            container="mobu",
            fields={"restarts_total": 1 if ago > 300 else 3, "state_code": 0},
            timestamp=now - timedelta(seconds=ago),
            extra_tags={"phase": "Running", "state": "running", "readiness": "ready"},
        )
        for ago in range(540, 0, -30)
    ]
    write_lines(buckets, "mobu", lines)
    flux = render_check(
        "restarts",
        bucket="mobu",
        task_name="mobu-restarts",
        offset="0s",
        settings=CheckSettings(),
    )
    task_id = create_task(buckets, flux)
    first = run_task_and_wait(buckets, task_id)
    (finding,) = query_alerts(buckets, at=first.scheduled_for)

    code, report = run_json(env(buckets, slack))
    assert code == 0, report
    (post,) = slack.delivered()
    assert "*WARNING* `idfdev` mobu restarts:" in post.text and "restarted 2 times" in post.text
    (saved,) = records(buckets)
    assert saved.dedup_key == finding.dedup_key and saved.tags["route"] == "default"

    later = first.scheduled_for + timedelta(seconds=1)
    run_task_and_wait(buckets, task_id, scheduled_for=later)
    assert len(query_alerts(buckets)) == 2  # the problem was found again
    code, report = run_json(env(buckets, slack))
    assert code == 0 and report["summary"]["suppressed"] == 1 and report["messages"] == []
    assert len(slack.posts()) == 1


def bucket_id(org: OrgUnderTest, name: str) -> str:
    with org.server.client() as client:
        response = client.get("/api/v2/buckets", params={"orgID": org.id, "name": name})
        response.raise_for_status()
        return str(response.json()["buckets"][0]["id"])


BUCKETS = ("multiapp_", "alerted_")


def test_a_token_that_cannot_write_alerted_sends_nothing(
    buckets: OrgUnderTest, slack: SlackServer
) -> None:
    """A notifier token that may read but not write alerted_ must not send on every run what
    it can never record: each run proves it can write before it sends, and exits 3."""
    org = buckets
    read = [
        {
            "action": "read",
            "resource": {"type": "buckets", "orgID": org.id, "id": bucket_id(org, b)},
        }
        for b in ("multiapp_", "alerted_")
    ]
    granted = [
        *read,
        {"action": "read", "resource": {"type": "orgs", "id": org.id}},
        *(
            {"action": a, "resource": {"type": "labels", "orgID": org.id}}
            for a in ("read", "write")
        ),
    ]
    with org.server.client() as client:
        response = client.post(
            "/api/v2/authorizations", json={"orgID": org.id, "permissions": granted}
        )
        response.raise_for_status()
        token = response.json()["token"]
    write_alerts(org, 30)
    for _ in range(3):
        result = invoke(env(org, slack, INFLUXDB_TOKEN=token))
        assert result.exit_code == 3, result.stderr
        assert "alerted_ cannot be written" in result.stderr
        assert token not in result.stderr + result.stdout
    assert slack.posts() == []
    assert records(org) == []
    # With the right to write, the same alerts go out once.
    assert invoke(env(org, slack)).exit_code == 0
    assert len(slack.posts()) == 1

"""The notifier's pure logic: dedup, planning, routing, message format and splitting, routes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from rubin_monitoring.config import NOTIFIER, load_settings
from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.alerts import (
    Alert,
    AlertRecord,
    AlertStatus,
    Delivery,
    Finding,
    MessageResult,
    NotifierReport,
    Route,
)
from rubin_monitoring.render import render_text, to_json
from rubin_monitoring.services.notifier import (
    SLACK_TEXT_LIMIT,
    collapse,
    format_alert,
    notifier_options,
    payload,
    plan_alerts,
    plan_messages,
    slack_length,
    split_messages,
)
from rubin_monitoring.services.routes import load_routes, parse_routes, route_for
from rubin_monitoring.storage.alerts import record_point
from rubin_monitoring.storage.slack import redact
from rubin_monitoring.testing.slack_server import SECRET, assert_no_secret

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOOK = f"https://hooks.slack.com/services/T000/B000/{SECRET}"


@pytest.fixture(autouse=True)
def _no_webhook_in_output(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    assert_no_secret(out, err, *(record.getMessage() for record in caplog.records))


def finding(
    key: str,
    *,
    minutes: int = 0,
    cluster: str = "idfdev",
    application: str = "nublado",
    check: str = "restarts",
    severity: str = "critical",
    message: str = "pod restarted",
    value: float | None = 3.0,
) -> Finding:
    return Finding(
        T0 + timedelta(minutes=minutes),
        check,
        application,
        cluster,
        severity,
        key,
        message,
        value,
    )


def alert(key: str, **kwargs: object) -> Alert:
    (only,) = collapse([finding(key, **kwargs)])  # type: ignore[arg-type]
    return only


def record(key: str, status: AlertStatus = AlertStatus.FIRING, minutes: int = 0) -> AlertRecord:
    return AlertRecord(
        T0 + timedelta(minutes=minutes),
        key,
        status,
        "restarts",
        "nublado",
        "idfdev",
        "critical",
        "default",
        "pod restarted",
    )


ROUTE = Route("default", HOOK)


# Dedup and planning


def test_rows_with_the_same_key_are_one_alert_shown_as_the_latest() -> None:
    alerts = collapse(
        [
            finding("k1", minutes=0, message="old"),
            finding("k2", minutes=1, severity="warning"),
            finding("k1", minutes=5, message="new", value=7),
            finding("k1", minutes=3, message="middle"),
        ]
    )
    assert [a.dedup_key for a in alerts] == ["k1", "k2"]  # critical before warning
    assert alerts[0].message == "new" and alerts[0].value == 7 and alerts[0].rows == 3


def test_rows_without_a_key_are_keyed_not_dropped() -> None:
    alerts = collapse([finding(""), finding("", minutes=1)])
    assert [a.dedup_key for a in alerts] == ["restarts/nublado/idfdev"]


def test_alert_recorded_within_the_interval_is_suppressed() -> None:
    alerts = collapse([finding("k1"), finding("k2")])
    plan = plan_alerts(alerts, [record("k1")], send_resolved=False)
    assert [a.dedup_key for a in plan.send] == ["k2"]
    assert [a.dedup_key for a in plan.suppressed] == ["k1"]


def test_alert_fires_again_after_it_was_resolved() -> None:
    records = [record("k1", minutes=0), record("k1", AlertStatus.RESOLVED, minutes=5)]
    plan = plan_alerts(collapse([finding("k1", minutes=9)]), records, send_resolved=True)
    assert [(a.dedup_key, a.status) for a in plan.send] == [("k1", AlertStatus.FIRING)]


def test_resolved_only_when_asked_and_only_for_keys_gone() -> None:
    records = [
        record("gone"),
        record("still"),
        record("done"),
        record("done", AlertStatus.RESOLVED, minutes=1),
    ]
    alerts = collapse([finding("still")])
    assert plan_alerts(alerts, records, send_resolved=False).send == []
    plan = plan_alerts(alerts, records, send_resolved=True)
    assert [(a.dedup_key, a.status) for a in plan.send] == [("gone", AlertStatus.RESOLVED)]
    assert [a.dedup_key for a in plan.suppressed] == ["still"]


# Routing


def test_first_matching_route_wins_and_default_takes_the_rest() -> None:
    summit = Route("summit", HOOK + "1", clusters=frozenset({"summit", "base"}))
    crit = Route(
        "usdf-critical",
        HOOK + "2",
        clusters=frozenset({"usdf"}),
        severities=frozenset({"critical"}),
    )
    routes = [summit, crit, ROUTE]
    assert route_for(alert("a", cluster="base"), routes) is summit
    assert route_for(alert("b", cluster="usdf", severity="CRITICAL"), routes) is crit
    assert route_for(alert("c", cluster="usdf", severity="warning"), routes) is ROUTE
    assert route_for(alert("d", cluster="usdf", severity="warning"), [summit, crit]) is None


def test_unrouted_alerts_are_reported_not_dropped() -> None:
    summit = Route("summit", HOOK, clusters=frozenset({"summit"}))
    messages, unrouted = plan_messages([alert("a"), alert("b", cluster="summit")], [summit])
    assert [m.route.name for m in messages] == ["summit"]
    assert [a.dedup_key for a in unrouted] == ["a"]


# Message format and splitting


def test_alert_line_shows_severity_place_check_message_and_escapes_mrkdwn() -> None:
    line = format_alert(alert("k", message="a <b> & c", severity="warning", value=91.5))
    assert line == (
        ":large_orange_circle: *WARNING* `idfdev` nublado restarts: a &lt;b&gt; &amp; c "
        "(value 91.5)"
    )
    resolved = replace(alert("k"), status=AlertStatus.RESOLVED)
    assert format_alert(resolved).startswith(":white_check_mark: *RESOLVED* (critical)")


def test_one_message_lists_all_alerts_of_a_route_with_a_header() -> None:
    alerts = collapse([finding("a"), finding("b", severity="warning"), finding("c")])
    (message,) = split_messages(ROUTE, alerts)
    lines = message.text.splitlines()
    assert lines[0] == "*rubin-monitoring alerts*: 3 firing (2 critical, 1 warning)"
    assert len(lines) == 4 and message.alerts == tuple(alerts)


def test_flood_splits_only_where_the_size_limit_requires() -> None:
    alerts = collapse(
        [finding(f"k{i:03}", message=f"pod {i} restarted " + "x" * 150) for i in range(500)]
    )
    line = slack_length(format_alert(alerts[0])) + 1
    messages = split_messages(ROUTE, alerts)
    assert all(slack_length(m.text) <= SLACK_TEXT_LIMIT for m in messages)
    # Greedy packing: the fewest messages that hold every line.
    per_message = (39_000 - 200) // line
    assert len(messages) == -(-500 // per_message) <= 3
    assert [a for m in messages for a in m.alerts] == alerts
    assert [(m.part, m.parts) for m in messages] == [
        (i + 1, len(messages)) for i in range(len(messages))
    ]
    assert messages[0].text.splitlines()[0].endswith(f"(part 1 of {len(messages)})")


def test_small_limits_split_at_line_boundaries() -> None:
    alerts = collapse([finding(f"k{i}") for i in range(20)])
    messages = split_messages(ROUTE, alerts, max_chars=600)
    assert len(messages) > 1
    assert all(slack_length(m.text) <= 600 for m in messages)
    assert sum(len(m.alerts) for m in messages) == 20


def test_long_messages_are_clipped_and_length_counts_utf16() -> None:
    line = format_alert(alert("k", message="é" * 5000))
    assert len(line) < 700
    assert slack_length("🔥") == 2


def test_report_json_names_routes_never_urls() -> None:
    messages, _ = plan_messages(collapse([finding("a")]), [ROUTE])
    report = NotifierReport(
        dry_run=False,
        findings=1,
        alerts=1,
        suppressed=[],
        results=[MessageResult(messages[0], Delivery.FAILED, "Slack answered 500", 3)],
    )
    data = to_json(report)
    assert data["job"] == "notifier" and data["dry_run"] is False
    assert cast(dict[str, int], data["summary"])["failed"] == 1
    assert data["failures"] == [
        {"route": "default", "dedup_key": "a", "status": "failed", "error": "Slack answered 500"}
    ]
    assert report.exit_code == 1
    assert_no_secret(str(data), render_text(report), repr(ROUTE), repr(messages[0]))


# Routes file


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return str(path)


def test_routes_file_with_literal_and_env_webhooks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""routes:
  - name: summit
    webhook: {HOOK}/summit
    clusters: [summit, base]
  - name: usdf-critical
    webhook_env: HOOK_USDF
    clusters: usdfprod
    severities: [Critical]
""",
    )
    routes = load_routes(HOOK, path, {"HOOK_USDF": HOOK + "/usdf"})
    assert [r.name for r in routes] == ["summit", "usdf-critical", "default"]
    assert routes[0].clusters == {"summit", "base"} and routes[0].url == HOOK + "/summit"
    assert routes[1].severities == {"critical"} and routes[1].url == HOOK + "/usdf"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("routes: [\n", "line 2: invalid YAML"),
        (f"routes:\n  - name: a\n    webhook: {HOOK}: oops\n", "line 3: invalid YAML"),
        ("routes: {}\n", "expected a mapping with a 'routes' list"),
        ("routes: []\nextra: 1\n", "line 2: unknown top-level key 'extra'"),
        (f"routes:\n  - name: a\n    webhook: {HOOK}\n    cluster: x\n", "line 4: routes[0]"),
        (f"routes:\n  - name: a b\n    webhook: {HOOK}\n", "line 2: routes[0].name:"),
        (f"routes:\n  - name: default\n    webhook: {HOOK}\n", "reserved"),
        ("routes:\n  - name: a\n", "give exactly one of webhook, webhook_env"),
        (f"routes:\n  - name: a\n    webhook: ftp://x/{SECRET}\n", "line 3: routes[0].webhook"),
        ("routes:\n  - name: a\n    webhook_env: NOPE\n", "variable NOPE is not set"),
        (f"routes:\n  - name: a\n    webhook: {HOOK}\n    clusters: []\n", "line 4: routes[0]"),
        (f"routes:\n  - name: a\n    webhook: {HOOK}\n    clusters: [3]\n", "got 3"),
        (
            f"routes:\n  - name: a\n    webhook: {HOOK}\n  - name: a\n    webhook: {HOOK}\n",
            "line 4: routes[1].name: duplicate name 'a'",
        ),
        (f"routes:\n  - name: a\n    name: b\n    webhook: {HOOK}\n", "duplicate key 'name'"),
        (f"routes:\n  - {HOOK}\n", "routes[0]: expected a mapping"),
        (f"routes:\n  - name: a\n    webhook: {HOOK}\n    clusters: [{HOOK}: 1]\n", "got {"),
    ],
)
def test_bad_routes_file_names_file_line_and_field_never_the_url(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_routes(None, path, {"BAD": "x"})
    message = str(info.value)
    assert message.startswith(f"SLACK_ROUTES_FILE {path}")
    assert expected in message
    assert_no_secret(message)
    assert "hooks.slack.com" not in message


def test_bad_webhook_from_env_is_not_shown(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    webhook_env: HOOK\n")
    with pytest.raises(ConfigError, match=r"webhook_env \(HOOK\): not an http\(s\) URL") as info:
        load_routes(None, path, {"HOOK": f"hooks.slack.com/{SECRET}"})
    assert_no_secret(str(info.value))


def test_no_webhook_at_all_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere to send alerts"):
        load_routes(None, None)
    with pytest.raises(ConfigError, match="cannot read"):
        load_routes(HOOK, str(tmp_path / "missing.yaml"))
    assert parse_routes("routes: []\n", "x.yaml") == []


def test_routes_repr_never_shows_the_url() -> None:
    assert SECRET not in repr(Route("r", HOOK)) and SECRET not in str([Route("r", HOOK)])


def test_redact_removes_secrets_and_urls() -> None:
    text = f"error for {HOOK} and /services/T000/B000/{SECRET} and {SECRET} and http://x/y"
    assert redact(text, [HOOK]) == "error for <webhook> and /<webhook> and <webhook> and <url>"


# Settings


def test_notifier_durations_are_checked() -> None:
    settings = load_settings({}, NOTIFIER, environ={"ALERT_LOOKBACK": "15m"})
    options = notifier_options(settings.notifier, dry_run=False)
    assert (options.lookback_seconds, options.repeat_seconds) == (900, 3600)
    with pytest.raises(ConfigError, match="ALERT_REPEAT_INTERVAL"):
        load_settings({}, NOTIFIER, environ={"ALERT_REPEAT_INTERVAL": "1 hour"})
    with pytest.raises(ConfigError, match="ALERT_LOOKBACK"):
        load_settings({}, NOTIFIER, environ={"ALERT_LOOKBACK": "0"})


# Storage formats


def test_record_point_escapes_tags_and_strings() -> None:
    item = alert("k 1", application="argo cd", message='say "hi"\nback\\slash', value=2)
    line = record_point(item, "default", T0).to_line_protocol()
    assert line == (
        "alert,application=argo\\ cd,check=restarts,cluster=idfdev,dedup_key=k\\ 1,"
        "route=default,severity=critical,status=firing "
        'message="say \\"hi\\" back\\\\slash",value=2 1748779200000'
    )


def test_severity_is_the_attachment_colour_and_the_preview_is_the_header() -> None:
    """Issue 10: severity as colour (as the reference tool's messages), readable preview."""
    alerts = [
        alert("c1", severity="critical"),
        alert("c2", severity="critical", cluster="summit"),
        alert("w1", severity="warning"),
        replace(alert("r1", severity="critical"), status=AlertStatus.RESOLVED),
    ]
    (message,) = split_messages(ROUTE, sorted(alerts, key=lambda a: a.sort_key))
    body = payload(message)
    header, *lines = message.text.split("\n")
    assert body["text"] == header and header.startswith("*rubin-monitoring alerts*: 3 firing")
    attachments = body["attachments"]
    assert isinstance(attachments, list)
    assert [a["color"] for a in attachments] == ["#d50000", "#ff9100", "#2e7d32"]
    assert [a["text"].count("\n") + 1 for a in attachments] == [2, 1, 1]
    assert "\n".join(a["text"] for a in attachments) == "\n".join(lines)
    assert all(a["fallback"] == a["text"] for a in attachments)
    assert body["unfurl_links"] is False

"""Silences, inhibition, per-route grouping and timing, the heartbeat's health rule: the pure
parts (tests/integration/test_silences.py runs them against a real influxd)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from rubin_monitoring.config import NOTIFIER, load_settings
from rubin_monitoring.exceptions import ConfigError, InfluxDBUnavailableError
from rubin_monitoring.models.alerts import (
    Alert,
    AlertRecord,
    AlertStatus,
    HeartbeatStatus,
    InhibitRule,
    NotifierReport,
    Route,
)
from rubin_monitoring.models.matchers import Matcher, MatchOp, parse_matcher
from rubin_monitoring.models.silences import Silence, SilenceState
from rubin_monitoring.models.tasks import ObservedTask, task_description
from rubin_monitoring.render import render_text, to_json
from rubin_monitoring.services.heartbeat import chain_problems, heartbeat
from rubin_monitoring.services.muting import inhibit, silence
from rubin_monitoring.services.notifier import (
    NotifierOptions,
    plan_alerts,
    plan_messages,
    plan_notifications,
    records_window,
)
from rubin_monitoring.services.routes import DEFAULT_INHIBIT_RULES, load_routing, parse_routing
from rubin_monitoring.services.silences import (
    expire_silences,
    new_silence,
    query_silences,
)
from rubin_monitoring.storage.heartbeat import HeartbeatError, HeartbeatPinger
from rubin_monitoring.storage.silences import silence_from_row, silence_point
from rubin_monitoring.testing.slack_server import Fail, assert_no_secret, slack_server

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOOK = "https://hooks.slack.com/services/T000/B000/SECRETxyz"


def alert(
    check: str = "restarts",
    cluster: str = "summit",
    application: str = "nublado",
    severity: str = "warning",
    key: str | None = None,
    pod: str = "hub-1",
) -> Alert:
    if key is None:
        key = f"{check}/{cluster}/{application}/{application}/{pod}/main"
    return Alert(key, check, application, cluster, severity, f"{key} is wrong", 1.0, T0)


def stored(*matchers: str, hours: float = 1, start: datetime = T0, sid: str = "s1") -> Silence:
    return Silence(
        sid,
        tuple(parse_matcher(m) for m in matchers),
        start,
        start + timedelta(hours=hours),
        "alice",
        "maintenance",
    )


# Matchers


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("cluster=summit", {"cluster": "summit"}, True),
        ('cluster="summit"', {"cluster": "summit"}, True),
        ("cluster=summit", {"cluster": "summit2"}, False),
        ("cluster!=summit", {"cluster": "base"}, True),
        ("cluster!=summit", {}, True),
        ("pod=prepull-*", {"pod": "prepull-abc12"}, True),
        ("pod=prepull-?", {"pod": "prepull-ab"}, False),
        ("pod!=prepull-*", {"pod": "hub-1"}, True),
        ("application=~nublado|portal", {"application": "portal"}, True),
        ("application=~nub", {"application": "nublado"}, False),  # anchored
        ("severity!~info|warning", {"severity": "critical"}, True),
        ("check=not_running", {"check": "not_running"}, True),
        ("cluster=a.b", {"cluster": "axb"}, False),  # '.' is literal outside regexes
    ],
)
def test_matchers_compare_like_amtool_with_globs(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("clustr=summit", "unknown label 'clustr'"),
        ("cluster", "is not label=value"),
        ("=summit", "is not label=value"),
        ("cluster=~(", "invalid regular expression"),
    ],
)
def test_bad_matchers_are_one_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_matcher(text)
    assert "\n" not in str(caught.value)


def test_matchers_round_trip_through_storage() -> None:
    matcher = Matcher("pod", MatchOp.NRE, "a|b=c")
    assert Matcher.from_json(json.loads(json.dumps(matcher.to_json()))) == matcher
    assert str(matcher) == "pod!~a|b=c"


def test_alert_labels_take_the_pod_from_an_application_checks_key() -> None:
    assert alert(pod="prepull-x").labels["pod"] == "prepull-x"
    site = alert("site_down", application="site", key="site_down/summit/site/https://x/")
    assert site.labels["pod"] == ""


# Making, listing and ending silences


def test_new_silence_from_matchers_and_a_duration_or_an_end() -> None:
    made = new_silence(
        ["cluster=summit", "application=nublado"],
        author="alice",
        comment="fixing  it\nnow",
        duration="2h",
        now=T0,
    )
    assert made.ends_at - made.starts_at == timedelta(hours=2)
    assert [str(m) for m in made.matchers] == ["cluster=summit", "application=nublado"]
    assert made.comment == "fixing it now" and len(made.id) == 36
    until = new_silence(
        ["cluster=summit"], author="a", comment="c", end="2025-06-02T00:00:00Z", now=T0
    )
    assert until.ends_at == datetime(2025, 6, 2, tzinfo=UTC)
    default = new_silence(["cluster=summit"], author="a", comment="c", now=T0)
    assert default.ends_at - default.starts_at == timedelta(hours=1)


@pytest.mark.parametrize(
    ("matchers", "options", "problem"),
    [
        ([], {}, "at least one matcher"),
        (["clustr=x"], {}, "invalid matcher: unknown label 'clustr'"),
        (["cluster!=x"], {}, "match every alert"),
        (["cluster=~.*"], {}, "match every alert"),
        (["cluster=x"], {"duration": "2x"}, "invalid --duration"),
        (["cluster=x"], {"duration": "0s"}, "must be above 0"),
        (["cluster=x"], {"duration": "31d"}, "at most 30d"),
        (["cluster=x"], {"duration": "1h", "end": "2025-06-02T00:00:00Z"}, "not both"),
        (["cluster=x"], {"end": "tomorrow"}, "not an RFC 3339 time"),
        (["cluster=x"], {"end": "2025-06-02T00:00:00"}, "give a time zone"),
        (["cluster=x"], {"end": "2025-05-01T00:00:00Z"}, "in the past"),
        (["cluster=x"], {"comment": " "}, "--comment is empty"),
        (["cluster=x"], {"author": ""}, "--author is empty"),
    ],
)
def test_bad_silences_are_refused_with_one_line(
    matchers: list[str], options: dict[str, str], problem: str
) -> None:
    arguments: dict[str, Any] = {"author": "alice", "comment": "why", "now": T0, **options}
    with pytest.raises(ConfigError) as caught:
        new_silence(matchers, **arguments)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


class Store:
    """SilenceStoreLike over a list of points, latest point per ID winning."""

    def __init__(self) -> None:
        self.points: list[tuple[datetime, Silence]] = []

    def silences(self) -> list[Silence]:
        latest: dict[str, tuple[datetime, Silence]] = {}
        for when, item in sorted(self.points, key=lambda point: point[0]):
            latest[item.id] = (when, item)
        return [
            Silence(s.id, s.matchers, s.starts_at, s.ends_at, s.created_by, s.comment, when)
            for when, s in latest.values()
        ]

    def save(self, silence: Silence, when: datetime | None = None) -> None:
        self.points.append((when or datetime.now(UTC), silence))


def test_expire_ends_a_silence_and_query_hides_it_unless_asked() -> None:
    store = Store()
    store.save(stored("cluster=summit", sid="a"), T0)
    store.save(stored("cluster=base", sid="b"), T0)
    now = T0 + timedelta(minutes=5)
    assert [s.id for s in query_silences(store, now=now).silences] == ["a", "b"]
    done = expire_silences(store, ["a"], now=now)
    assert [(r.id, r.status) for r in done.results] == [("a", "expired")]
    assert [s.id for s in query_silences(store, now=now).silences] == ["b"]
    assert [s.id for s in query_silences(store, expired=True, now=now).silences] == ["a", "b"]
    again = expire_silences(store, ["a"], now=now)
    assert [r.status for r in again.results] == ["already expired"]
    assert len(store.points) == 3  # nothing written for an expired one
    with pytest.raises(ConfigError, match="no silence with ID 'zz'"):
        expire_silences(store, ["b", "zz"], now=now)
    assert len(store.points) == 3  # an unknown ID: nothing written, b included


def test_expire_writes_after_the_stored_point_even_with_a_clock_behind() -> None:
    store = Store()
    store.save(stored("cluster=summit", sid="a"), T0 + timedelta(minutes=10))
    expire_silences(store, ["a"], now=T0 + timedelta(minutes=5))  # a clock 5 minutes behind
    (latest,) = store.silences()
    assert latest.ends_at == T0 + timedelta(minutes=5)
    assert latest.updated_at == T0 + timedelta(minutes=10, milliseconds=1)


def test_silence_points_round_trip() -> None:
    item = stored("pod=prepull-*", "severity!~info")
    point = silence_point(item, T0)
    fields = cast(dict[str, Any], point._fields)
    row = {"id": item.id, "_time": T0, **fields}
    assert silence_from_row(row) == Silence(
        item.id, item.matchers, item.starts_at, item.ends_at, "alice", "maintenance", T0
    )
    assert point.to_line_protocol().startswith("silence,id=s1 ")


def test_silence_states() -> None:
    item = stored("cluster=x", start=T0, hours=1)
    assert item.state(T0 - timedelta(seconds=1)) is SilenceState.PENDING
    assert item.state(T0) is SilenceState.ACTIVE
    assert item.state(T0 + timedelta(hours=1)) is SilenceState.EXPIRED


# Muting


def test_active_silences_mute_matching_alerts_only() -> None:
    alerts = [alert(pod="prepull-1"), alert(pod="hub-1"), alert(cluster="base", pod="prepull-2")]
    silences = [
        stored("cluster=summit", "pod=prepull-*", sid="now"),
        stored("cluster=base", start=T0 + timedelta(hours=2), sid="later"),
        stored("cluster=base", start=T0 - timedelta(hours=2), sid="over"),
    ]
    kept, silenced = silence(alerts, silences, T0 + timedelta(minutes=1))
    assert [a.labels["pod"] for a in kept] == ["hub-1", "prepull-2"]
    assert [(s.alert.labels["pod"], s.silence_id) for s in silenced] == [("prepull-1", "now")]


def test_a_silent_cluster_inhibits_its_application_findings_only() -> None:
    source = alert("silent", application="all", severity="critical", key="silent/summit/all/c")
    alerts = [
        source,
        alert("restarts"),
        alert("not_running", application="portal"),
        alert("silent", application="portal", key="silent/summit/portal/p"),
        alert("restarts", cluster="base"),  # another cluster
        alert("site_down", cluster="usdf", application="site", key="site_down/usdf/site/u"),
    ]
    kept, inhibited = inhibit(alerts, DEFAULT_INHIBIT_RULES)
    assert [a.dedup_key for a in kept] == [
        source.dedup_key,
        alerts[4].dedup_key,
        alerts[5].dedup_key,
    ]
    assert {(i.rule, i.source) for i in inhibited} == {("silent-cluster", source.dedup_key)}
    assert len(inhibited) == 3


def test_site_down_inhibits_that_clusters_application_findings() -> None:
    down = alert("site_down", cluster="base", application="site", key="site_down/base/site/u")
    target = alert("cpu", cluster="base")
    other = alert("cpu", cluster="summit")
    kept, inhibited = inhibit([down, target, other], DEFAULT_INHIBIT_RULES)
    assert kept == [down, other]
    assert [(i.alert, i.rule) for i in inhibited] == [(target, "site-down")]


def test_a_resolved_source_inhibits_nothing_and_an_alert_never_inhibits_itself() -> None:
    source = alert("silent", application="all", key="silent/summit/all/c")
    resolved = Alert(**{**source.__dict__, "status": AlertStatus.RESOLVED})
    target = alert("restarts")
    assert inhibit([resolved, target], DEFAULT_INHIBIT_RULES)[1] == []
    rule = DEFAULT_INHIBIT_RULES[0]
    assert not rule.inhibits(source, source)


def test_indexed_inhibition_agrees_with_the_rule_pair_by_pair_and_is_fast() -> None:
    rng = random.Random(17)
    rules = (
        *DEFAULT_INHIBIT_RULES,
        InhibitRule(
            "both-sides",
            source=(parse_matcher("severity=critical"),),
            target=(parse_matcher("check=~restarts|cpu"),),
            equal=("cluster", "application"),
        ),
    )
    checks = ["restarts", "cpu", "silent", "site_down", "not_running"]
    alerts = [
        alert(
            rng.choice(checks),
            cluster=rng.choice(["summit", "base", "usdf"]),
            application=rng.choice(["all", "nublado", "mobu", "site"]),
            severity=rng.choice(["critical", "warning"]),
            pod=f"p{i}",
        )
        for i in range(300)
    ]
    _, inhibited = inhibit(alerts, rules)
    expected = {
        target.dedup_key
        for target in alerts
        if any(rule.inhibits(source, target) for rule in rules for source in alerts)
    }
    assert {held.alert.dedup_key for held in inhibited} == expected
    assert 0 < len(expected) < len(alerts)
    flood = [alert("cpu", pod=f"p{i}") for i in range(5000)]
    flood.append(alert("silent", application="all", key="silent/summit/all/c"))
    started = time.monotonic()
    _, held = inhibit(flood, DEFAULT_INHIBIT_RULES)
    assert len(held) == 5000 and time.monotonic() - started < 2


def test_plan_mutes_before_the_repeat_interval_and_mutes_resolved_notices_too() -> None:
    silenced_one = alert("cpu", pod="a")
    sent_before = alert("cpu", pod="b")
    gone = alert("cpu", pod="gone")
    records = [
        AlertRecord(
            T0, k.dedup_key, AlertStatus.FIRING, "cpu", "nublado", "summit", "warning", "default"
        )
        for k in (silenced_one, sent_before, gone)
    ]
    silences = [stored("pod=a", sid="s-a"), stored("pod=gone", sid="s-gone")]
    plan = plan_notifications(
        [silenced_one, sent_before],
        records,
        routes=[Route("default", HOOK)],
        options=NotifierOptions(send_resolved=True),
        silences=silences,
        now=T0 + timedelta(minutes=1),
    )
    assert plan.send == [] and plan.suppressed == [sent_before]
    assert [(s.alert.dedup_key, s.alert.status) for s in plan.silenced] == [
        (silenced_one.dedup_key, AlertStatus.FIRING),
        (gone.dedup_key, AlertStatus.RESOLVED),
    ]


# Per-route grouping and timing


def record(key: str, minutes_ago: float, cluster: str, route: str) -> AlertRecord:
    return AlertRecord(
        T0 - timedelta(minutes=minutes_ago),
        key,
        AlertStatus.FIRING,
        "restarts",
        "nublado",
        cluster,
        "warning",
        route,
    )


def test_each_route_has_its_own_repeat_interval_and_send_resolved() -> None:
    fast = Route(
        "fast", HOOK, clusters=frozenset({"base"}), repeat_seconds=600, send_resolved=False
    )
    slow = Route("slow", HOOK, clusters=frozenset({"summit"}), repeat_seconds=4 * 3600)
    routes = [fast, slow, Route("default", HOOK)]
    base, summit = alert(cluster="base"), alert(cluster="summit")
    records = [
        record(base.dedup_key, 30, "base", "fast"),  # older than fast's 10m: sent again
        record(summit.dedup_key, 30, "summit", "slow"),  # within slow's 4h: held back
        record("base-gone", 5, "base", "fast"),  # fast sends no resolved notices
        record("summit-gone", 5, "summit", "slow"),  # slow follows SEND_RESOLVED
        record("idf-gone", 90, "idfdev", "default"),  # older than the global 1h: forgotten
    ]
    plan = plan_alerts(
        [base, summit],
        records,
        send_resolved=True,
        routes=routes,
        repeat_seconds=3600,
        now=T0,
    )
    assert [(a.dedup_key, a.status) for a in plan.send] == [
        (base.dedup_key, AlertStatus.FIRING),
        ("summit-gone", AlertStatus.RESOLVED),
    ]
    assert plan.suppressed == [summit]
    assert records_window(routes, 3600) == 4 * 3600


def test_group_by_splits_a_routes_messages_per_group_most_severe_group_first() -> None:
    route = Route("teams", HOOK, group_by=("cluster",))
    alerts = [
        alert(cluster="summit", severity="critical"),
        alert(cluster="base", severity="warning"),
        alert(cluster="summit", severity="warning", pod="b"),
    ]
    messages, _ = plan_messages(alerts, [route])
    assert [(m.group, len(m.alerts)) for m in messages] == [
        ((("cluster", "summit"),), 2),
        ((("cluster", "base"),), 1),
    ]
    assert messages[0].text.startswith("*rubin-monitoring alerts* cluster=summit: 2 firing")
    hostile = plan_messages([alert(cluster="<!here>\n`x`")], [route])[0][0]
    assert hostile.text.splitlines()[0].startswith(
        "*rubin-monitoring alerts* cluster=&lt;!here&gt; 'x': 1 firing"
    )
    each = Route("each", HOOK, group_by=("...",))
    assert len(plan_messages(alerts, [each])[0]) == 3
    assert len(plan_messages(alerts, [Route("all", HOOK)])[0]) == 1


# The routes file


def routes_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return str(path)


def test_routes_file_with_timing_grouping_and_inhibit_rules(tmp_path: Path) -> None:
    path = routes_file(
        tmp_path,
        f"""routes:
  - name: summit
    webhook: {HOOK}
    clusters: summit
    group_by: [cluster, application]
    repeat_interval: 4h
    send_resolved: true
inhibit_rules:
  - name: maintenance
    source_matchers: [check=site_down]
    target_matchers: ['severity=~warning|info']
    equal: [cluster]
""",
    )
    routing = load_routing(HOOK, path)
    summit, default = routing.routes
    assert (summit.group_by, summit.repeat_seconds, summit.send_resolved) == (
        ("cluster", "application"),
        4 * 3600,
        True,
    )
    assert (default.group_by, default.repeat_seconds, default.send_resolved) == (None, None, None)
    assert [rule.name for rule in routing.inhibit_rules] == [
        "silent-cluster",
        "site-down",
        "maintenance",
    ]
    off = parse_routing("routes: []\ndefault_inhibit_rules: false\n", "f")
    assert off.inhibit_rules == ()
    assert load_routing(HOOK, None).inhibit_rules == DEFAULT_INHIBIT_RULES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    repeat_interval: 8d\n", "line 4: routes[0].repeat_interval: '8d' is longer than"),
        ("    repeat_interval: 4\n", "line 4: routes[0].repeat_interval: expected a duration"),
        ("    group_by: [pod]\n", "line 4: routes[0].group_by: unknown label 'pod'"),
        ("    group_by: ['...', cluster]\n", "stands alone"),
        ("    send_resolved: maybe\n", "routes[0].send_resolved: expected true or false"),
        (
            "inhibit_rules:\n  - source_matchers: [clustr=x]\n    target_matchers: [cluster=y]\n",
            "line 5: inhibit_rules[0].source_matchers: unknown label 'clustr'",
        ),
        ("inhibit_rules:\n  - source_matchers: [cluster=x]\n", "target_matchers is required"),
        (
            "inhibit_rules:\n  - name: site-down\n    source_matchers: [a=b]\n",
            "'site-down' is a built-in rule's name",
        ),
        (
            "inhibit_rules:\n  - source_matchers: [cluster=x]\n    target_matchers: [cluster=y]\n"
            "    equal: [team]\n",
            "inhibit_rules[0].equal: expected labels",
        ),
        ("default_inhibit_rules: no-thanks\n", "default_inhibit_rules: expected true or false"),
    ],
)
def test_bad_timing_grouping_or_rules_are_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    base = f"routes:\n  - name: a\n    webhook: {HOOK}\n"
    with pytest.raises(ConfigError) as caught:
        load_routing(None, routes_file(tmp_path, base + text))
    message = str(caught.value)
    assert expected in message and "\n" not in message and "SECRETxyz" not in message


def test_global_repeat_interval_beyond_alerted_retention_is_refused() -> None:
    assert load_settings({}, NOTIFIER, environ={"ALERT_REPEAT_INTERVAL": "7d"}).notifier
    with pytest.raises(ConfigError, match=r"ALERT_REPEAT_INTERVAL.*longer than the retention"):
        load_settings({}, NOTIFIER, environ={"ALERT_REPEAT_INTERVAL": "8d"})


# The heartbeat


def task(
    name: str = "mobu cpu",
    *,
    status: str = "active",
    last: str | None = "success",
    completed: datetime | None = T0,
    every: str = "5m",
    marked: bool = True,
) -> ObservedTask:
    return ObservedTask(
        id=name,
        name=name,
        flux="",
        every=every,
        offset="30s",
        status=status,
        description=task_description("mobu", "cpu") if marked else "by hand",
        owner_id="bot",
        last_run_status=last,
        last_run_error="could not find bucket" if last == "failed" else None,
        latest_completed=completed.isoformat().replace("+00:00", "Z") if completed else None,
    )


def test_chain_is_healthy_only_when_every_check_task_ran_well_and_lately() -> None:
    now = T0 + timedelta(minutes=5)
    assert chain_problems([task(), task("handmade", last="failed", marked=False)], now) == []
    assert chain_problems([], now) == ["no check task of the toolkit's exists (run taskmaker)"]
    (failed,) = chain_problems([task(last="failed")], now)
    assert "last run failed (could not find bucket)" in failed
    assert chain_problems([task(status="inactive")], now) == ["task mobu cpu is inactive"]
    # 2 x 5m + 30s offset + 1m grace: 11m30s
    assert chain_problems([task()], T0 + timedelta(minutes=11, seconds=30)) == []
    (late,) = chain_problems([task()], T0 + timedelta(minutes=11, seconds=31))
    assert "more than 11m30s ago" in late
    assert "never" in chain_problems([task(completed=None)], now)[0]


class Pinger:
    def __init__(self, error: HeartbeatError | None = None) -> None:
        self.calls = 0
        self.error = error

    def ping(self) -> int:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return 1


def report(**changes: Any) -> NotifierReport:
    values: dict[str, Any] = {
        "dry_run": False,
        "findings": 0,
        "alerts": 0,
        "suppressed": [],
        "results": [],
    }
    return NotifierReport(**{**values, **changes})


def test_heartbeat_is_called_only_after_a_good_run_of_a_healthy_chain() -> None:
    now = T0 + timedelta(minutes=1)
    pinger = Pinger()
    sent = heartbeat(report(), lambda: [task()], pinger, now=now)
    assert (sent.status, pinger.calls) == (HeartbeatStatus.SENT, 1)
    skipped = heartbeat(report(dry_run=True), lambda: [task()], pinger, now=now)
    assert skipped.status is HeartbeatStatus.SKIPPED and skipped.reason == "dry run"
    unhealthy = heartbeat(report(), lambda: [task(last="failed")], pinger, now=now)
    assert unhealthy.status is HeartbeatStatus.SKIPPED and "last run failed" in unhealthy.reason
    failed_run = report(unrouted=[alert()])
    assert "did not succeed (exit 1)" in heartbeat(failed_run, lambda: [task()], pinger).reason
    assert pinger.calls == 1

    def gone() -> list[ObservedTask]:
        raise InfluxDBUnavailableError("cannot reach InfluxDB")

    lost = report()
    assert heartbeat(lost, gone, pinger, now=now).status is HeartbeatStatus.SKIPPED
    assert lost.exit_code == 3 and pinger.calls == 1
    broken = report()
    broken.heartbeat = heartbeat(
        broken, lambda: [task()], Pinger(HeartbeatError("answered 500", 3)), now=now
    )
    assert broken.heartbeat.status is HeartbeatStatus.FAILED and broken.exit_code == 1


def test_report_shows_silenced_inhibited_and_heartbeat_in_text_and_json() -> None:
    _, inhibited = inhibit(
        [alert("silent", application="all", key="silent/summit/all/c"), alert()],
        DEFAULT_INHIBIT_RULES,
    )
    _, silenced = silence([alert(cluster="base")], [stored("cluster=base")], T0)
    shown = report(dry_run=True, silenced=silenced, inhibited=inhibited)
    shown.heartbeat = heartbeat(shown, lambda: [], Pinger())
    text = render_text(shown)
    assert "  silenced firing warning base/nublado restarts (" in text and "by silence s1" in text
    assert "by silent/summit/all/c (rule silent-cluster)" in text
    assert "  heartbeat skipped: dry run" in text
    assert "1 silenced, 1 inhibited" in text
    data = to_json(shown)
    summary = cast(dict[str, int], data["summary"])
    assert (summary["silenced"], summary["inhibited"]) == (1, 1)
    assert cast(list[dict[str, Any]], data["silenced"])[0]["silence_id"] == "s1"
    assert cast(list[dict[str, Any]], data["inhibited"])[0]["rule"] == "silent-cluster"
    assert data["heartbeat"] == {"status": "skipped", "reason": "dry run", "attempts": 0}
    json.dumps(data)


def test_pinger_gets_the_url_retries_5xx_and_never_shows_it() -> None:
    path = "/ping/SECRETxyz-heartbeat"
    waits: list[float] = []
    with slack_server() as server:
        pinger = HeartbeatPinger(server.url(path), timeout=2, sleep=waits.append)
        assert pinger.ping() == 1
        server.script(path, Fail(500), Fail(503))
        assert pinger.ping() == 3 and waits == [1.0, 2.0]
        server.script(path, Fail(404, "no such check"))
        with pytest.raises(HeartbeatError) as wrong:
            pinger.ping()
        assert wrong.value.attempts == 1 and wrong.value.reason == "answered 404"
        assert [post.method for post in server.posts()] == ["GET"] * 5
    refused = HeartbeatPinger("http://127.0.0.1:9/ping/SECRETxyz", sleep=waits.append)
    with pytest.raises(HeartbeatError) as caught:
        refused.ping()
    assert caught.value.attempts == 3
    assert_no_secret(str(caught.value), repr(refused))

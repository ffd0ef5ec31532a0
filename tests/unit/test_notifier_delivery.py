"""Delivery against a local Slack webhook server: pacing, retries, timeouts, record-after-ok.

InfluxDB is replaced by an in-memory store here; tests/integration/test_notifier.py runs the
same paths against a real influxd.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rubin_monitoring.exceptions import (
    ConfigError,
    InfluxDBAuthError,
    InfluxDBError,
    InfluxDBUnavailableError,
    RubinMonitoringError,
)
from rubin_monitoring.models.alerts import Alert, AlertRecord, AlertStatus, Delivery, Finding, Route
from rubin_monitoring.render import render_text, to_json
from rubin_monitoring.services.notifier import NotifierOptions, run_notifier
from rubin_monitoring.storage.retry import RetryPolicy
from rubin_monitoring.storage.slack import (
    DEFAULT_MIN_INTERVAL,
    SlackDeliveryError,
    SlackWebhooks,
    WebhookPacer,
)
from rubin_monitoring.testing.slack_server import (
    SECRET_PATH,
    Fail,
    Hang,
    RateLimited,
    SlackServer,
    assert_no_secret,
    min_gap,
    slack_server,
)

FAST = RetryPolicy(attempts=3, backoff_seconds=0.1, max_wait_seconds=5)


@pytest.fixture(autouse=True)
def _no_webhook_in_output(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    assert_no_secret(out, err, *(record.getMessage() for record in caplog.records))


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with slack_server() as server:
        yield server


class MemoryStore:
    """The AlertStore interface over lists; ``crash_on_record`` simulates dying after ``ok``."""

    def __init__(self, findings: Iterable[Finding] = ()) -> None:
        self.rows = list(findings)
        self.saved: list[AlertRecord] = []
        self.fail_record: BaseException | None = None
        self.read_only: BaseException | None = None
        self._lock = threading.Lock()

    def findings(self, lookback_seconds: int) -> list[Finding]:
        return list(self.rows)

    def records(self, since_seconds: int) -> list[AlertRecord]:
        return list(self.saved)

    def check_writable(self) -> None:
        if self.read_only is not None:
            raise self.read_only

    def record(self, alerts: Iterable[Alert], route: str, when: datetime | None = None) -> None:
        if self.fail_record is not None:
            error, self.fail_record = self.fail_record, None
            raise error
        moment = when or datetime.now(UTC)
        with self._lock:
            self.saved.extend(
                AlertRecord(
                    moment,
                    a.dedup_key,
                    a.status,
                    a.check,
                    a.application,
                    a.cluster,
                    a.severity,
                    route,
                    a.message,
                    a.value,
                )
                for a in alerts
            )


def findings(count: int, cluster: str = "idfdev", length: int = 80) -> list[Finding]:
    now = datetime.now(UTC)
    return [
        Finding(
            now - timedelta(seconds=i),
            "restarts",
            f"app{i % 7}",
            cluster,
            "critical" if i % 3 else "warning",
            f"{cluster}-k{i}",
            f"pod app-{i} restarted " + "x" * length,
            float(i),
        )
        for i in range(count)
    ]


class Crash(BaseException):
    """Stands for the process dying: not an error the notifier handles."""


# Pacing


def test_pacer_spaces_starts_per_key_and_defers() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = WebhookPacer(1.0, clock=lambda: now[0], sleep=sleep)
    assert [pacer.acquire("a") for _ in range(3)] == [0.0, 1.0, 1.0]
    assert pacer.acquire("b") == 0.0  # another webhook does not wait for "a"
    pacer.defer("a", 5.0)
    assert pacer.acquire("a") == 5.0
    assert slept == [1.0, 1.0, 5.0]


def test_default_pacing_is_one_request_per_second_per_webhook(slack: SlackServer) -> None:
    assert DEFAULT_MIN_INTERVAL == 1.0
    sender = SlackWebhooks()  # the defaults the notifier command uses
    other = slack.url("/services/T000/B001/other")
    threads = [
        threading.Thread(
            target=sender.post, args=(slack.url(), {"text": str(i)}), kwargs={"route": "a"}
        )
        for i in range(4)
    ] + [threading.Thread(target=sender.post, args=(other, {"text": "x"}), kwargs={"route": "b"})]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = [post.arrived for post in slack.delivered(SECRET_PATH)]
    assert len(times) == 4
    gap = min_gap(times)
    assert gap is not None and gap >= 0.95
    # The other webhook was not held back behind the first one's queue.
    (other_post,) = slack.delivered("/services/T000/B001/other")
    assert other_post.arrived - started < 0.9


# Retries


def test_429_waits_retry_after_then_delivers(slack: SlackServer) -> None:
    slack.script(SECRET_PATH, RateLimited(retry_after=1))
    sent = SlackWebhooks(retry=FAST, min_interval=0.05).post(slack.url(), {"text": "x"}, route="r")
    assert sent.attempts == 2
    first, second = slack.posts()
    assert second.ok and second.arrived - first.arrived >= 0.95


def test_500_retries_with_backoff_a_bounded_number_of_times(slack: SlackServer) -> None:
    slack.default(SECRET_PATH, Fail(500, "rollup_error"))
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    with pytest.raises(SlackDeliveryError, match="500 'rollup_error' after 3 attempts") as info:
        sender.post(slack.url(), {"text": "x"}, route="r")
    assert info.value.attempts == 3 and info.value.route_broken
    assert len(slack.posts()) == 3


def test_4xx_is_not_retried(slack: SlackServer) -> None:
    slack.script(SECRET_PATH, Fail(400, "invalid_payload"))
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    with pytest.raises(SlackDeliveryError, match="invalid_payload") as info:
        sender.post(slack.url(), {"text": "x"}, route="r")
    assert info.value.attempts == 1 and not info.value.route_broken
    slack.script(SECRET_PATH, Fail(404, "no_service"))
    with pytest.raises(SlackDeliveryError) as info:
        sender.post(slack.url(), {"text": "x"}, route="r")
    assert info.value.route_broken


def test_retry_after_beyond_the_cap_is_left_for_the_next_run(slack: SlackServer) -> None:
    slack.script(SECRET_PATH, RateLimited(retry_after=600))
    with pytest.raises(SlackDeliveryError, match="left for the next run"):
        SlackWebhooks(retry=FAST).post(slack.url(), {"text": "x"}, route="r")
    assert len(slack.posts()) == 1


def test_hung_slack_times_out_within_bounds(slack: SlackServer) -> None:
    slack.default(SECRET_PATH, Hang(30))
    policy = RetryPolicy(attempts=2, backoff_seconds=0.1)
    started = time.monotonic()
    with pytest.raises(SlackDeliveryError, match=r"(?i)timed out") as info:
        SlackWebhooks(timeout=1, retry=policy, min_interval=0.05).post(
            slack.url(), {"text": "x"}, route="r"
        )
    assert time.monotonic() - started < 5
    assert info.value.attempts == 2
    assert_no_secret(str(info.value))


def test_unreachable_and_invalid_webhooks_fail_without_showing_the_url() -> None:
    with slack_server() as gone:
        url = gone.url()
    with pytest.raises(SlackDeliveryError) as info:
        SlackWebhooks(retry=FAST, min_interval=0.05).post(url, {"text": "x"}, route="r")
    assert info.value.attempts == 3
    with pytest.raises(SlackDeliveryError) as invalid:
        SlackWebhooks(retry=FAST).post("ftp://x" + SECRET_PATH, {"text": "x"}, route="r")
    assert_no_secret(str(info.value), str(invalid.value))


# The notifier over a store and the Slack server


def options(**kwargs: object) -> NotifierOptions:
    return NotifierOptions(**kwargs)  # type: ignore[arg-type]


def test_each_alert_sent_once_then_suppressed(slack: SlackServer) -> None:
    store = MemoryStore(findings(5) + findings(5))  # every key twice
    route = Route("default", slack.url())
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    report = run_notifier(store, sender, [route], options())
    assert report.exit_code == 0 and report.summary()["sent"] == 5
    (post,) = slack.delivered()
    assert post.text.count("\n") == 5 and "*CRITICAL*" in post.text and "*WARNING*" in post.text
    assert sorted(r.dedup_key for r in store.saved) == sorted(f"idfdev-k{i}" for i in range(5))
    again = run_notifier(store, sender, [route], options())
    assert again.results == [] and len(again.suppressed) == 5 and again.exit_code == 0
    assert len(slack.posts()) == 1


def test_failed_send_is_not_recorded_and_goes_out_next_run(slack: SlackServer) -> None:
    store = MemoryStore(findings(3))
    route = Route("default", slack.url())
    slack.script(SECRET_PATH, Fail(500), Fail(500), Fail(500))
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    first = run_notifier(store, sender, [route], options())
    assert first.exit_code == 1 and store.saved == [] and slack.delivered() == []
    assert first.results[0].status is Delivery.FAILED and first.summary()["failed"] == 3
    second = run_notifier(store, sender, [route], options())
    assert second.exit_code == 0 and len(slack.delivered()) == 1 and len(store.saved) == 3


def test_crash_between_send_and_record_repeats_at_most_once(slack: SlackServer) -> None:
    store = MemoryStore(findings(2))
    route = Route("default", slack.url())
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    store.fail_record = Crash()
    with pytest.raises(Crash):
        run_notifier(store, sender, [route], options())
    assert len(slack.delivered()) == 1 and store.saved == []
    run_notifier(store, sender, [route], options())  # the one repeat
    run_notifier(store, sender, [route], options())
    assert len(slack.delivered()) == 2 and len(store.saved) == 2


@pytest.mark.parametrize(
    "failure",
    [
        InfluxDBUnavailableError("cannot reach InfluxDB"),
        InfluxDBError("POST", "/api/v2/write", 500, "engine: disk full"),
        ConfigError("bucket alerted_ not found"),
    ],
)
def test_record_failure_stops_sending_and_exits_3(
    slack: SlackServer, failure: RubinMonitoringError
) -> None:
    """Whatever keeps alerted_ from being written, the run stops and exits 3 (as documented)."""
    store = MemoryStore(findings(40, length=200))
    route = Route("default", slack.url())
    store.fail_record = failure
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    report = run_notifier(store, sender, [route], options(max_chars=3000))
    statuses = [result.status for result in report.results]
    assert statuses[0] is Delivery.UNRECORDED and set(statuses[1:]) == {Delivery.SKIPPED}
    assert report.exit_code == 3 and len(slack.posts()) == 1


def test_a_broken_webhook_does_not_hold_up_the_others(slack: SlackServer) -> None:
    store = MemoryStore(findings(30, "summit", 200) + findings(30, "base", 200))
    broken = Route("summit", slack.url(), clusters=frozenset({"summit"}))
    fine = Route("base", slack.url("/services/T000/B002/base"), clusters=frozenset({"base"}))
    slack.default(SECRET_PATH, Fail(404, "no_service"))
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    report = run_notifier(store, sender, [broken, fine], options(max_chars=3000))
    summit = [r.status for r in report.results if r.message.route is broken]
    assert summit[0] is Delivery.FAILED and set(summit[1:]) == {Delivery.SKIPPED}
    assert len(slack.posts(SECRET_PATH)) == 1
    assert all(r.status is Delivery.SENT for r in report.results if r.message.route is fine)
    assert {r.cluster for r in store.saved} == {"base"}
    assert report.exit_code == 1


def test_send_resolved_announces_keys_that_stopped_appearing(slack: SlackServer) -> None:
    store = MemoryStore(findings(2))
    route = Route("default", slack.url())
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    run_notifier(store, sender, [route], options(send_resolved=True))
    store.rows = store.rows[:1]  # idfdev-k1 stops appearing
    report = run_notifier(store, sender, [route], options(send_resolved=True))
    assert report.summary()["resolved"] == 1
    assert "*RESOLVED*" in slack.delivered()[-1].text and "1 resolved" in slack.delivered()[-1].text
    assert store.saved[-1].status is AlertStatus.RESOLVED
    # Once resolved, nothing more is said about it; off by default.
    assert run_notifier(store, sender, [route], options(send_resolved=True)).results == []
    assert len(slack.delivered()) == 2


def test_dry_run_sends_and_records_nothing(slack: SlackServer) -> None:
    store = MemoryStore(findings(3))
    report = run_notifier(
        store, SlackWebhooks(), [Route("default", slack.url())], options(dry_run=True)
    )
    assert slack.posts() == [] and store.saved == []
    text = render_text(report)
    assert "route default, message 1/1, 3 alerts" in text and "*CRITICAL*" in text
    assert to_json(report)["dry_run"] is True and report.exit_code == 0
    assert_no_secret(text, str(to_json(report)))


def test_a_store_that_cannot_record_gets_nothing_sent(slack: SlackServer) -> None:
    """The run proves it can write alerted_ before the first message: if it cannot, nothing is
    sent (it would be sent again on every run), and the run exits 3."""
    store = MemoryStore(findings(40, length=200))
    store.read_only = InfluxDBAuthError("POST", "/api/v2/write", 403, "insufficient permissions")
    sender = SlackWebhooks(retry=FAST, min_interval=0.05)
    report = run_notifier(store, sender, [Route("default", slack.url())], options(max_chars=3000))
    assert {result.status for result in report.results} == {Delivery.SKIPPED}
    assert report.exit_code == 3
    assert slack.posts() == [] and store.saved == []

from __future__ import annotations

import pytest

from rubin_monitoring.config import BUCKETS, COMMON, INFLUXDB, InfluxDBSettings, load_settings
from rubin_monitoring.durations import (
    format_duration,
    parse_duration,
    parse_retention,
    retention_policy_name,
)
from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.storage.gitrepo import redact_url
from rubin_monitoring.storage.retry import RetryPolicy, parse_retry_after

INFLUX = {"INFLUXDB_URL": "http://influx:8086", "INFLUXDB_TOKEN": "t", "INFLUXDB_ORG": "o"}


def test_flags_win_over_environment_and_influx_cli_names_are_accepted() -> None:
    env = {
        "INFLUX_HOST": "http://influx:8086/",
        "INFLUX_TOKEN": "tok",
        "INFLUX_ORG": "o",
        "FORCE": "yes",
    }
    settings = load_settings({"influxdb_org": "flag-org"}, environ=env)
    assert settings.influxdb == InfluxDBSettings("http://influx:8086", "tok", "flag-org")
    assert settings.reconcile.force is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FORCE": "maybe"}, "invalid FORCE (--force): 'maybe' is not a boolean"),
        ({"INFLUXDB_URL": "influx:8086"}, "invalid INFLUXDB_URL (--influxdb-url)"),
        (
            {"BUCKET_RETENTION": "30m"},
            "invalid BUCKET_RETENTION (--bucket-retention): '30m' is "
            "shorter than InfluxDB's minimum retention of 1h",
        ),
        ({"LOG_FORMAT": "xml"}, "invalid LOG_FORMAT (--log-format): 'xml' is not one of"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ=env)
    assert str(error.value).startswith(message)


def test_secret_values_are_not_echoed_and_missing_ones_are_named() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ={"INFLUXDB_TOKEN": "   "})
    assert str(error.value) == "invalid INFLUXDB_TOKEN (--influxdb-token): invalid value"
    with pytest.raises(ConfigError, match=r"^INFLUXDB_TOKEN \(--influxdb-token\) is not set$"):
        load_settings({}, environ={"INFLUXDB_URL": "http://x"})


def test_settings_of_other_jobs_are_ignored() -> None:
    settings = load_settings(
        {},
        [*COMMON, *INFLUXDB, *BUCKETS],
        environ={**INFLUX, "FORCE": "garbage", "CONCURRENCY": "-1"},
    )
    assert settings.reconcile.force is False and settings.reconcile.concurrency == 8


def test_durations() -> None:
    assert parse_duration("7d") == 604800
    assert parse_duration("1h30m") == 5400
    assert parse_retention("inf") == 0
    assert parse_retention("30d") == 30 * 86400
    assert format_duration(604800) == "1w"
    assert format_duration(30 * 86400) == "4w2d"
    assert retention_policy_name(0) == "inf"
    assert retention_policy_name(3600) == "1h"
    with pytest.raises(ValueError):
        parse_duration("7 days")


def test_retry_waits_honour_retry_after_and_back_off() -> None:
    policy = RetryPolicy(attempts=4, backoff_seconds=0.5, max_wait_seconds=10)
    assert [policy.wait(n, None) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.wait(1, 7.0) == 7.0
    assert policy.wait(1, 99.0) == 10
    # Retry-After shorter than the backoff (0 included) does not hurry the retry.
    assert [policy.wait(n, 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.wait(3, 1.0) == 2.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_credentials_are_redacted_from_git_urls() -> None:
    assert (
        redact_url("https://user:ghp_secret@github.com/o/r.git") == "https://***@github.com/o/r.git"
    )
    assert redact_url("file:///tmp/repo") == "file:///tmp/repo"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHECK_EVERY": "5M"}, "invalid CHECK_EVERY (--check-every): duration '5M'"),
        ({"CHECK_WINDOW": "30m1h"}, "invalid CHECK_WINDOW (--check-window): duration '30m1h'"),
        ({"CHECK_EVERY": "0s"}, "invalid CHECK_EVERY (--check-every): '0s' must be at least 1s"),
        ({"CPU_THRESHOLD": "0"}, "invalid CPU_THRESHOLD (--cpu-threshold): percentage '0'"),
        ({"CHECKS": "cpu,disks"}, "invalid CHECKS (--checks): unknown check 'disks'"),
    ],
)
def test_task_settings_follow_the_flux_rules(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ=env)
    assert str(error.value).startswith(message)


def test_pending_grace_may_be_zero() -> None:
    settings = load_settings({}, environ={**INFLUX, "PENDING_GRACE": "0s"})
    assert settings.checks.pending_grace == "0s"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:s3cr3t@influx:8086", "must not contain credentials"),
        ("http://:s3cr3t@influx:8086", "must not contain credentials"),
        ("http://influx:8086/x", "must be the server's base URL http://influx:8086 without a path"),
        ("ftp://influx", "is not an http(s) URL"),
    ],
)
def test_influxdb_url_is_a_base_url_without_credentials(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({}, INFLUXDB, environ={**INFLUX, "INFLUXDB_URL": url})
    assert message in str(error.value)
    assert "s3cr3t" not in str(error.value) and "\n" not in str(error.value)

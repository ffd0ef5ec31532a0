"""Rendering the Flux checks: parsing settings, escaping, and the shape of every script."""

from __future__ import annotations

import re

import pytest

from rubin_monitoring.config import TASKS, load_settings, parse_checks, parse_ignore_rules
from rubin_monitoring.durations import parse_duration
from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.checks import (
    BUCKET_CHECKS,
    CHECK_NAMES,
    DEFAULT_SEVERITY,
    FLEET_CHECKS,
    CheckSettings,
)
from rubin_monitoring.services.checks import (
    flux_float,
    flux_string,
    render_check,
    render_fleet_check,
    render_silent_check,
)


def render(check: str, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "bucket": "mobu_x",
        "task_name": f"mobu_x-{check}",
        "offset": "1m",
        "settings": CheckSettings(),
    }
    arguments.update(overrides)
    return render_check(check, **arguments)  # type: ignore[arg-type]


def parse_check_params(
    every: str, window: str, cpu_threshold: str, memory_threshold: str, pending_grace: str
) -> CheckSettings:
    """The check settings as the toolkit loads them from the environment (validated once)."""
    environ = {
        "CHECK_EVERY": every,
        "CHECK_WINDOW": window,
        "CPU_THRESHOLD": cpu_threshold,
        "MEMORY_THRESHOLD": memory_threshold,
        "PENDING_GRACE": pending_grace,
    }
    return load_settings({}, TASKS, environ=environ).checks


# parse_checks


def test_parse_checks_keeps_order_and_drops_duplicates() -> None:
    assert parse_checks("restarts, cpu") == ("restarts", "cpu")
    assert parse_checks(" CPU ,restarts,cpu,, not_running ") == ("cpu", "restarts", "not_running")
    assert parse_checks(",".join(CHECK_NAMES)) == CHECK_NAMES


@pytest.mark.parametrize("text", ["", " ", ",", " , ,"])
def test_parse_checks_rejects_empty(text: str) -> None:
    with pytest.raises(ValueError, match="no checks"):
        parse_checks(text)


def test_parse_checks_names_the_unknown_check() -> None:
    with pytest.raises(ValueError, match="'disks'"):
        parse_checks("restarts,disks")


# parse_check_params


def test_parse_check_params_defaults() -> None:
    assert parse_check_params("5m", "10m", "90", "90", "10m") == CheckSettings()
    defaults = (
        "restarts", "not_running", "cpu", "oom_killed", "argocd_app", "http_5xx", "cert_expiry",
        "silent",
    )  # fmt: skip
    assert CheckSettings() == CheckSettings(defaults, "5m", "10m", 90.0, 90.0, "10m")
    assert DEFAULT_SEVERITY == {
        "restarts": "warning",
        "not_running": "critical",
        "cpu": "warning",
        "memory": "warning",
        "oom_killed": "warning",
        "job_failed": "warning",
        "argocd_app": "warning",
        "http_5xx": "critical",
        "silent": "critical",
        "disk": "warning",
        "site_down": "critical",
        "tls_expiry": "warning",
        "cert_expiry": "warning",
    }
    assert set(DEFAULT_SEVERITY) == set(CHECK_NAMES)


def test_parse_check_params_accepts_compound_durations_and_decimals() -> None:
    params = parse_check_params(" 30s", "1h30m", "95.5", "1000", "0s")
    assert params == CheckSettings(CheckSettings().checks, "30s", "1h30m", 95.5, 1000.0, "0s")


@pytest.mark.parametrize(
    ("every", "window", "grace", "bad"),
    [
        ("5", "10m", "10m", "'5'"),
        ("5x", "10m", "10m", "'5x'"),
        ("1.5m", "10m", "10m", "'1.5m'"),
        ("-5m", "10m", "10m", "'-5m'"),
        ("0s", "10m", "10m", "'0s'"),
        ("500ms", "10m", "10m", "'500ms'"),
        ("5m", "30m1h", "10m", "'30m1h'"),
        ("5m", "1h1h", "10m", "'1h1h'"),
        ("5m", "", "10m", "''"),
        ("5m", "0m", "10m", "'0m'"),
        ("5m", "10m", "ten minutes", "'ten minutes'"),
    ],
)
def test_parse_check_params_rejects_bad_durations(
    every: str, window: str, grace: str, bad: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(bad)):
        parse_check_params(every, window, "90", "90", grace)


@pytest.mark.parametrize("value", ["abc", "", "0", "-5", "1000.5", "nan", "inf", "1e9"])
def test_parse_check_params_rejects_bad_thresholds(value: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"CPU_THRESHOLD (--cpu-threshold): percentage {value!r}")
    ):
        parse_check_params("5m", "10m", value, "90", "10m")
    with pytest.raises(
        ConfigError, match=re.escape(f"MEMORY_THRESHOLD (--memory-threshold): percentage {value!r}")
    ):
        parse_check_params("5m", "10m", "90", value, "10m")


def test_flux_duration_rules() -> None:
    assert parse_duration("1w2d3h4m5s") == 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5
    assert parse_duration("0s") == 0
    with pytest.raises(ValueError, match="units h, m, s"):
        parse_duration("1d", units="hms", what="task offset")


# escaping


def test_flux_string_escapes() -> None:
    assert flux_string("mobu") == '"mobu"'
    assert flux_string('a"b') == '"a\\"b"'
    assert flux_string("a\\b") == '"a\\\\b"'
    assert flux_string("cost ${x}") == '"cost \\${x}"'
    assert flux_string("$5 {x}") == '"$5 {x}"'
    assert flux_string("a\nb\tc\r") == '"a\\nb\\tc\\r"'


@pytest.mark.parametrize(
    ("value", "literal"),
    [(90.0, "90.0"), (95.5, "95.5"), (1000, "1000.0"), (1e-05, "0.00001"), (0.1, "0.1")],
)
def test_flux_float(value: float, literal: str) -> None:
    assert flux_float(value) == literal


# render_check


@pytest.mark.parametrize("check", BUCKET_CHECKS)
def test_first_line_is_the_task_option(check: str) -> None:
    script = render(check)
    first = script.splitlines()[0]
    assert first == f'option task = {{name: "mobu_x-{check}", every: 5m, offset: 1m}}'
    assert script.endswith(")\n")
    assert script.count("option task") == 1


@pytest.mark.parametrize("check", BUCKET_CHECKS)
def test_script_reads_the_app_bucket_and_writes_the_output_contract(check: str) -> None:
    script = render(check)
    assert 'application = "mobu_x"' in script
    assert "from(bucket: application)" in script
    assert 'alertBucket = "multiapp_"' in script
    assert "to(\n        bucket: alertBucket," in script
    assert 'tagColumns: ["check", "application", "cluster", "severity", "dedup_key"]' in script
    assert "fieldFn: (r) => ({message: r.message, value: r.value})" in script
    assert f'checkName = "{check}"' in script
    assert f'severity = "{DEFAULT_SEVERITY[check]}"' in script
    assert '_measurement: "alert"' in script
    assert "_time: now()" in script
    # No organization (tasks write to their own), no import (must precede "option task").
    assert "org:" not in script
    assert "orgID" not in script
    assert not re.search(r"^\s*import\b", script, re.MULTILINE)
    assert "{{" not in script
    assert "{%" not in script


def test_render_is_deterministic() -> None:
    assert render("cpu") == render("cpu")


def test_alert_bucket_is_a_parameter() -> None:
    assert 'alertBucket = "alerts_test"' in render("restarts", alert_bucket="alerts_test")


def test_strings_are_escaped_everywhere() -> None:
    script = render("restarts", bucket='we"ird\\${app}', task_name='t"1')
    assert script.splitlines()[0] == 'option task = {name: "t\\"1", every: 5m, offset: 1m}'
    assert 'application = "we\\"ird\\\\\\${app}"' in script
    assert 'we"ird' not in script.replace('we\\"ird', "")


def test_window_and_thresholds_are_rendered() -> None:
    params = CheckSettings(
        every="1m", window="15m", cpu_threshold=75.5, memory_threshold=80.0, pending_grace="5m"
    )
    assert "range(start: -15m)" in render("restarts", settings=params)
    assert 'windowText = "15m"' in render("restarts", settings=params)
    assert "threshold = 75.5\n" in render("cpu", settings=params)
    assert "threshold = 80.0\n" in render("memory", settings=params)
    not_running = render("not_running", settings=params)
    # Reads window + grace back, so it can tell how long a container has been starting.
    assert "range(start: -20m)" in not_running
    assert "windowSeconds = 900\n" in not_running
    assert "graceSeconds = 300\n" in not_running
    assert not_running.startswith('option task = {name: "mobu_x-not_running", every: 1m,')


def test_cpu_and_memory_use_limits_and_the_right_usage_fields() -> None:
    cpu = render("cpu")
    assert '"cpu_usage_nanocores"' in cpu
    assert '"resource_limits_millicpu_units"' in cpu
    memory = render("memory")
    assert '"memory_working_set_bytes"' in memory
    assert '"resource_limits_memory_bytes"' in memory


def test_unknown_check_is_rejected() -> None:
    with pytest.raises(ValueError, match="'disks'"):
        render("disks")
    with pytest.raises(ValueError, match="unknown application check 'disk'"):
        render("disk")


@pytest.mark.parametrize("offset", ["1d", "abc", "", "-1m", "1.5s"])
def test_bad_offset_is_rejected(offset: str) -> None:
    with pytest.raises(ValueError, match="task offset"):
        render("cpu", offset=offset)


@pytest.mark.parametrize("field", ["bucket", "task_name", "alert_bucket"])
def test_empty_names_are_rejected(field: str) -> None:
    with pytest.raises(ValueError, match="is empty"):
        render("cpu", **{field: " "})


def fleet_scripts() -> dict[str, str]:
    settings = CheckSettings()
    scripts = {
        check: render_fleet_check(check, task_name=f"x {check}", offset="1m", settings=settings)
        for check in FLEET_CHECKS
    }
    scripts["silent"] = render_silent_check(
        cluster="idfdev",
        buckets=["mobu", "times_square"],
        task_name="x silent",
        offset="1m",
        settings=settings,
    )
    return scripts


@pytest.mark.parametrize("check", ["silent", *FLEET_CHECKS])
def test_fleet_scripts_write_the_output_contract(check: str) -> None:
    script = fleet_scripts()[check]
    assert script.splitlines()[0] == f'option task = {{name: "x {check}", every: 5m, offset: 1m}}'
    assert script.count("option task") == 1
    assert 'alertBucket = "multiapp_"' in script
    assert 'tagColumns: ["check", "application", "cluster", "severity", "dedup_key"]' in script
    assert f'severity = "{DEFAULT_SEVERITY[check]}"' in script
    assert "org:" not in script and "orgID" not in script
    assert not re.search(r"^\s*import\b", script, re.MULTILINE)


def test_silent_script_names_the_environment_and_its_buckets() -> None:
    script = fleet_scripts()["silent"]
    assert 'cluster = "idfdev"' in script
    assert 'expected = ["mobu", "times_square"]' in script
    assert 'from(bucket: "mobu")' in script and 'from(bucket: "times_square")' in script
    assert "range(start: -15m)" in script
    single = render_silent_check(
        cluster="e", buckets=["only"], task_name="t", offset="0s", settings=CheckSettings()
    )
    assert "union(" not in single.split("reporting =")[1].split("allSilent")[0]


def test_fleet_thresholds_are_rendered() -> None:
    settings = CheckSettings(disk_threshold=70.5, tls_expiry_warning="7d", window="20m")
    disk = render_fleet_check("disk", task_name="d", offset="0s", settings=settings)
    assert "threshold = 70.5\n" in disk and 'from(bucket: "influxdb_")' in disk
    tls = render_fleet_check("tls_expiry", task_name="t", offset="0s", settings=settings)
    assert "warningSeconds = 604800\n" in tls and 'from(bucket: "probes_")' in tls
    assert "range(start: -20m)" in tls


def test_ignored_pods_are_rendered_only_for_their_check_and_application() -> None:
    rules = parse_ignore_rules("not_running:mobu-x/prepull-*, mobu-x/a.b, cpu:other/x")
    settings = CheckSettings(ignore=rules)
    script = render("not_running", settings=settings)
    assert "r.pod_name =~ /^prepull-.*$/ or r.pod_name =~ /^a\\.b$/" in script
    assert "|> filter(fn: (r) => not ignored(r))" in script
    assert "ignored" not in render("not_running")
    assert "prepull" not in render("restarts", settings=settings)
    cpu = render("cpu", settings=settings)  # only the rule without a check; cpu's is for "other"
    assert "r.pod_name =~ /^a\\.b$/)" in cpu and "prepull" not in cpu and "/^x$/" not in cpu

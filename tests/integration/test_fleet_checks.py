"""The environment and fleet checks (silent, disk, site_down, tls_expiry), run as real tasks on
InfluxDB against Telegraf-shaped points; each fires on a problem and stays quiet without one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from support.orgs import OrgUnderTest

from rubin_monitoring.models.checks import HOST_BUCKET, PROBES_BUCKET, CheckSettings
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.models.tasks import Scope
from rubin_monitoring.services.tasks import desired_tasks
from rubin_monitoring.testing.flux import (
    Alert,
    create_bucket,
    create_task,
    line_protocol,
    query_alerts,
    run_task_and_wait,
    write_lines,
)

pytestmark = pytest.mark.integration

ALERT_TAGS = {"check", "application", "cluster", "severity", "dedup_key"}


def run_checks(org: OrgUnderTest, inventory: Inventory, checks: str) -> list[Alert]:
    """Create the tasks taskmaker would render for ``inventory`` and ``checks`` (non-bucket
    scopes only), force one run of each, and read back what they wrote."""
    create_bucket(org, "multiapp_")
    settings = CheckSettings(checks=tuple(checks.split(",")))
    specs = [s for s in desired_tasks(inventory, settings) if s.kind is not Scope.BUCKET]
    assert specs, "no task to run"
    found: dict[tuple[datetime, str], Alert] = {}
    for spec in specs:
        task_id = create_task(org, spec.flux)
        run = run_task_and_wait(org, task_id)
        # Two tasks of one check (silent per environment) whose runs fall in the same second
        # each read the other's findings too: count each finding once.
        for alert in query_alerts(org, at=run.scheduled_for, check=spec.check):
            found[(alert.time, alert.dedup_key)] = alert
    for alert in found.values():
        assert set(alert.tags) == ALERT_TAGS
    return list(found.values())


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


# silent


def point(cluster: str, seconds_ago: float = 60) -> str:
    return line_protocol(
        "kubernetes_pod_container",
        {"cluster": cluster, "namespace": "x", "pod_name": "p", "container_name": "c"},
        {"restarts_total": 0},
        ago(seconds_ago),
    )


def fleet(*environments: tuple[str, Sequence[str]]) -> Inventory:
    return Inventory(
        tuple(
            Environment(name, f"{name}.example", f"values-{name}.yaml", tuple(apps))
            for name, apps in environments
        )
    )


def test_an_application_enabled_in_two_environments_reporting_from_one_is_one_finding(
    org: OrgUnderTest,
) -> None:
    inventory = fleet(("idfdev", ["mobu", "nublado"]), ("summit", ["mobu", "sasquatch"]))
    for bucket in ("mobu", "nublado", "sasquatch"):
        create_bucket(org, bucket)
    write_lines(org, "mobu", [point("idfdev")])  # mobu reports from idfdev only
    write_lines(org, "nublado", [point("idfdev")])
    write_lines(org, "sasquatch", [point("summit")])
    # An old point is not enough: mobu's last one from summit is older than SILENT_AFTER.
    write_lines(org, "mobu", [point("summit", seconds_ago=20 * 60)])

    (alert,) = run_checks(org, inventory, "silent")
    assert (alert.cluster, alert.application, alert.severity) == ("summit", "mobu", "critical")
    assert alert.dedup_key == "silent/summit/mobu/bucket"
    assert alert.message == (
        "Application mobu sent no data from cluster summit in the last 15m, although the "
        "inventory enables it there."
    )
    assert alert.value == 900.0


def test_a_whole_silent_environment_is_one_finding_for_the_cluster(org: OrgUnderTest) -> None:
    inventory = fleet(("idfdev", ["mobu", "nublado", "times-square"]), ("summit", ["mobu"]))
    for bucket in ("mobu", "nublado", "times_square"):
        create_bucket(org, bucket)
    write_lines(org, "mobu", [point("summit")])  # summit is fine; idfdev says nothing at all

    (alert,) = run_checks(org, inventory, "silent")
    assert (alert.cluster, alert.application) == ("idfdev", "all")
    assert alert.dedup_key == "silent/idfdev/all/cluster"
    assert alert.message == (
        "Cluster idfdev sent no data for any of its 3 applications in the last 15m."
    )


def test_silent_is_quiet_when_every_enabled_application_reports(org: OrgUnderTest) -> None:
    inventory = fleet(("idfdev", ["mobu", "times-square"]), ("summit", ["mobu"]))
    for bucket in ("mobu", "times_square"):
        create_bucket(org, bucket)
    write_lines(org, "mobu", [point("idfdev"), point("summit")])
    write_lines(org, "times_square", [point("idfdev")])
    assert run_checks(org, inventory, "silent") == []


# disk

NO_APPS = fleet(("idfdev", []))


def disk(path: str, used: float, seconds_ago: float = 30, host: str = "influxdb-0") -> str:
    return line_protocol(
        "disk",
        {"host": host, "path": path, "device": "sda1", "fstype": "ext4"},
        {"used_percent": used, "total": 100, "used": int(used)},
        ago(seconds_ago),
    )


def test_disk_fires_above_the_threshold_on_the_latest_point(org: OrgUnderTest) -> None:
    create_bucket(org, HOST_BUCKET)
    write_lines(
        org,
        HOST_BUCKET,
        [disk("/", 70.0, 300), disk("/", 91.34), disk("/boot", 95.0, 300), disk("/boot", 40.0)],
    )
    (alert,) = run_checks(org, NO_APPS, "disk")
    assert (alert.cluster, alert.application, alert.severity) == (
        "influxdb-0",
        "influxdb",
        "warning",
    )
    assert alert.dedup_key == "disk/influxdb-0/influxdb//"
    assert alert.message == "Disk / of the InfluxDB host influxdb-0 is 91.3% full (threshold 85%)."
    assert alert.value == pytest.approx(91.34)


def test_disk_is_quiet_below_the_threshold(org: OrgUnderTest) -> None:
    create_bucket(org, HOST_BUCKET)
    write_lines(org, HOST_BUCKET, [disk("/", 84.9), disk("/data", 12.0)])
    assert run_checks(org, NO_APPS, "disk") == []


# site_down and tls_expiry


def probe(server: str, cluster: str, result: str, code: int, status: str = "") -> str:
    tags = {"server": server, "method": "GET", "result": result, "cluster": cluster}
    fields: dict[str, int | float | str] = {"result_code": code, "response_time": 0.05}
    if status:
        tags["status_code"] = status
        fields["http_response_code"] = int(status)
    return line_protocol("http_response", tags, fields, ago(20))


def test_site_down_fires_for_no_answer_and_for_an_error_status(org: OrgUnderTest) -> None:
    create_bucket(org, PROBES_BUCKET)
    write_lines(
        org,
        PROBES_BUCKET,
        [
            probe("https://ok.example/", "idfdev", "success", 0, "200"),
            probe("https://gone.example/", "summit", "connection_failed", 3),
            probe("https://broken.example/", "usdf", "success", 0, "503"),
        ],
    )
    alerts = {a.cluster: a for a in run_checks(org, NO_APPS, "site_down")}
    assert set(alerts) == {"summit", "usdf"}
    assert alerts["summit"].message == (
        "Site https://gone.example/ of cluster summit does not answer successfully: "
        "connection_failed."
    )
    assert alerts["usdf"].message.endswith("does not answer successfully: HTTP status 503.")
    assert alerts["usdf"].value == 503.0 and alerts["summit"].severity == "critical"


def test_site_down_is_quiet_when_every_site_answers(org: OrgUnderTest) -> None:
    create_bucket(org, PROBES_BUCKET)
    write_lines(
        org,
        PROBES_BUCKET,
        [
            probe("https://ok.example/", "idfdev", "success", 0, "200"),
            probe("https://moved.example/", "summit", "success", 0, "302"),
        ],
    )
    assert run_checks(org, NO_APPS, "site_down") == []


def certificate(source: str, cluster: str, days_left: float, name: str = "site") -> str:
    return line_protocol(
        "x509_cert",
        {"source": source, "cluster": cluster, "common_name": name, "verification": "valid"},
        {"expiry": int(days_left * 86400), "age": 86400},
        ago(20),
    )


def test_tls_expiry_fires_within_the_warning_and_after_expiry(org: OrgUnderTest) -> None:
    create_bucket(org, PROBES_BUCKET)
    write_lines(
        org,
        PROBES_BUCKET,
        [
            certificate("https://a.example:443", "idfdev", 90, "a.example"),
            certificate("https://b.example:443", "summit", 5.5, "b.example"),
            certificate("https://c.example:443", "usdf", -2.5, "c.example"),
        ],
    )
    alerts = {a.cluster: a for a in run_checks(org, NO_APPS, "tls_expiry")}
    assert set(alerts) == {"summit", "usdf"}
    assert alerts["summit"].message == (
        "The certificate b.example of https://b.example:443 (cluster summit) expires in 5 days."
    )
    assert alerts["usdf"].message.endswith("expired 2 days ago.")
    assert alerts["summit"].value == pytest.approx(5.5)


def test_tls_expiry_is_quiet_for_certificates_far_from_expiry(org: OrgUnderTest) -> None:
    create_bucket(org, PROBES_BUCKET)
    write_lines(org, PROBES_BUCKET, [certificate("https://a.example:443", "idfdev", 31)])
    assert run_checks(org, NO_APPS, "tls_expiry") == []

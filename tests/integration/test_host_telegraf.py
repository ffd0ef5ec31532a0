"""The InfluxDB host's Telegraf (``host-config``): the real Telegraf, with the generated
configuration and tokenmaker's ``host-telegraf`` token, scrapes the real influxd's ``/metrics``
and the host's disk into ``influxdb_``; the InfluxDB dashboard's cells and the ``disk`` check
read what it wrote."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_cli
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once

from rubin_monitoring.models import metrics
from rubin_monitoring.models.checks import HOST_BUCKET, CheckSettings
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.models.tasks import Scope
from rubin_monitoring.services.tasks import desired_tasks
from rubin_monitoring.testing.flux import (
    create_task,
    query_alerts,
    query_rows,
    run_task_and_wait,
)
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "influxdb.yml"
HOSTNAME = "influxdb-0"


def mount_point(path: str) -> str:
    """The mount point of the file system holding ``path``."""
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def collect_twice(org: OrgUnderTest, phalanx: PhalanxRepo) -> tuple[str, str]:
    """bucketmaker and tokenmaker as the setup leaves them, then two collections of the real
    Telegraf on the generated configuration, a second apart; the configuration and the disk
    watched."""
    phalanx.set_apps({"mobu": True}, {"idfdev": {}})
    env = org.env(PHALANX_REPO=phalanx.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    tokens = run_cli(["tokenmaker", "--role", "host-telegraf", "--output", "json"], env)
    assert tokens.exit_code == 0, tokens.stderr
    token = tokens.json()["tokens"]["host-telegraf"]
    disk = mount_point(tempfile.gettempdir())
    generated = run_cli(
        ["host-config", "--hostname", HOSTNAME, "--interval", "10s", "--mount-point", disk],
        {"INFLUXDB_URL": org.url, "INFLUXDB_ORG": org.name},
    )
    assert generated.exit_code == 0, generated.stderr
    assert token not in generated.stdout and "${INFLUX_TOKEN}" in generated.stdout
    for _ in range(2):
        done = run_telegraf_once(generated.stdout, {"INFLUX_TOKEN": token})
        assert done.returncode == 0, done.stderr
        assert [line for line in done.stderr.splitlines() if " E! " in line] == []
        time.sleep(1.1)
    return generated.stdout, disk


def series(org: OrgUnderTest, field: str, measurement: str = metrics.PROMETHEUS) -> list[Any]:
    return query_rows(
        org,
        f'from(bucket: "{HOST_BUCKET}") |> range(start: -1h)'
        f' |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")',
    )


def with_variables(query: str) -> str:
    """A dashboard query with its ``v`` record as literals (imports stay first)."""
    v = (
        "v = {timeRangeStart: -1h, timeRangeStop: now(), windowPeriod: 1s,"
        f' influxdb_bucket: "{HOST_BUCKET}"}}'
    )
    lines = query.splitlines()
    imports = [line for line in lines if line.startswith("import ")]
    rest = [line for line in lines if not line.startswith("import ")]
    return "\n".join([*imports, v, *rest])


def test_host_telegraf_feeds_the_influxdb_dashboard_and_the_disk_check(
    org: OrgUnderTest, phalanx: PhalanxRepo, telegraf_bin: Path
) -> None:
    _, disk = collect_twice(org, phalanx)

    # influxd's own metrics, as metric_version 2 writes them: no url or address tag.
    written = series(org, metrics.INFLUXD_WRITER_OK_POINTS_SUM)
    assert len(written) == 2
    internal = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
    assert set(written[0]) - internal == {"host", "path"}
    assert written[0]["host"] == HOSTNAME
    assert float(written[1]["_value"]) > float(written[0]["_value"])  # Telegraf's own writes
    shards = series(org, metrics.INFLUXD_SHARD_DISK_SIZE)
    assert metrics.INFLUXD_BUCKET_ID in shards[0] and "id" in shards[0]
    used = series(org, metrics.DISK_USED_PERCENT, metrics.DISK)
    assert {row["path"] for row in used} == {disk}
    assert {row["host"] for row in used} == {HOSTNAME}

    # Every cell of the InfluxDB dashboard returns rows.
    empty = []
    for document in yaml.safe_load_all(DASHBOARD.read_text()):
        if document["kind"] != "Dashboard":
            continue
        for chart in document["spec"]["charts"]:
            for query in chart["queries"]:
                if not query_rows(org, with_variables(query["query"])):
                    empty.append(chart["name"])
    assert empty == []

    # The disk check stays quiet below its threshold and fires above it (any disk in use); in
    # that order, as a run reads the findings of its second, which two runs may share.
    inventory = Inventory((Environment("idfdev", None, "values-idfdev.yaml", ("mobu",)),))
    for threshold, expected in ((100.0, 0), (0.001, 1)):
        settings = CheckSettings(checks=("disk",), disk_threshold=threshold)
        (spec,) = [s for s in desired_tasks(inventory, settings) if s.kind is Scope.FLEET]
        task_id = create_task(org, spec.flux)
        run = run_task_and_wait(org, task_id)
        alerts = query_alerts(org, at=run.scheduled_for, check="disk")
        assert len(alerts) == expected, alerts
        for alert in alerts:
            assert alert.cluster == HOSTNAME
            assert alert.dedup_key == f"disk/{HOSTNAME}/influxdb/{disk}"
            assert f"Disk {disk} of the InfluxDB host {HOSTNAME} is" in alert.message

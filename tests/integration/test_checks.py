"""The rendered Flux checks, run as real tasks on InfluxDB 2.7 against Telegraf-shaped data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from rubin_monitoring.config import parse_ignore_rules
from rubin_monitoring.models.checks import CheckSettings
from rubin_monitoring.services.checks import render_check
from rubin_monitoring.testing.flux import (
    Alert,
    InfluxOrg,
    TaskRun,
    create_bucket,
    create_task,
    field_types,
    get_task,
    pod_container_line,
    query_alerts,
    run_task_and_wait,
    write_lines,
)

pytestmark = pytest.mark.integration

APPLICATION = "mobu"
NAMESPACE = "mobu"
CLUSTER = "idfdev"
MIB = 1024 * 1024
ALERT_TAGS = {"check", "application", "cluster", "severity", "dedup_key"}

Fields = Mapping[str, int | float | str]


@dataclass
class Scenario:
    """Telegraf-shaped points for one application, at times relative to ``now``."""

    now: datetime
    lines: list[str]

    def at(self, seconds_ago: float) -> datetime:
        return self.now - timedelta(seconds=seconds_ago)

    def inventory(
        self,
        pod: str,
        container: str,
        seconds_ago: Sequence[float],
        fields: Fields | Callable[[int], Fields],
        *,
        phase: str = "Running",
        state: str = "running",
        readiness: str = "ready",
        cluster: str = CLUSTER,
    ) -> None:
        """``inputs.kube_inventory`` samples: phase/state/readiness are tags ("" leaves one out)."""
        for index, ago in enumerate(seconds_ago):
            values = fields(index) if callable(fields) else fields
            self.lines.append(
                pod_container_line(
                    cluster=cluster,
                    namespace=NAMESPACE,
                    pod=pod,
                    container=container,
                    fields=values,
                    timestamp=self.at(ago),
                    host="telegraf-kube-inventory-7d9f",
                    extra_tags={"phase": phase, "state": state, "readiness": readiness},
                )
            )

    def kubelet(
        self, pod: str, container: str, seconds_ago: Sequence[float], fields: Fields
    ) -> None:
        """``inputs.kubernetes`` samples (from the node's DaemonSet Telegraf)."""
        for ago in seconds_ago:
            self.lines.append(
                pod_container_line(
                    cluster=CLUSTER,
                    namespace=NAMESPACE,
                    pod=pod,
                    container=container,
                    fields=fields,
                    timestamp=self.at(ago),
                    host="telegraf-ds-x1",
                )
            )


def every(start: int, stop: int, step: int = 30) -> list[float]:
    """Sample ages in seconds from ``start`` down to ``stop`` (oldest first)."""
    return [float(age) for age in range(start, stop - 1, -step)]


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2), [])


def run_check(
    org: InfluxOrg,
    check: str,
    scenario: Scenario,
    *,
    params: CheckSettings | None = None,
    runs: int = 1,
) -> list[TaskRun]:
    """Write the scenario, install the rendered check as a task, run it ``runs`` times."""
    create_bucket(org, APPLICATION)
    create_bucket(org, "multiapp_")
    if scenario.lines:
        write_lines(org, APPLICATION, scenario.lines)
    flux = render_check(
        check,
        bucket=APPLICATION,
        task_name=f"{APPLICATION}-{check}",
        offset="0s",
        settings=params or CheckSettings(),
    )
    task_id = create_task(org, flux)
    stored = get_task(org, task_id)
    # What the task reconciler compares: InfluxDB keeps the script as sent.
    assert stored["flux"] == flux
    assert stored["name"] == f"{APPLICATION}-{check}"
    assert stored["every"] == (params or CheckSettings()).every
    finished = [run_task_and_wait(org, task_id)]
    while len(finished) < runs:
        # Distinct scheduled times, so each run writes its own points.
        later = finished[-1].scheduled_for + timedelta(seconds=1)
        finished.append(run_task_and_wait(org, task_id, scheduled_for=later))
    return finished


def alerts_of(org: InfluxOrg, run: TaskRun) -> list[Alert]:
    """The findings written by ``run`` (a scheduled run in between would write at its own time)."""
    return query_alerts(org, at=run.scheduled_for)


def assert_alert(
    alert: Alert, check: str, severity: str, pod: str, container: str, message: str, value: float
) -> None:
    assert set(alert.tags) == ALERT_TAGS
    assert alert.check == check
    assert alert.application == APPLICATION
    assert alert.cluster == CLUSTER
    assert alert.severity == severity
    assert alert.dedup_key == f"{check}/{CLUSTER}/{APPLICATION}/{NAMESPACE}/{pod}/{container}"
    assert alert.message == message
    assert alert.value == pytest.approx(value)


def who(pod: str, container: str) -> str:
    return (
        f"Container {container} of pod {pod} (namespace {NAMESPACE}) of application "
        f"{APPLICATION} on cluster {CLUSTER}"
    )


# restarts


def test_restarts_healthy(org: InfluxOrg, scenario: Scenario) -> None:
    # Restarted long ago, steady within the window.
    scenario.inventory("web-1", "web", [900], {"restarts_total": 0, "state_code": 0})
    scenario.inventory("web-1", "web", every(540, 30), {"restarts_total": 4, "state_code": 0})
    # A StatefulSet pod recreated under the same name: the counter drops, no restart.
    scenario.inventory("db-0", "db", every(540, 300), {"restarts_total": 6, "state_code": 0})
    scenario.inventory("db-0", "db", every(270, 30), {"restarts_total": 0, "state_code": 0})
    run_check(org, "restarts", scenario)
    assert query_alerts(org) == []


def test_restarts_unhealthy_and_dedup_key_stable(org: InfluxOrg, scenario: Scenario) -> None:
    # The state tag changes as the container crashes, which splits its series in InfluxDB; the
    # crashing samples also lack the readiness tag (as from an older Telegraf), so the series
    # have different columns.
    scenario.inventory("web-1", "web", every(540, 300), {"restarts_total": 1, "state_code": 0})
    scenario.inventory(
        "web-1",
        "web",
        [270, 240],
        {"restarts_total": 2, "state_code": 2, "state_reason": "CrashLoopBackOff"},
        state="waiting",
        readiness="",
    )
    scenario.inventory("web-1", "web", every(210, 30), {"restarts_total": 3, "state_code": 0})
    scenario.inventory("web-2", "web", every(540, 30), {"restarts_total": 0, "state_code": 0})
    first, second = run_check(org, "restarts", scenario, runs=2)

    (alert,) = alerts_of(org, first)
    assert alert.time == first.scheduled_for
    assert_alert(
        alert,
        "restarts",
        "warning",
        "web-1",
        "web",
        f"{who('web-1', 'web')} restarted 2 times in the last 10m.",
        2.0,
    )
    (again,) = alerts_of(org, second)
    assert again.time == second.scheduled_for != first.scheduled_for
    assert again.dedup_key == alert.dedup_key
    assert field_types(org, "multiapp_", "alert") == {"message": "string", "value": "double"}


# not_running


def test_not_running_healthy(org: InfluxOrg, scenario: Scenario) -> None:
    scenario.inventory("web-1", "web", every(540, 30), {"restarts_total": 0, "state_code": 0})
    # A finished job: terminated with reason Completed.
    scenario.inventory(
        "job-1",
        "job",
        every(300, 30),
        {
            "restarts_total": 0,
            "state_code": 1,
            "state_reason": "Completed",
            "terminated_reason": "Completed",
        },
        phase="Succeeded",
        state="terminated",
        readiness="unready",
    )
    # Creating for 3 minutes: within the 10m grace.
    scenario.inventory(
        "web-2",
        "web",
        every(180, 30),
        {"restarts_total": 0, "state_code": 2, "state_reason": "ContainerCreating"},
        phase="Pending",
        state="waiting",
        readiness="unready",
    )
    # Crashed, then recovered. (Only the crashing samples have state_reason: this case found
    # the Flux 0.196 sort() bug the template works around.)
    scenario.inventory(
        "web-3",
        "web",
        every(540, 300),
        {"restarts_total": 1, "state_code": 2, "state_reason": "CrashLoopBackOff"},
        state="waiting",
        readiness="",
    )
    scenario.inventory("web-3", "web", every(270, 30), {"restarts_total": 2, "state_code": 0})
    # Last seen crashing 15 minutes ago (pod gone since): outside the window.
    scenario.inventory(
        "web-4",
        "web",
        every(1100, 900),
        {"restarts_total": 5, "state_code": 2, "state_reason": "CrashLoopBackOff"},
        state="waiting",
        readiness="unready",
    )
    run_check(org, "not_running", scenario)
    assert query_alerts(org) == []


def test_not_running_unhealthy(org: InfluxOrg, scenario: Scenario) -> None:
    scenario.inventory("ok-1", "web", every(540, 30), {"restarts_total": 0, "state_code": 0})
    scenario.inventory("crash-1", "web", every(540, 300), {"restarts_total": 3, "state_code": 0})
    scenario.inventory(
        "crash-1",
        "web",
        every(270, 30),
        {"restarts_total": 4, "state_code": 2, "state_reason": "CrashLoopBackOff"},
        state="waiting",
        readiness="unready",
    )
    scenario.inventory(
        "job-2",
        "job",
        every(120, 30),
        {
            "restarts_total": 0,
            "state_code": 1,
            "state_reason": "Error",
            "terminated_reason": "Error",
        },
        phase="Failed",
        state="terminated",
        readiness="unready",
    )
    # Creating for 15 minutes: beyond the 10m grace (the check reads window + grace back).
    scenario.inventory(
        "slow-1",
        "web",
        every(900, 30),
        {"restarts_total": 0, "state_code": 2, "state_reason": "ContainerCreating"},
        phase="Pending",
        state="waiting",
        readiness="unready",
    )
    # Unschedulable for 12 minutes: no container status at all (state unknown, no reason).
    scenario.inventory(
        "stuck-1",
        "web",
        every(720, 30),
        {"restarts_total": 0, "state_code": 3},
        phase="Pending",
        state="unknown",
        readiness="unready",
    )
    (run,) = run_check(org, "not_running", scenario)
    alerts = {alert.dedup_key.split("/")[4]: alert for alert in alerts_of(org, run)}
    assert sorted(alerts) == ["crash-1", "job-2", "slow-1", "stuck-1"]
    assert_alert(
        alerts["crash-1"],
        "not_running",
        "critical",
        "crash-1",
        "web",
        f"{who('crash-1', 'web')} is not running: waiting (CrashLoopBackOff).",
        2.0,
    )
    assert_alert(
        alerts["job-2"],
        "not_running",
        "critical",
        "job-2",
        "job",
        f"{who('job-2', 'job')} is not running: terminated (Error).",
        1.0,
    )
    assert_alert(
        alerts["slow-1"],
        "not_running",
        "critical",
        "slow-1",
        "web",
        f"{who('slow-1', 'web')} has not started for 15 minutes: waiting (ContainerCreating).",
        2.0,
    )
    assert_alert(
        alerts["stuck-1"],
        "not_running",
        "critical",
        "stuck-1",
        "web",
        f"{who('stuck-1', 'web')} has not started for 12 minutes: unknown (Pending).",
        3.0,
    )


# cpu


def test_cpu_healthy(org: InfluxOrg, scenario: Scenario) -> None:
    samples = every(540, 30)
    limits = {"restarts_total": 0, "state_code": 0, "resource_limits_millicpu_units": 500}
    scenario.inventory("web-1", "web", samples, limits)
    scenario.kubelet("web-1", "web", samples, {"cpu_usage_nanocores": 400_000_000})  # 80%
    # No CPU limit: never reported, however busy.
    scenario.inventory("batch-1", "worker", samples, {"restarts_total": 0, "state_code": 0})
    scenario.kubelet("batch-1", "worker", samples, {"cpu_usage_nanocores": 4_000_000_000})
    run_check(org, "cpu", scenario)
    assert query_alerts(org) == []


def test_cpu_unhealthy(org: InfluxOrg, scenario: Scenario) -> None:
    samples = every(540, 30)
    limits = {"restarts_total": 0, "state_code": 0, "resource_limits_millicpu_units": 500}
    scenario.inventory("web-1", "web", samples, limits)
    # Mean 475m of 500m = 95%, though single samples go as low as 450m.
    scenario.kubelet("web-1", "web", samples[0::2], {"cpu_usage_nanocores": 450_000_000})
    scenario.kubelet("web-1", "web", samples[1::2], {"cpu_usage_nanocores": 500_000_000})
    scenario.inventory("web-2", "web", samples, limits)
    scenario.kubelet("web-2", "web", samples, {"cpu_usage_nanocores": 100_000_000})
    assert len(samples) % 2 == 0
    (run,) = run_check(org, "cpu", scenario)
    (alert,) = alerts_of(org, run)
    assert_alert(
        alert,
        "cpu",
        "warning",
        "web-1",
        "web",
        f"{who('web-1', 'web')} used 95% of its CPU limit of 500m on average over the last 10m.",
        95.0,
    )


def test_cpu_threshold_is_a_parameter(org: InfluxOrg, scenario: Scenario) -> None:
    samples = every(540, 30)
    limits = {"restarts_total": 0, "state_code": 0, "resource_limits_millicpu_units": 2000}
    scenario.inventory("web-1", "web", samples, limits)
    scenario.kubelet("web-1", "web", samples, {"cpu_usage_nanocores": 1_234_000_000})  # 61.7%
    (run,) = run_check(org, "cpu", scenario, params=CheckSettings(cpu_threshold=60.0))
    (alert,) = alerts_of(org, run)
    assert alert.value == pytest.approx(61.7)
    assert "used 61.7% of its CPU limit of 2000m" in alert.message


# memory


def test_memory_healthy(org: InfluxOrg, scenario: Scenario) -> None:
    samples = every(540, 30)
    limits = {"restarts_total": 0, "state_code": 0, "resource_limits_memory_bytes": 512 * MIB}
    scenario.inventory("web-1", "web", samples, limits)
    # Page cache fills memory_usage_bytes, but the working set is half the limit.
    scenario.kubelet(
        "web-1",
        "web",
        samples,
        {"memory_usage_bytes": 510 * MIB, "memory_working_set_bytes": 256 * MIB},
    )
    # No memory limit: never reported.
    scenario.inventory("batch-1", "worker", samples, {"restarts_total": 0, "state_code": 0})
    scenario.kubelet(
        "batch-1",
        "worker",
        samples,
        {"memory_usage_bytes": 8 * 1024 * MIB, "memory_working_set_bytes": 8 * 1024 * MIB},
    )
    run_check(org, "memory", scenario)
    assert query_alerts(org) == []


def test_memory_unhealthy(org: InfluxOrg, scenario: Scenario) -> None:
    samples = every(540, 30)
    limits = {"restarts_total": 0, "state_code": 0, "resource_limits_memory_bytes": 512 * MIB}
    scenario.inventory("web-1", "web", samples, limits)
    working_set = int(512 * MIB * 0.95)
    scenario.kubelet(
        "web-1",
        "web",
        samples,
        {"memory_usage_bytes": working_set + 10 * MIB, "memory_working_set_bytes": working_set},
    )
    (run,) = run_check(org, "memory", scenario)
    (alert,) = alerts_of(org, run)
    assert_alert(
        alert,
        "memory",
        "warning",
        "web-1",
        "web",
        f"{who('web-1', 'web')} used 95% of its memory limit (486 of 512 MiB) on average "
        "over the last 10m.",
        95.0,
    )


def test_missing_cluster_tag_is_reported_as_unknown(org: InfluxOrg, scenario: Scenario) -> None:
    scenario.inventory(
        "web-1", "web", every(540, 300), {"restarts_total": 0, "state_code": 0}, cluster=""
    )
    scenario.inventory(
        "web-1", "web", every(270, 30), {"restarts_total": 1, "state_code": 0}, cluster=""
    )
    (run,) = run_check(org, "restarts", scenario)
    (alert,) = alerts_of(org, run)
    assert alert.cluster == "unknown"
    assert alert.dedup_key == f"restarts/unknown/{APPLICATION}/{NAMESPACE}/web-1/web"
    assert alert.message.endswith("on cluster unknown restarted 1 time in the last 10m.")


def test_ignored_pods_never_alert_and_the_others_still_do(
    org: InfluxOrg, scenario: Scenario
) -> None:
    """IGNORE_PODS (issue 10): e.g. nublado's image pre-pull pods, which the reference tool
    hard-coded; a rule for another check or application changes nothing here."""
    for pod in ("prepull-abc12", "prepull-xyz34", "hub-0"):
        scenario.inventory(pod, "c", every(540, 300), {"restarts_total": 1, "state_code": 0})
        scenario.inventory(pod, "c", every(270, 30), {"restarts_total": 4, "state_code": 0})
    rules = parse_ignore_rules(
        f"restarts:{APPLICATION}/prepull-*, cpu:{APPLICATION}/hub-*, restarts:other/hub-?"
    )
    (run,) = run_check(org, "restarts", scenario, params=CheckSettings(ignore=rules))
    assert [alert.dedup_key.split("/")[4] for alert in alerts_of(org, run)] == ["hub-0"]

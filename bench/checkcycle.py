#!/usr/bin/env python3
"""Cost of one cycle of the Flux checks on influxd: the 0.1.0 templates against the current ones.

    python bench/checkcycle.py [--apps 97] [--repeats 5] [--checks restarts,not_running,cpu,memory]

Starts a throwaway influxd (INFLUXD_BIN, or the binary scripts/provision-influxd caches) on a free
127.0.0.1 port and writes Telegraf-shaped ``kubernetes_pod_container`` points into one bucket per
application: 3 clusters x 4 pods x 2 containers, inputs.kube_inventory and inputs.kubernetes, one
point per 10 s over 15 minutes, a few containers unhealthy (crash loops, a failed job, a container
stuck creating, busy or memory-hungry containers, a pod recreated under the same name). Installs one
task per (application, check) twice: rendered from ``bench/templates-0.1.0`` (the 0.1.0 release's
templates) and by ``render_check`` (the current ones), each set writing into its own alert bucket.

A cycle forces one run of every task of a set (check by check, all applications at once) and waits
for them. Each set runs a warm-up cycle, then ``--repeats`` measured cycles, the sets taking turns;
every cycle of both sets runs at the same ``now()``. Prints influxd CPU-seconds (utime + stime
from /proc/<pid>/stat) and wall time per cycle and per check (medians), the ratio, the number of
findings, and whether both sets wrote the same findings, cycle by cycle: the set of (check,
application, cluster, dedup_key, severity, message, value) in the alert bucket.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jinja2

from rubin_monitoring.config import parse_checks
from rubin_monitoring.durations import format_duration, parse_duration
from rubin_monitoring.models import metrics
from rubin_monitoring.models.checks import DEFAULT_SEVERITY, CheckSettings
from rubin_monitoring.services.checks import flux_string, render_check, template_environment
from rubin_monitoring.testing.influxd import InfluxServer, cached_binary, run_binary

ROOT = Path(__file__).resolve().parent.parent
OLD_TEMPLATES = ROOT / "bench" / "templates-0.1.0"
NEW_TEMPLATES = ROOT / "templates" / "flux"
COMPARED_CHECKS = ("restarts", "not_running", "cpu", "memory")
"""The application checks release 0.1.0 had (its templates are in OLD_TEMPLATES)."""

CLUSTERS = ("idfdev", "idfint", "usdfprod")
PODS = 4
CONTAINERS = ("app", "sidecar")
STEP = 10  # seconds between samples
SAMPLES = 90  # 15 minutes
MIB = 1024 * 1024
FINISHED = frozenset({"success", "failed", "canceled"})
RUN_TIMEOUT = 900.0

Finding = tuple[str, str, str, str, str, str, float]
"""(check, application, cluster, dedup_key, severity, message, value rounded)."""

# influxd


def influxd_binary() -> Path:
    binary = cached_binary()
    if binary is None or not binary.exists():
        raise SystemExit("no influxd: run scripts/provision-influxd or set INFLUXD_BIN")
    return binary


def pid_of(server: InfluxServer) -> int:
    if server.pid is None:  # pragma: no cover - run_binary always sets it
        raise SystemExit("influxd's pid is unknown")
    return server.pid


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ", fields start at state (field 3): utime is field 14, stime 15.
    return (int(rest[11]) + int(rest[12])) / _TICK


def settle(pid: int, *, idle: float = 0.03, limit: float = 180) -> None:
    """Wait until influxd is idle (compactions after writes would count against a cycle)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < idle:
            return


def check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:2000]}"
        )
    return response


# data


def line(measurement: str, tags: dict[str, str], fields: dict[str, int | str], at: int) -> str:
    def escape_tag(text: str) -> str:
        return (
            text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
        )

    def value(item: int | str) -> str:
        if isinstance(item, int):
            return f"{item}i"
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'

    tag_text = "".join(f",{key}={escape_tag(val)}" for key, val in sorted(tags.items()) if val)
    field_text = ",".join(f"{key}={value(val)}" for key, val in fields.items())
    return f"{measurement}{tag_text} {field_text} {at}"


@dataclass
class Sample:
    """One inputs.kube_inventory sample of a container (and whether the kubelet reports it)."""

    restarts: int = 0
    state: str = "running"
    reason: str = ""
    phase: str = "Running"
    readiness: str = "ready"
    running: bool = True


STATE_CODES = {"running": 0, "terminated": 1, "waiting": 2, "unknown": 3}


@dataclass
class Container:
    app: str
    cluster: str
    pod: str
    name: str
    node: str
    cpu_limit: int | None  # millicores
    memory_limit: int | None  # bytes
    cpu_use: float = 0.2  # fraction of the limit (or of 1 core without one)
    memory_use: float = 0.4
    samples: list[Sample] = field(default_factory=list)


def unhealthy(container: Container, index: int, cluster: int, pod: int, slot: int) -> None:
    """A few deterministic problems (and non-problems that look like them)."""
    samples = container.samples
    if index % 8 == 1 and (cluster, pod, slot) == (0, 0, 0):
        # Crash loop for the last 5 minutes: restarts and not_running. The crashing samples
        # lack the readiness tag, as from an older Telegraf.
        for k in range(60, SAMPLES):
            crashing = (k - 60) % 6 < 4
            samples[k] = Sample(
                restarts=3 + (k - 60) // 6,
                state="waiting" if crashing else "running",
                reason="CrashLoopBackOff" if crashing else "",
                readiness="" if crashing else "ready",
                running=not crashing,
            )
        samples[-1] = Sample(3 + 5, "waiting", "CrashLoopBackOff", readiness="", running=False)
    elif index % 8 == 3 and (cluster, pod, slot) == (1, 1, 0):
        container.cpu_use = 0.95
    elif index % 8 == 5 and (cluster, pod, slot) == (2, 2, 0):
        container.memory_use = 0.93
    elif index % 16 == 7 and (cluster, pod) == (0, 3):
        # Creating for 15 minutes: beyond the grace.
        for k in range(SAMPLES):
            samples[k] = Sample(0, "waiting", "ContainerCreating", "Pending", "unready", False)
    elif index % 10 == 2 and (cluster, pod, slot) == (1, 3, 1):
        # A finished job container: not a problem.
        for k in range(30, SAMPLES):
            samples[k] = Sample(0, "terminated", "Completed", "Succeeded", "unready", False)
    elif index % 12 == 9 and (cluster, pod, slot) == (1, 2, 0):
        # Failed 2 minutes ago.
        for k in range(78, SAMPLES):
            samples[k] = Sample(0, "terminated", "Error", "Failed", "unready", False)
    elif index % 9 == 4 and (cluster, pod, slot) == (2, 0, 0):
        # A StatefulSet pod recreated under the same name: the counter drops, no restart.
        for k in range(SAMPLES):
            samples[k] = Sample(restarts=5 if k < 45 else 0)
    elif index % 7 == 6 and (cluster, pod, slot) == (1, 0, 1):
        # Crashed 3 minutes ago, running again.
        for k in range(SAMPLES):
            samples[k] = Sample(restarts=2 if k < 70 else 3)
        samples[70] = Sample(2, "waiting", "CrashLoopBackOff", readiness="unready", running=False)
    elif index % 11 == 10 and (cluster, pod, slot) == (2, 3, 1):
        # Unschedulable for 5 minutes: within the grace.
        for k in range(60, SAMPLES):
            samples[k] = Sample(0, "unknown", "", "Pending", "unready", False)


def containers(app: str, index: int) -> list[Container]:
    result = []
    for c, cluster in enumerate(CLUSTERS):
        for p in range(PODS):
            pod = f"{app}-{5 + index % 3}f{c}c8d{p}b-{'abcd'[p]}x{index % 10}q{p}"
            for s, name in enumerate(CONTAINERS):
                container = Container(
                    app,
                    cluster,
                    pod,
                    name,
                    node=f"{cluster}-node-{(index + p) % 7:02d}",
                    cpu_limit=1000 if s == 0 else None,
                    memory_limit=512 * MIB if s == 0 else (128 * MIB if p % 2 else None),
                    cpu_use=0.1 + 0.05 * p,
                    memory_use=0.3 + 0.1 * s,
                    samples=[Sample(restarts=p % 2) for _ in range(SAMPLES)],
                )
                unhealthy(container, index, c, p, s)
                result.append(container)
    return result


def telegraf_lines(container: Container, end: int) -> Iterator[str]:
    """inputs.kube_inventory and inputs.kubernetes points of the container, oldest first."""
    base = {
        "cluster": container.cluster,
        "namespace": container.app,
        "pod_name": container.pod,
        "container_name": container.name,
        "node_name": container.node,
    }
    for k, sample in enumerate(container.samples):
        at = end - (SAMPLES - 1 - k) * STEP
        inventory: dict[str, int | str] = {
            "restarts_total": sample.restarts,
            "state_code": STATE_CODES[sample.state],
        }
        if sample.reason:
            inventory["state_reason"] = sample.reason
        if sample.state == "terminated":
            inventory["terminated_reason"] = sample.reason
        inventory["resource_requests_millicpu_units"] = 100
        inventory["resource_requests_memory_bytes"] = 64 * MIB
        if container.cpu_limit is not None:
            inventory["resource_limits_millicpu_units"] = container.cpu_limit
        if container.memory_limit is not None:
            inventory["resource_limits_memory_bytes"] = container.memory_limit
        tags = {
            **base,
            "host": f"telegraf-kube-inventory-{container.cluster}",
            "phase": sample.phase,
            "state": sample.state,
            "readiness": sample.readiness,
        }
        yield line("kubernetes_pod_container", tags, inventory, at)
        if not sample.running:
            continue
        wobble = ((k * 7 + len(container.pod)) % 5 - 2) / 100
        cores = (container.cpu_limit or 1000) / 1000
        memory = container.memory_limit or 256 * MIB
        working_set = int(memory * (container.memory_use + wobble / 4))
        kubelet: dict[str, int | str] = {
            "cpu_usage_nanocores": int(cores * 1e9 * (container.cpu_use + wobble)),
            "cpu_usage_core_nanoseconds": 10**12 + k * 10**10,
            "memory_usage_bytes": working_set + 20 * MIB,
            "memory_working_set_bytes": working_set,
            "memory_rss_bytes": working_set - 10 * MIB,
            "memory_page_faults": 1000 + k,
            "memory_major_page_faults": 3,
            "rootfs_used_bytes": 40960,
            "logsfs_used_bytes": 8192 + k,
        }
        tags = {**base, "host": f"telegraf-ds-{container.node}"}
        yield line("kubernetes_pod_container", tags, kubelet, at)


def write_data(server: InfluxServer, apps: Sequence[str], end: int) -> int:
    points = 0
    with server.client(timeout=120) as client:
        for index, app in enumerate(apps):
            lines = [
                text
                for container in containers(app, index)
                for text in telegraf_lines(container, end)
            ]
            points += len(lines)
            check(
                client.post(
                    "/api/v2/write",
                    params={"orgID": server.org_id, "bucket": app, "precision": "s"},
                    content="\n".join(lines).encode(),
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
            )
    return points


# templates and tasks


def render_variables(
    check_name: str,
    *,
    bucket: str,
    task_name: str,
    offset: str,
    settings: CheckSettings,
    alert_bucket: str,
) -> dict[str, Any]:
    """The variables render_check gives the templates (asserted equal in main())."""
    params = settings
    window_seconds = parse_duration(params.window)
    grace_seconds = parse_duration(params.pending_grace)
    return {
        "m": metrics.field_names(),
        "check": check_name,
        "severity": DEFAULT_SEVERITY[check_name],
        "application": bucket,
        "task_name": task_name,
        "offset": offset,
        "every": params.every,
        "window": params.window,
        "window_seconds": window_seconds,
        "lookback": format_duration(window_seconds + grace_seconds),
        "pending_grace": params.pending_grace,
        "grace_seconds": grace_seconds,
        "cpu_threshold": params.cpu_threshold,
        "memory_threshold": params.memory_threshold,
        "alert_bucket": alert_bucket,
        "ignored_pods": settings.ignored_pods(check_name, bucket),
    }


def template_renderer(directory: Path) -> Callable[..., str]:
    environment = template_environment(jinja2.FileSystemLoader(directory))

    def render(check_name: str, **variables: Any) -> str:
        template = environment.get_template(f"{check_name}.flux")
        return template.render(**render_variables(check_name, **variables))

    return render


@dataclass
class TemplateSet:
    label: str
    render: Callable[..., str]
    alert_bucket: str
    tasks: dict[str, list[str]] = field(default_factory=dict)  # check -> task IDs
    cpu: dict[str, list[float]] = field(default_factory=dict)  # check -> per measured cycle
    wall: dict[str, list[float]] = field(default_factory=dict)
    findings: dict[datetime, set[Finding]] = field(default_factory=dict)


def create_bucket(client: httpx.Client, org_id: str, name: str) -> None:
    check(
        client.post(
            "/api/v2/buckets",
            json={"orgID": org_id, "name": name, "retentionRules": []},
        )
    )


def install_tasks(
    server: InfluxServer, template_set: TemplateSet, apps: Sequence[str], checks: Sequence[str]
) -> None:
    # A daily schedule, away from now: the bench forces every run itself.
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    offset = "0s" if midnight - datetime.now(UTC) > timedelta(hours=2) else "3h"
    settings = CheckSettings(every="24h")
    with server.client(timeout=120) as client:
        create_bucket(client, server.org_id, template_set.alert_bucket)
        for check_name in checks:
            ids = template_set.tasks.setdefault(check_name, [])
            for app in apps:
                flux = template_set.render(
                    check_name,
                    bucket=app,
                    task_name=f"{app}-{check_name}-{template_set.label}",
                    offset=offset,
                    settings=settings,
                    alert_bucket=template_set.alert_bucket,
                )
                response = client.post(
                    "/api/v2/tasks",
                    json={"orgID": server.org_id, "flux": flux, "status": "active"},
                )
                ids.append(str(check(response).json()["id"]))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def force_runs(client: httpx.Client, task_ids: Sequence[str], scheduled_for: datetime) -> None:
    """Force one run of every task at ``scheduled_for`` and wait until all of them finished."""
    runs = []
    for task_id in task_ids:
        response = client.post(
            f"/api/v2/tasks/{task_id}/runs", json={"scheduledFor": rfc3339(scheduled_for)}
        )
        runs.append((task_id, str(check(response).json()["id"])))
    deadline = time.monotonic() + RUN_TIMEOUT
    for task_id, run_id in runs:
        while True:
            response = client.get(f"/api/v2/tasks/{task_id}/runs/{run_id}")
            # 404 for a moment while a finished run moves from the queue to the run log, and
            # influxd 2.7 sometimes answers 500 (a nil dereference) in that moment too.
            transient = response.status_code == 404 or response.status_code >= 500
            status = None if transient else check(response).json()["status"]
            if status in FINISHED:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run_id} of task {task_id} not finished: {status}")
            time.sleep(0.1)
        if status != "success":
            logs = client.get(f"/api/v2/tasks/{task_id}/runs/{run_id}/logs").json()
            messages = [str(event.get("message", ""))[-600:] for event in logs.get("events", [])]
            raise SystemExit(f"run {run_id} of task {task_id}: {status}\n" + "\n".join(messages))


def cycle(
    server: InfluxServer,
    template_set: TemplateSet,
    checks: Sequence[str],
    scheduled_for: datetime,
    *,
    measured: bool,
) -> tuple[float, float]:
    """One forced run of every task of the set, check by check: (CPU-seconds, wall seconds)."""
    settle(pid_of(server))
    total = elapsed = 0.0
    with server.client(timeout=120) as client:
        for check_name in checks:
            before, started = cpu_seconds(pid_of(server)), time.perf_counter()
            force_runs(client, template_set.tasks[check_name], scheduled_for)
            wall = time.perf_counter() - started
            cpu = cpu_seconds(pid_of(server)) - before
            total += cpu
            elapsed += wall
            if measured:
                template_set.cpu.setdefault(check_name, []).append(cpu)
                template_set.wall.setdefault(check_name, []).append(wall)
    return total, elapsed


def query_findings(
    server: InfluxServer, bucket: str, start: datetime, stop: datetime
) -> list[dict[str, str]]:
    flux = (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {rfc3339(start)}, stop: {rfc3339(stop)})\n"
        '    |> filter(fn: (r) => r._measurement == "alert")\n'
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '    |> keep(columns: ["_time", "check", "application", "cluster", "dedup_key",'
        ' "severity", "message", "value"])\n'
        "    |> group()\n"
    )
    with server.client(timeout=120) as client:
        response = client.post(
            "/api/v2/query",
            params={"orgID": server.org_id},
            json={"query": flux, "type": "flux", "dialect": {"header": True, "annotations": []}},
            headers={"Accept": "application/csv"},
        )
        text = check(response).text
    rows: list[dict[str, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if block.strip():
            rows.extend(csv.DictReader(io.StringIO(block)))
    for row in rows:
        if row.get("error"):
            raise SystemExit(f"findings query failed: {row['error']}")
    return rows


def collect_findings(server: InfluxServer, template_set: TemplateSet, start: datetime) -> None:
    rows = query_findings(server, template_set.alert_bucket, start, start + timedelta(hours=1))
    for row in rows:
        moment = datetime.fromisoformat(row["_time"].replace("Z", "+00:00"))
        finding: Finding = (
            row["check"],
            row["application"],
            row["cluster"],
            row["dedup_key"],
            row["severity"],
            row["message"],
            round(float(row["value"]), 6),
        )
        template_set.findings.setdefault(moment, set()).add(finding)


# report


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(sets: Sequence[TemplateSet], checks: Sequence[str], cycles: Sequence[datetime]) -> None:
    old, new = sets
    print()
    print(f"{'influxd CPU-s (median)':26}" + "".join(f"{s.label:>12}" for s in sets) + "   ratio")
    totals = []
    for template_set in sets:
        per_cycle = [sum(c) for c in zip(*(template_set.cpu[n] for n in checks), strict=True)]
        totals.append(per_cycle)
    for name in checks:
        values = [median(s.cpu[name]) for s in sets]
        print(
            f"  {name:24}" + "".join(f"{v:12.2f}" for v in values) + f"{values[1] / values[0]:8.3f}"
        )
    whole = [median(t) for t in totals]
    print(f"  {'cycle':24}" + "".join(f"{v:12.2f}" for v in whole) + f"{whole[1] / whole[0]:8.3f}")
    print(
        "  cycles: "
        + "; ".join(
            f"{s.label} " + " ".join(f"{v:.2f}" for v in t)
            for s, t in zip(sets, totals, strict=True)
        )
    )
    walls = [median([sum(c) for c in zip(*(s.wall[n] for n in checks), strict=True)]) for s in sets]
    print(f"{'wall s per cycle (median)':26}" + "".join(f"{v:12.2f}" for v in walls))
    counts = [[len(s.findings.get(moment, set())) for moment in cycles] for s in sets]
    print(f"{'findings per cycle':26}" + "".join(f"{c!s:>12}" for c in counts))
    by_check = {
        name: [sum(1 for f in s.findings.get(cycles[0], set()) if f[0] == name) for s in sets]
        for name in checks
    }
    print(
        "  by check (first cycle): " + ", ".join(f"{n} {c[0]}/{c[1]}" for n, c in by_check.items())
    )
    same = all(old.findings.get(m, set()) == new.findings.get(m, set()) for m in cycles)
    print(f"findings identical: {'yes' if same else 'NO'}")
    if not same:
        for moment in cycles:
            only_old = old.findings.get(moment, set()) - new.findings.get(moment, set())
            only_new = new.findings.get(moment, set()) - old.findings.get(moment, set())
            for label, diff in ((old.label, only_old), (new.label, only_new)):
                for finding in sorted(diff)[:10]:
                    print(f"  {rfc3339(moment)} only {label}: {finding}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=97)
    parser.add_argument("--repeats", type=int, default=5, help="measured cycles per set")
    parser.add_argument("--checks", default=",".join(COMPARED_CHECKS))
    args = parser.parse_args()
    checks = parse_checks(args.checks)
    if not set(checks) <= set(COMPARED_CHECKS):
        parser.error(f"--checks: only checks 0.1.0 had ({', '.join(COMPARED_CHECKS)})")
    # Stop the throwaway influxd on SIGTERM too, not only on errors and Ctrl-C.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    apps = [f"app{i:03d}" for i in range(args.apps)]

    # The bench renders 0.1.0's templates with the variables render_check uses: check that.
    current = template_renderer(NEW_TEMPLATES)
    for name in COMPARED_CHECKS:
        variables: dict[str, Any] = {
            "bucket": "mobu",
            "task_name": "mobu-x",
            "offset": "1m",
            "settings": CheckSettings(),
            "alert_bucket": "multiapp_",
        }
        if current(name, **variables) != render_check(name, **variables):
            raise SystemExit(f"render_variables() differs from render_check() for {name}")

    sets = [
        TemplateSet("0.1.0", template_renderer(OLD_TEMPLATES), "multiapp_0.1.0"),
        TemplateSet("current", render_check, "multiapp_"),
    ]
    binary = influxd_binary()
    with run_binary(binary) as server:
        end = int(time.time()) - 5
        started = time.perf_counter()
        with server.client(timeout=120) as client:
            for app in apps:
                create_bucket(client, server.org_id, app)
        points = write_data(server, apps, end)
        print(
            f"{len(apps)} apps, {points} points written in {time.perf_counter() - started:.1f} s "
            f"(influxd {binary}, pid {server.pid})"
        )
        for template_set in sets:
            install_tasks(server, template_set, apps, checks)
        print(f"{sum(len(t) for s in sets for t in s.tasks.values())} tasks installed; settling")
        settle(pid_of(server), limit=300)
        moments = [datetime.fromtimestamp(end + 1 + i, UTC) for i in range(args.repeats + 1)]
        for i, moment in enumerate(moments):
            for template_set in sets if i % 2 == 0 else reversed(sets):
                cpu, wall = cycle(server, template_set, checks, moment, measured=i > 0)
                print(
                    f"cycle {i}{' (warm-up)' if i == 0 else ''} {template_set.label:8} "
                    f"{cpu:7.2f} CPU-s {wall:7.1f} s wall",
                    flush=True,
                )
        for template_set in sets:
            collect_findings(server, template_set, moments[0] - timedelta(minutes=1))
        report(sets, checks, moments)


if __name__ == "__main__":
    main()

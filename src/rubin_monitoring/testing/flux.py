"""Drive Flux on a real InfluxDB from tests: buckets, line protocol, tasks, runs, queries.

Plain HTTP with the operator token (no toolkit code), so tests of the toolkit's own storage layer
can use these helpers as an independent witness. Everything takes an ``org`` that has ``url``,
``token``, ``name`` and ``id`` (the ``org`` fixture in ``tests/conftest.py``).

Typical use::

    from rubin_monitoring.testing.flux import (
        create_bucket, create_task, pod_container_line, query_alerts, run_task_and_wait,
        write_lines,
    )

    create_bucket(org, "mobu")
    create_bucket(org, "multiapp_")
    write_lines(org, "mobu", [pod_container_line(...), ...])
    task_id = create_task(org, render_check("restarts", ...))
    run = run_task_and_wait(org, task_id)
    alerts = query_alerts(org, at=run.scheduled_for)
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

__all__ = [
    "Alert",
    "InfluxOrg",
    "TaskRun",
    "TaskRunError",
    "create_bucket",
    "create_task",
    "delete_task",
    "field_types",
    "get_task",
    "line_protocol",
    "pod_container_line",
    "query_alerts",
    "query_rows",
    "run_task_and_wait",
    "start_run",
    "wait_for_run",
    "write_lines",
]

FieldValue = int | float | str | bool
ALERT_BUCKET = "multiapp_"
FINISHED = frozenset({"success", "failed", "canceled"})


class InfluxOrg(Protocol):
    """What these helpers need to know about the organization under test."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...


class TaskRunError(AssertionError):
    """A task run failed, was canceled or did not finish in time; the message has its logs."""


@dataclass(frozen=True)
class TaskRun:
    """A finished run of a task."""

    task_id: str
    id: str
    status: str
    scheduled_for: datetime
    """The run's ``now()``: findings written by the run carry this ``_time``."""
    log: tuple[str, ...]


@dataclass(frozen=True)
class Alert:
    """One finding read back from the alert bucket (an ``alert`` point)."""

    time: datetime
    check: str
    application: str
    cluster: str
    severity: str
    dedup_key: str
    message: str
    value: float
    tags: Mapping[str, str]
    """Every tag of the point (to assert that no other tag was written)."""


@contextmanager
def _client(org: InfluxOrg) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {org.token}"}, timeout=30
    ) as client:
        yield client


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise AssertionError(
            f"InfluxDB answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {response.text}"
        )
    return response


def create_bucket(org: InfluxOrg, name: str, retention_seconds: int = 3600) -> str:
    """Create bucket ``name`` in ``org`` (1h retention by default); return its ID."""
    with _client(org) as client:
        response = client.post(
            "/api/v2/buckets",
            json={
                "orgID": org.id,
                "name": name,
                "retentionRules": [{"type": "expire", "everySeconds": retention_seconds}],
            },
        )
        return str(_check(response).json()["id"])


def _escape(text: str, special: str) -> str:
    for char in "\\" + special:
        text = text.replace(char, "\\" + char)
    return text


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_protocol(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    timestamp: datetime | int | float,
) -> str:
    """One line of line protocol; ``int`` fields get the ``i`` suffix, as Telegraf writes them.

    ``timestamp`` is a datetime or Unix seconds; the line carries nanoseconds (the default
    precision of :func:`write_lines`). Empty tag values are left out, as Telegraf does.
    """
    seconds = timestamp.timestamp() if isinstance(timestamp, datetime) else float(timestamp)
    head = _escape(measurement, ", ")
    for key in sorted(tags):
        if tags[key] != "":
            head += f",{_escape(key, ',= ')}={_escape(tags[key], ',= ')}"
    body = ",".join(f"{_escape(key, ',= ')}={_field(value)}" for key, value in fields.items())
    return f"{head} {body} {round(seconds * 1_000_000_000)}"


def pod_container_line(
    *,
    cluster: str,
    namespace: str,
    pod: str,
    container: str,
    fields: Mapping[str, FieldValue],
    timestamp: datetime | int | float,
    node: str = "node-1",
    host: str = "telegraf-0",
    extra_tags: Mapping[str, str] | None = None,
) -> str:
    """A ``kubernetes_pod_container`` point shaped like Telegraf's.

    ``inputs.kube_inventory`` adds the tags ``phase``, ``state`` and ``readiness`` (pass them in
    ``extra_tags``) and writes ``restarts_total``/``state_code`` and resource limits as ints,
    ``state_reason``/``phase_reason`` as strings; ``inputs.kubernetes`` writes
    ``cpu_usage_nanocores`` and the ``memory_*_bytes`` fields as ints.
    """
    tags = {
        "cluster": cluster,
        "namespace": namespace,
        "pod_name": pod,
        "container_name": container,
        "node_name": node,
        "host": host,
        **(extra_tags or {}),
    }
    return line_protocol("kubernetes_pod_container", tags, fields, timestamp)


def write_lines(org: InfluxOrg, bucket: str, lines: Iterable[str], precision: str = "ns") -> None:
    """Write line protocol to ``bucket`` (nanosecond timestamps unless ``precision`` says)."""
    body = "\n".join(lines)
    with _client(org) as client:
        response = client.post(
            "/api/v2/write",
            params={"orgID": org.id, "bucket": bucket, "precision": precision},
            content=body.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        _check(response)


def create_task(org: InfluxOrg, flux: str, *, status: str = "active") -> str:
    """Create a task from ``flux`` in ``org``; return its ID.

    A task must be active to be run by hand (``inactive`` tasks answer 400 to a forced run).
    """
    with _client(org) as client:
        response = client.post(
            "/api/v2/tasks", json={"orgID": org.id, "flux": flux, "status": status}
        )
        return str(_check(response).json()["id"])


def get_task(org: InfluxOrg, task_id: str) -> dict[str, Any]:
    """The task as InfluxDB stores it (``flux``, ``name``, ``every``, ``offset``, ``status``...)."""
    with _client(org) as client:
        task: dict[str, Any] = _check(client.get(f"/api/v2/tasks/{task_id}")).json()
        return task


def delete_task(org: InfluxOrg, task_id: str) -> None:
    """Delete a task with the operator token."""
    with _client(org) as client:
        _check(client.delete(f"/api/v2/tasks/{task_id}"))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_run(org: InfluxOrg, task_id: str, *, scheduled_for: datetime | None = None) -> str:
    """Force a run of the task; return the run ID.

    The run's ``now()`` is ``scheduled_for`` (whole seconds; default: the server's now). Two runs
    of a task must differ in ``scheduled_for`` to write findings at different times.
    """
    body: dict[str, Any] = {}
    if scheduled_for is not None:
        body["scheduledFor"] = _rfc3339(scheduled_for)
    with _client(org) as client:
        response = client.post(f"/api/v2/tasks/{task_id}/runs", json=body)
        return str(_check(response).json()["id"])


def wait_for_run(org: InfluxOrg, task_id: str, run_id: str, *, timeout: float = 30) -> TaskRun:
    """Poll the run until it finished; raise :class:`TaskRunError` (with logs) unless success."""
    deadline = time.monotonic() + timeout
    with _client(org) as client:
        while True:
            response = client.get(f"/api/v2/tasks/{task_id}/runs/{run_id}")
            # 404 for a moment while a finished run moves from the queue to the run log.
            if response.status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            run = _check(response).json()
            if run["status"] in FINISHED or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        events = run.get("log") or []
        if run["status"] != "success" and not events:
            # The logs endpoint can answer 404 for a moment after the run finished.
            response = client.get(f"/api/v2/tasks/{task_id}/runs/{run_id}/logs")
            events = response.json().get("events") or [] if response.is_success else []
    messages = tuple(str(event.get("message", "")) for event in events)
    if run["status"] != "success":
        late = "" if run["status"] in FINISHED else f" (not finished after {timeout}s)"
        # The first event repeats the whole script: shorten it, keep the errors whole.
        shown = [m if len(m) < 500 else m[:200] + " [...]" for m in messages]
        raise TaskRunError(
            f"run {run_id} of task {task_id} is {run['status']}{late}; its log:\n"
            + "\n".join(shown)
        )
    return TaskRun(task_id, run_id, run["status"], _time(run["scheduledFor"]), messages)


def run_task_and_wait(
    org: InfluxOrg,
    task_id: str,
    *,
    scheduled_for: datetime | None = None,
    timeout: float = 30,
) -> TaskRun:
    """Force a run of the task and wait for it (about a second: the scheduler ticks each 1s)."""
    run_id = start_run(org, task_id, scheduled_for=scheduled_for)
    return wait_for_run(org, task_id, run_id, timeout=timeout)


def _query_csv(org: InfluxOrg, flux: str, *, annotations: list[str]) -> str:
    """The CSV InfluxDB answers to ``flux`` in ``org``, with a header and ``annotations``."""
    with _client(org) as client:
        response = client.post(
            "/api/v2/query",
            params={"orgID": org.id},
            json={
                "query": flux,
                "type": "flux",
                "dialect": {"header": True, "annotations": annotations},
            },
            headers={"Accept": "application/csv"},
        )
        return _check(response).text


def query_rows(org: InfluxOrg, flux: str) -> list[dict[str, str]]:
    """Run a Flux query in ``org``; every row of every table, as text, without CSV annotations."""
    text = _query_csv(org, flux, annotations=[])
    rows: list[dict[str, str]] = []
    # Tables with different columns are separated by an empty line, each with its own header.
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        for row in csv.DictReader(io.StringIO(block)):
            if row.get("error"):
                raise AssertionError(f"Flux query failed: {row['error']}")
            rows.append({key: value for key, value in row.items() if key not in ("", "table")})
    return rows


def _flux_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


ALERT_TAGS = ("check", "application", "cluster", "severity", "dedup_key")
_NOT_TAGS = frozenset(
    {"result", "_start", "_stop", "_time", "_measurement", "message", "value", "_field", "_value"}
)


def query_alerts(
    org: InfluxOrg,
    *,
    bucket: str = ALERT_BUCKET,
    start: str = "-1h",
    check: str | None = None,
    application: str | None = None,
    at: datetime | None = None,
) -> list[Alert]:
    """The ``alert`` points in ``bucket`` (one per point, both fields), oldest first.

    Filter by ``check``, ``application`` or the exact time ``at`` (a run's ``scheduled_for``).
    """
    filters = ['r._measurement == "alert"']
    if check is not None:
        filters.append(f"r.check == {_flux_string(check)}")
    if application is not None:
        filters.append(f"r.application == {_flux_string(application)}")
    flux = (
        f"from(bucket: {_flux_string(bucket)})\n"
        f"    |> range(start: {start})\n"
        f"    |> filter(fn: (r) => {' and '.join(filters)})\n"
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "    |> group()\n"
        '    |> sort(columns: ["_time", "dedup_key"])\n'
    )
    alerts = []
    for row in query_rows(org, flux):
        moment = _time(row["_time"])
        if at is not None and moment != at:
            continue
        tags = {key: value for key, value in row.items() if key not in _NOT_TAGS and value != ""}
        alerts.append(
            Alert(
                time=moment,
                check=row.get("check", ""),
                application=row.get("application", ""),
                cluster=row.get("cluster", ""),
                severity=row.get("severity", ""),
                dedup_key=row.get("dedup_key", ""),
                message=row.get("message", ""),
                value=float(row["value"]) if row.get("value") else float("nan"),
                tags=tags,
            )
        )
    return alerts


def field_types(
    org: InfluxOrg, bucket: str, measurement: str, *, start: str = "-1h"
) -> dict[str, str]:
    """Field name -> Flux type (``double``, ``string``, ``long``...) of a measurement's points."""
    flux = (
        f"from(bucket: {_flux_string(bucket)})\n"
        f"    |> range(start: {start})\n"
        f"    |> filter(fn: (r) => r._measurement == {_flux_string(measurement)})\n"
        '    |> group(columns: ["_field"])\n'
        "    |> first()\n"
        '    |> keep(columns: ["_field", "_value"])\n'
    )
    text = _query_csv(org, flux, annotations=["datatype"])
    types: dict[str, str] = {}
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = list(csv.reader(io.StringIO(block)))
        if len(lines) < 3 or lines[0][:1] != ["#datatype"]:
            continue
        header, datatypes = lines[1], dict(zip(lines[1], lines[0], strict=True))
        for line in lines[2:]:
            row = dict(zip(header, line, strict=True))
            types[row["_field"]] = datatypes["_value"]
    return types

"""taskmaker: one Flux check task per (application, enabled check), kept in step with the
templates. Drift is fixed in place with PATCH, which keeps the task's ID and run history."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..durations import parse_duration
from ..models.changes import Action, Change, Orphan, Plan, ReconcileOptions, Report, Target
from ..models.tasks import ObservedTask, TaskSpec
from ..storage.influxdb import InfluxDBStore
from .checks import CheckParams, render_check
from .reconcile import ObjectHandlers, apply_plan

KIND = "task"
_TRAILING_COMMA = re.compile(r",(?=[)\]}])")
_OPTION_TASK = re.compile(r"^\s*option\s+task\s*=\s*\{.*?\}\s*$", re.MULTILINE | re.DOTALL)


def task_name(application: str, check: str) -> str:
    return f"{application} {check}"


def stagger_offset(application: str, check: str, every_seconds: int) -> int:
    """A stable offset in [0, every): runs spread over the interval, and adding an
    application never moves the others' offsets."""
    return zlib.crc32(f"{application}/{check}".encode()) % max(every_seconds, 1)


def desired_tasks(
    buckets: Sequence[str], checks: Sequence[str], params: CheckParams
) -> list[TaskSpec]:
    every = parse_duration(params.every)
    specs = []
    for application in buckets:
        for check in checks:
            offset = stagger_offset(application, check, every)
            name = task_name(application, check)
            flux = render_check(
                check,
                application=application,
                task_name=name,
                offset=f"{offset}s",
                params=params,
            )
            specs.append(TaskSpec(application, check, name, flux, every, offset))
    return specs


def flux_body(flux: str) -> str:
    """The script without its ``option task`` statement and without whitespace outside string
    literals: what is left of a task when the server rewrites it.

    Editing a task's every/offset makes InfluxDB rewrite the option statement and re-format the
    whole script with Flux's formatter (line breaks, indentation, trailing commas in multi-line
    lists), so two scripts that differ in nothing else must compare equal, or every such edit
    would look like new Flux.
    """
    body = _OPTION_TASK.sub("", flux, count=1)
    kept: list[str] = []
    code: list[str] = []  # characters since the last string literal

    def flush_code() -> None:
        kept.append(_TRAILING_COMMA.sub("", "".join(code)))
        code.clear()

    i, n = 0, len(body)
    while i < n:
        char = body[i]
        if char == '"':
            end = i + 1
            while end < n and body[end] != '"':
                end += 2 if body[end] == "\\" else 1
            flush_code()
            kept.append(body[i : end + 1])
            i = end + 1
        elif body.startswith("//", i):
            end = body.find("\n", i)
            end = n if end == -1 else end
            code.append("".join(body[i:end].split()) + "\n")
            i = end
        else:
            if not char.isspace():
                code.append(char)
            i += 1
    flush_code()
    return "".join(kept)


def _seconds(literal: str | None) -> int | None:
    if not literal:
        return 0
    try:
        return parse_duration(literal)
    except ValueError:
        return None


def drift(spec: TaskSpec, task: ObservedTask) -> str | None:
    """Why the stored task differs from the rendered one, or None."""
    if task.flux != spec.flux and flux_body(task.flux) != flux_body(spec.flux):
        return "Flux differs from the template"
    if task.name != spec.name:
        return f"name {task.name!r} -> {spec.name!r}"
    if _seconds(task.every) != spec.every_seconds:
        return f"every {task.every} -> {spec.every_seconds}s"
    if _seconds(task.offset) != spec.offset_seconds:
        return f"offset {task.offset or '0s'} -> {spec.offset_seconds}s"
    if task.status != "active":
        return f"status {task.status} -> active"
    return None


def plan_tasks(
    desired: list[TaskSpec],
    observed: list[ObservedTask],
    *,
    force: bool = False,
    prune: bool = False,
) -> Plan:
    by_identity: dict[tuple[str, str], list[ObservedTask]] = {}
    for task in observed:
        identity = task.identity
        if identity is not None:
            by_identity.setdefault(identity, []).append(task)
    changes: list[Change] = []
    unchanged = 0
    for spec in desired:
        found = sorted(by_identity.pop(spec.identity, []), key=lambda t: t.id)
        if not found:
            changes.append(Change(Action.CREATE, KIND, spec.name, "missing", Target(spec, None)))
            continue
        current, duplicates = found[0], found[1:]
        reason = drift(spec, current)
        if force:
            changes.append(Change(Action.RECREATE, KIND, spec.name, "FORCE", Target(spec, current)))
        elif reason:
            changes.append(Change(Action.UPDATE, KIND, spec.name, reason, Target(spec, current)))
        else:
            unchanged += 1
        for extra in duplicates:
            changes.append(
                Change(
                    Action.DELETE,
                    KIND,
                    spec.name,
                    f"duplicate of task {current.id}",
                    Target(None, extra),
                )
            )
    orphans: list[Orphan] = []
    for (application, check), tasks in sorted(by_identity.items()):
        for task in tasks:
            reason = f"owned, but check {check} of {application} is no longer desired"
            orphans.append(Orphan(KIND, task.name, reason))
            if prune:
                changes.append(
                    Change(Action.DELETE, KIND, task.name, "--prune: " + reason, Target(None, task))
                )
    return Plan(changes=changes, orphans=orphans, unchanged=unchanged)


def run_taskmaker(
    store: InfluxDBStore,
    desired: list[TaskSpec],
    options: ReconcileOptions,
) -> Report:
    plan = plan_tasks(desired, store.list_tasks(), force=options.force, prune=options.prune)

    handlers = ObjectHandlers(
        create=store.create_task,
        update=lambda current, spec: store.update_task(current.id, spec),
        delete=lambda current: store.delete_task(current.id),
    )
    return apply_plan("taskmaker", plan, handlers.execute, options)


@dataclass(frozen=True)
class TaskHealth:
    failing: list[ObservedTask]
    owned: int

    def to_json(self) -> dict[str, object]:
        return {
            "job": "taskmaker-health",
            "owned_tasks": self.owned,
            "failing": [
                {
                    "id": task.id,
                    "name": task.name,
                    "application": (task.identity or ("", ""))[0],
                    "check": (task.identity or ("", ""))[1],
                    "last_run_status": task.last_run_status,
                    "last_run_error": task.last_run_error,
                    "latest_completed": task.latest_completed,
                }
                for task in self.failing
            ],
        }


def task_health(store: InfluxDBStore) -> TaskHealth:
    """Owned tasks whose last run failed, from one task listing."""
    owned = [task for task in store.list_tasks() if task.identity is not None]
    failing = [task for task in owned if task.last_run_status == "failed"]
    return TaskHealth(failing=sorted(failing, key=lambda t: t.name), owned=len(owned))

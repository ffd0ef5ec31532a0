"""taskmaker: one Flux check task per (application bucket, enabled check), kept in step with
the templates. Drift is fixed in place with PATCH, which keeps the task's ID and run history.

A task is the toolkit's when its description carries the marker with its (bucket, check) and
its ``ownerID`` is the user of the token taskmaker runs with (the bot user, see tokenmaker).
A task anyone else made is never changed or deleted, whatever its description says.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..durations import parse_duration
from ..models.changes import Action, Change, NoteKind, Plan, ReconcileOptions
from ..models.checks import BUCKET_CHECKS, FLEET_CHECKS, SOURCE_CHECKS, CheckSettings
from ..models.inventory import Inventory, InventoryProblem, bucket_name
from ..models.tasks import ObservedTask, Scope, TaskIdentity, TaskSpec
from ..storage.influxdb import InfluxDBStore
from .checks import render_check, render_fleet_check, render_silent_check
from .reconcile import HELD_REASON, ObjectJob, problem_result

KIND = "task"
_TRAILING_COMMA = re.compile(r",(?=[)\]}])")
_OPTION_TASK = re.compile(r"^\s*option\s+task\s*=\s*\{.*?\}\s*$", re.MULTILINE | re.DOTALL)

TaskPlan = Plan[TaskSpec, ObservedTask]


FLEET_SCOPE = {
    "disk": "influxdb",
    "site_down": "sites",
    "tls_expiry": "sites",
    "cert_expiry": "certificates",
}
"""The scope named in a fleet task's marker: what it watches."""


def task_name(scope: str, check: str) -> str:
    """The task's name, ``<scope> <check>`` (names are for people; identity is in the marker)."""
    return f"{scope} {check}"


def stagger_offset(scope: str, check: str, every_seconds: int) -> int:
    """A stable offset in [0, every): runs spread over the interval, and adding an
    application never moves the others' offsets."""
    return zlib.crc32(f"{scope}/{check}".encode()) % max(every_seconds, 1)


def desired_tasks(inventory: Inventory | Sequence[str], settings: CheckSettings) -> list[TaskSpec]:
    """The rendered tasks of ``settings.checks``: one per (application bucket, bucket check),
    one per check of :data:`SOURCE_CHECKS` whose bucket is an application's, one ``silent``
    per environment that enables applications (from the inventory), one per fleet check.
    ``inventory`` may be just the bucket names (no environments)."""
    every = parse_duration(settings.every)
    if isinstance(inventory, Inventory):
        buckets, applications = inventory.buckets, list(inventory.applications)
    else:
        buckets = applications = list(inventory)
    specs = []

    def offset_of(scope: str, check: str) -> tuple[str, int]:
        seconds = stagger_offset(scope, check, every)
        return f"{seconds}s", seconds

    for bucket in buckets:
        for check in settings.checks:
            if check not in BUCKET_CHECKS:
                continue
            offset, seconds = offset_of(bucket, check)
            name = task_name(bucket, check)
            flux = render_check(
                check, bucket=bucket, task_name=name, offset=offset, settings=settings
            )
            specs.append(TaskSpec(bucket, check, name, flux, every, seconds))
    for check in settings.checks:
        bucket = SOURCE_CHECKS.get(check, "")
        if bucket not in buckets:
            continue
        offset, seconds = offset_of(bucket, check)
        name = task_name(bucket, check)
        flux = render_check(
            check,
            bucket=bucket,
            task_name=name,
            offset=offset,
            settings=settings,
            applications=applications,
        )
        specs.append(TaskSpec(bucket, check, name, flux, every, seconds))
    if "silent" in settings.checks and isinstance(inventory, Inventory):
        known = set(buckets)
        for env in inventory.environments:
            expected = sorted({bucket_name(app) for app in env.applications} & known)
            if not expected:
                continue
            offset, seconds = offset_of(f"cluster:{env.name}", "silent")
            name = task_name(env.name, "silent")
            flux = render_silent_check(
                cluster=env.name,
                buckets=expected,
                task_name=name,
                offset=offset,
                settings=settings,
            )
            specs.append(TaskSpec(env.name, "silent", name, flux, every, seconds, Scope.CLUSTER))
    for check in settings.checks:
        if check not in FLEET_CHECKS:
            continue
        scope = FLEET_SCOPE[check]
        offset, seconds = offset_of(f"fleet:{scope}", check)
        name = task_name(scope, check)
        flux = render_fleet_check(
            check, task_name=name, offset=offset, settings=settings, applications=applications
        )
        specs.append(TaskSpec(scope, check, name, flux, every, seconds, Scope.FLEET))
    return specs


def flux_body(flux: str) -> str:
    """The script without its ``option task`` statement and without whitespace outside string
    literals: what is left of a task when the server rewrites it.

    Editing a task's every/offset makes InfluxDB rewrite the option statement and re-format the
    whole script with Flux's formatter (line breaks, indentation, trailing commas in multi-line
    lists, also inside the ``${...}`` of an interpolated string), so two scripts that differ in
    nothing else must compare equal, or every such edit would look like new Flux.
    """
    body = _OPTION_TASK.sub("", flux, count=1)
    return _normalise_code(body, 0, interpolation=False)[0]


def _normalise_code(text: str, start: int, *, interpolation: bool) -> tuple[str, int]:
    """Code from ``start`` with flux_body's normalisation, and where it ends: at the end of
    ``text``, or, for the code of an ``${...}``, at its closing brace."""
    kept: list[str] = []
    code: list[str] = []  # characters since the last string literal
    depth = 0  # braces opened inside this code

    def flush_code() -> None:
        kept.append(_TRAILING_COMMA.sub("", "".join(code)))
        code.clear()

    i, n = start, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            flush_code()
            literal, i = _normalise_string(text, i)
            kept.append(literal)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            code.append("".join(text[i:end].split()) + "\n")
            i = end
        elif char == "}" and interpolation and depth == 0:
            break
        else:
            depth += {"{": 1, "}": -1}.get(char, 0)
            if not char.isspace():
                code.append(char)
            i += 1
    flush_code()
    return "".join(kept), i


def _normalise_string(text: str, start: int) -> tuple[str, int]:
    """The string literal opening at ``start``, verbatim but for the code of its ``${...}``
    parts (normalised), and the index after its closing quote."""
    kept = ['"']
    i, n = start + 1, len(text)
    while i < n and text[i] != '"':
        if text[i] == "\\":
            kept.append(text[i : i + 2])
            i += 2
        elif text.startswith("${", i):
            code, i = _normalise_code(text, i + 2, interpolation=True)
            kept.append("${" + code + "}")
            i += 1
        else:
            kept.append(text[i])
            i += 1
    kept.append('"')
    return "".join(kept), i + 1


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
    owner_id: str,
    force: bool = False,
    prune: bool = False,
    held: frozenset[str] = frozenset(),
) -> TaskPlan:
    """Create missing tasks, fix drifted ones in place (recreate with ``force``), delete
    duplicates of one identity, report undesired ones as orphans (deleted with ``prune``)
    unless their bucket or environment is ``held`` (kept as it is). Only tasks owned by
    ``owner_id`` with the marker are considered. Pure."""
    by_identity: dict[TaskIdentity, list[ObservedTask]] = {}
    for task in observed:
        identity = task.identity
        if identity is not None and task.owned_by(owner_id):
            by_identity.setdefault(identity, []).append(task)
    plan: TaskPlan = Plan()
    for spec in desired:
        found = sorted(by_identity.pop(spec.identity, []), key=lambda t: t.id)
        if not found:
            plan.changes.append(Change(Action.CREATE, KIND, spec.name, "missing", spec))
            continue
        current, duplicates = found[0], found[1:]
        reason = drift(spec, current)
        if force:
            plan.changes.append(Change(Action.RECREATE, KIND, spec.name, "FORCE", spec, current))
        elif reason:
            plan.changes.append(Change(Action.UPDATE, KIND, spec.name, reason, spec, current))
        else:
            plan.unchanged += 1
        for extra in duplicates:
            reason = f"duplicate of task {current.id}"
            plan.changes.append(Change(Action.DELETE, KIND, spec.name, reason, None, extra))
    for (_, scope, check), tasks in sorted(by_identity.items()):
        for task in tasks:
            if scope in held:
                plan.note(NoteKind.WARNING, KIND, task.name, HELD_REASON)
                continue
            reason = f"owned, but check {check} of {scope} is no longer desired"
            plan.orphan(KIND, task.name, reason, task, prune=prune)
    return plan


@dataclass(frozen=True)
class ObservedTasks:
    """The org's tasks, and the user whose tasks are the toolkit's."""

    tasks: list[ObservedTask]
    owner_id: str


class TaskMaker(ObjectJob[ObservedTasks, TaskSpec, ObservedTask]):
    """taskmaker: ``desired`` tasks, owned by the user of the store's token."""

    name = "taskmaker"

    def __init__(
        self,
        store: InfluxDBStore,
        desired: list[TaskSpec],
        *,
        problems: Sequence[InventoryProblem] = (),
        held: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.desired = desired
        self.problems = tuple(problems)
        self.held = held

    def observe(self) -> ObservedTasks:
        return ObservedTasks(self.store.list_tasks(), self.store.current_user_id())

    def plan(self, observed: ObservedTasks, options: ReconcileOptions) -> TaskPlan:
        plan = plan_tasks(
            self.desired,
            observed.tasks,
            owner_id=observed.owner_id,
            force=options.force,
            prune=options.prune,
            held=self.held,
        )
        plan.failures.extend(
            problem_result(problem, KIND, problem.bucket or problem.environment or "")
            for problem in self.problems
        )
        return plan

    def create(self, spec: TaskSpec) -> None:
        self.store.create_task(spec)

    def update(self, current: ObservedTask, spec: TaskSpec) -> None:
        self.store.update_task(current.id, spec)

    def delete(self, current: ObservedTask) -> None:
        self.store.delete_task(current.id)


@dataclass(frozen=True)
class TaskHealth:
    """The toolkit's tasks whose last run failed, of ``owned`` in all."""

    failing: list[ObservedTask]
    owned: int

    @property
    def exit_code(self) -> int:
        """1 when an owned task's last run failed, else 0."""
        return 1 if self.failing else 0


def failing_tasks(tasks: Iterable[ObservedTask]) -> list[ObservedTask]:
    """The tasks whose last run failed, by name (the notifier's heartbeat uses it too)."""
    return sorted(
        (task for task in tasks if task.last_run_status == "failed"), key=lambda t: t.name
    )


def task_health(store: InfluxDBStore) -> TaskHealth:
    """Owned tasks whose last run failed, from one task listing."""
    owner_id = store.current_user_id()
    owned = [task for task in store.list_tasks() if task.owned_by(owner_id)]
    return TaskHealth(failing=failing_tasks(owned), owned=len(owned))

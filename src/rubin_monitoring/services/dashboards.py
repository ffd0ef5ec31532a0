"""dashboardmaker: the dashboards and variables under ``dashboards/``, applied as one InfluxDB
template through one stack (``rubin-monitoring-dashboards``), found again by name.

Observe: the stack, its objects as InfluxDB has them (exported), the organization's variables,
and a dry-run apply of the desired templates (its diff says which objects are new and which the
stack would remove). Plan: create what is new, update what differs from its file, report what
the stack has but no file wants as an orphan (kept: its exported form is applied again), or
delete it with PRUNE; a variable whose name a variable outside the stack already has is a
conflict, left out of the apply. Execute: one apply through the stack (created first if needed)
makes every change of the plan. Dashboards not in the stack are never touched.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..exceptions import InfluxDBAuthError, RubinMonitoringError
from ..models.changes import Action, Change, NoteKind, Plan, ReconcileOptions, orphan_changes
from ..models.dashboards import (
    STACK_DESCRIPTION,
    STACK_NAME,
    DiffEntry,
    ObservedDashboards,
    ObservedStack,
    StackResource,
    TemplateApply,
    TemplateObject,
)
from ..storage.templates import TemplateStore, diff_entries
from .reconcile import ReconcilingJob

DashboardPlan = Plan[TemplateApply, StackResource]

_KIND_LABEL = {"Dashboard": "dashboard", "Variable": "variable"}


def _empty(value: object) -> bool:
    return (
        value is None
        or value == ""
        or value == []
        or value == {}
        or value is False
        or (isinstance(value, int | float) and not isinstance(value, bool) and value == 0)
    )


def normalized(value: Any) -> Any:
    """A template object in a form that compares equal to InfluxDB's export of it: empty values
    (``0``, ``""``, ``false``, empty lists and mappings) dropped, since the export leaves them
    out, and lists of mappings (charts, axes) sorted, since the export reorders them."""
    if isinstance(value, dict):
        items = {key: normalized(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if not _empty(item)}
    if isinstance(value, list):
        elements = [normalized(item) for item in value]
        if all(isinstance(item, dict) for item in elements):
            elements.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return elements
    return value


def _label(kind: str) -> str:
    return _KIND_LABEL.get(kind, kind.lower())


def plan_dashboards(
    desired: list[TemplateObject],
    observed: ObservedDashboards,
    *,
    force: bool = False,
    prune: bool = False,
) -> DashboardPlan:
    """Changes from the dry-run diff: new objects are created, existing ones updated when they
    differ from their file (all with ``force``), objects the stack would remove are orphans
    (kept) or, with ``prune``, deleted. A variable whose name belongs to a variable outside the
    stack is a conflict and left out. Every change carries the same :class:`TemplateApply`.
    Pure."""
    stack = observed.stack
    plan: DashboardPlan = Plan()
    for extra in observed.extra_stacks:
        plan.note(
            NoteKind.WARNING,
            "stack",
            extra.name,
            f"another stack named {extra.name} ({extra.id}) is not used; delete it by hand "
            f"(this run uses {stack.id if stack else 'none'})",
        )
    status = {entry.key: entry for entry in observed.diff}
    owned_ids = {r.resource_id for r in stack.resources} if stack else set()
    skip: list[tuple[str, str]] = []
    documents: list[dict[str, Any]] = []
    pending: list[tuple[Action, str, str, str, StackResource | None]] = []
    for obj in desired:
        entry = status.get(obj.key)
        resource = stack.resource(*obj.key) if stack else None
        if obj.kind == "Variable":
            other = observed.variables.get(obj.name)
            if other is not None and other not in owned_ids:
                reason = f"a variable named {obj.name} not made by dashboardmaker exists; left out"
                plan.note(NoteKind.CONFLICT, "variable", obj.name, reason)
                skip.append(obj.key)
                continue
        documents.append(obj.document)
        name = f"{obj.name} ({obj.source})"
        exported = observed.exported.get(obj.key)
        if entry is None or entry.status == "new" or resource is None or exported is None:
            if stack is None:
                reason = "not in InfluxDB"
            elif resource is None:
                reason = f"not in stack {STACK_NAME}"
            else:
                reason = "deleted from InfluxDB by hand"
            pending.append((Action.CREATE, obj.kind, name, reason, None))
        elif force:
            pending.append((Action.UPDATE, obj.kind, name, "FORCE", resource))
        elif normalized(exported) != normalized(obj.document):
            pending.append((Action.UPDATE, obj.kind, name, f"differs from {obj.source}", resource))
        else:
            plan.unchanged += 1
    removed: list[DiffEntry] = [entry for entry in observed.diff if entry.status == "remove"]
    deletes: list[tuple[DiffEntry, StackResource | None]] = []
    for entry in removed:
        resource = stack.resource(*entry.key) if stack else None
        exported = observed.exported.get(entry.key)
        if not prune and exported is not None:
            documents.append(exported)
        deletes.append((entry, resource))
    apply = TemplateApply(stack, tuple(documents), tuple(skip))
    for action, kind, name, reason, resource in pending:
        plan.changes.append(Change(action, _label(kind), name, reason, apply, resource))
    for entry, resource in deletes:
        current = resource or StackResource(entry.kind, entry.meta_name, entry.id)
        reason = "no file under dashboards/ defines it"
        notes, orphan_deletes = orphan_changes(
            _label(entry.kind), entry.name, reason, current, prune=prune
        )
        plan.notes.extend(notes)
        plan.changes.extend(
            Change(d.action, d.kind, d.name, d.reason, apply, current) for d in orphan_deletes
        )
    return plan


class DashboardMaker(ReconcilingJob[ObservedDashboards, TemplateApply, StackResource]):
    """dashboardmaker: ``desired`` (the template objects of the dashboard files) applied
    through the stack ``stack_name``."""

    name = "dashboardmaker"

    def __init__(
        self, store: TemplateStore, desired: list[TemplateObject], stack_name: str = STACK_NAME
    ) -> None:
        self.store = store
        self.desired = desired
        self.stack_name = stack_name
        self._lock = threading.Lock()
        self._applied: dict[int, RubinMonitoringError | None] = {}

    def observe(self) -> ObservedDashboards:
        stacks = self.store.find_stacks(self.stack_name)
        stack = stacks[0] if stacks else None
        variables = self.store.list_variables()
        exported = self._export(stack, set(variables.values())) if stack else {}
        response = self.store.apply(
            [obj.document for obj in self.desired],
            stack_id=stack.id if stack else None,
            dry_run=True,
        )
        return ObservedDashboards(
            stack,
            tuple(stacks[1:]),
            exported,
            tuple(diff_entries(response)),
            variables,
        )

    def _export(
        self, stack: ObservedStack, variable_ids: set[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The stack's objects as InfluxDB has them, by ``(kind, metadata.name)``. An object
        deleted by hand is left out (the apply makes it again): InfluxDB cannot export a stack
        one of whose objects is gone, so then each remaining object is exported alone."""
        dashboard_ids = [r.resource_id for r in stack.resources if r.kind == "Dashboard"]
        present = self.store.existing_dashboards(dashboard_ids) | variable_ids
        remaining = [r for r in stack.resources if r.resource_id in present]
        exported: dict[tuple[str, str], dict[str, Any]] = {}
        if len(remaining) == len(stack.resources):
            documents = self.store.export_stack(stack.id) if remaining else []
            for document in documents:
                meta_name = str((document.get("metadata") or {}).get("name", ""))
                exported[(str(document.get("kind", "")), meta_name)] = document
            return exported
        for resource in remaining:
            alone = self.store.export_resource(resource.kind, resource.resource_id)
            if alone is not None:
                metadata = {**(alone.get("metadata") or {}), "name": resource.meta_name}
                exported[(resource.kind, resource.meta_name)] = {**alone, "metadata": metadata}
        return exported

    def plan(self, observed: ObservedDashboards, options: ReconcileOptions) -> DashboardPlan:
        return plan_dashboards(self.desired, observed, force=options.force, prune=options.prune)

    def execute(self, change: Change[TemplateApply, StackResource]) -> None:
        """Every change of a plan is made by its one apply: the first change to run makes it,
        the others share its outcome."""
        apply = change.spec
        if apply is None:  # pragma: no cover - every change of plan_dashboards has one
            raise RubinMonitoringError(f"{change.kind} {change.name}: nothing to apply")
        with self._lock:
            if id(apply) not in self._applied:
                try:
                    self._apply(apply)
                except RubinMonitoringError as failure:
                    self._applied[id(apply)] = failure
                else:
                    self._applied[id(apply)] = None
            outcome = self._applied[id(apply)]
        if outcome is not None:
            raise outcome

    def _apply(self, apply: TemplateApply) -> None:
        stack: ObservedStack | None = apply.stack
        if stack is None:
            try:
                stack = self.store.create_stack(self.stack_name, STACK_DESCRIPTION)
            except InfluxDBAuthError as refused:
                hint = (
                    f"{refused.server_message}; creating the stack {self.stack_name} takes write "
                    "on the organization, which the dashboardmaker token lacks: tokenmaker "
                    "creates it"
                )
                method, path, status = refused.method, refused.path, refused.status
                raise InfluxDBAuthError(method, path, status, hint) from None
        self.store.apply(apply.documents, stack_id=stack.id, dry_run=False, skip=apply.skip)

"""Dashboards as code: template objects from ``dashboards/``, the stack that applies them, and
what a dry-run apply says it would do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_VERSION = "influxdata.com/v2alpha1"
KINDS = ("Dashboard", "Variable")
STACK_NAME = "rubin-monitoring-dashboards"
STACK_DESCRIPTION = (
    "Dashboards and variables applied by rubin-monitoring dashboardmaker; do not edit by hand."
)


@dataclass(frozen=True)
class TemplateObject:
    """One object (a Dashboard or a Variable) of a template file."""

    kind: str
    meta_name: str
    """``metadata.name``: how the stack knows the object."""
    name: str
    """``spec.name``: the name people see (unique per organization for variables)."""
    source: str
    """The file it comes from."""
    document: dict[str, Any] = field(compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, metadata.name)``."""
        return (self.kind, self.meta_name)


@dataclass(frozen=True)
class StackResource:
    """An object the stack made."""

    kind: str
    meta_name: str
    resource_id: str


@dataclass(frozen=True)
class ObservedStack:
    """The toolkit's stack and the objects it made."""

    id: str
    name: str
    resources: tuple[StackResource, ...] = ()

    def resource(self, kind: str, meta_name: str) -> StackResource | None:
        """The stack's object of ``kind`` named ``meta_name``, if any."""
        for resource in self.resources:
            if resource.kind == kind and resource.meta_name == meta_name:
                return resource
        return None


@dataclass(frozen=True)
class DiffEntry:
    """One object of a (dry-run) apply's diff: ``status`` is ``new``, ``exists`` or
    ``remove``."""

    kind: str
    meta_name: str
    name: str
    status: str
    id: str

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, metadata.name)``."""
        return (self.kind, self.meta_name)


@dataclass(frozen=True)
class ObservedDashboards:
    """What dashboardmaker plans from: the stack (None before the first apply), other stacks
    of the same name, the stack's objects as InfluxDB has them (exported as template objects),
    the dry-run diff of the desired templates, and the organization's variables (name -> ID)."""

    stack: ObservedStack | None
    extra_stacks: tuple[ObservedStack, ...]
    exported: dict[tuple[str, str], dict[str, Any]]
    diff: tuple[DiffEntry, ...]
    variables: dict[str, str]


@dataclass(frozen=True, eq=False)
class TemplateApply:
    """The one apply that makes every change of a plan: the documents (desired objects, and
    orphans kept without PRUNE, as InfluxDB exported them) and the objects left out (blocked by
    an object the toolkit does not own). Compared by identity: every change of one plan carries
    the same apply, made once."""

    stack: ObservedStack | None
    documents: tuple[dict[str, Any], ...]
    skip: tuple[tuple[str, str], ...] = ()

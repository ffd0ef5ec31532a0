"""Planned changes, their results, and the report every reconciling job prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..exceptions import (
    EXIT_BAD_INPUT,
    EXIT_CHANGES_FAILED,
    EXIT_INFLUXDB_UNAVAILABLE,
    EXIT_OK,
    RubinMonitoringError,
)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RECREATE = "recreate"


class Status(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ReconcileOptions:
    """How a reconciling job plans and applies (FORCE, PRUNE, DRY_RUN, CONCURRENCY)."""

    force: bool = False
    prune: bool = False
    dry_run: bool = False
    concurrency: int = 8


@dataclass(frozen=True)
class Target:
    """What a change acts on: the desired spec (None for a delete) and the observed object
    (None for a create)."""

    spec: Any
    current: Any


@dataclass(frozen=True)
class Change:
    """One change to one object; ``target`` carries what apply needs."""

    action: Action
    kind: str
    name: str
    reason: str
    target: Target = field(default=Target(None, None), compare=False, repr=False)


@dataclass
class ChangeResult:
    change: Change
    status: Status = Status.PLANNED
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.change.action.value,
            "kind": self.change.kind,
            "name": self.change.name,
            "reason": self.change.reason,
            "status": self.status.value,
            "error": self.error,
        }


@dataclass(frozen=True)
class Orphan:
    """An owned object nothing desires any more; deleted only with --prune."""

    kind: str
    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class Conflict:
    """A desired object blocked by one the toolkit does not own; left alone, needs a human."""

    kind: str
    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    changes: list[Change]
    orphans: list[Orphan]
    unchanged: int
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class Report:
    job: str
    dry_run: bool
    results: list[ChangeResult]
    orphans: list[Orphan]
    unchanged: int
    conflicts: list[Conflict] = field(default_factory=list)
    errors: list[RubinMonitoringError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The gravest failure's code: 3 InfluxDB refused the token or went away, 2 bad
        configuration, 1 other failures or conflicts, 0 converged."""
        codes = {error.exit_code for error in self.errors}
        for code in (EXIT_INFLUXDB_UNAVAILABLE, EXIT_BAD_INPUT):
            if code in codes:
                return code
        if self.failed or self.conflicts:
            return EXIT_CHANGES_FAILED
        return EXIT_OK

    @property
    def failed(self) -> list[ChangeResult]:
        return [result for result in self.results if result.status is Status.FAILED]

    def summary(self) -> dict[str, int]:
        counts = Counter(result.change.action.value for result in self.results)
        summary = {action.value: counts.get(action.value, 0) for action in Action}
        summary["unchanged"] = self.unchanged
        summary["failed"] = len(self.failed)
        summary["conflict"] = len(self.conflicts)
        return summary

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.job,
            "dry_run": self.dry_run,
            "changes": [result.to_json() for result in self.results],
            "orphans": [orphan.to_json() for orphan in self.orphans],
            "conflicts": [conflict.to_json() for conflict in self.conflicts],
            "summary": self.summary(),
        }

"""Plans and reports: what every reconciling job computes, applies and prints.

A job's plan is a list of :class:`Change` s (what to create, update, delete or recreate, and
why) plus :class:`Note` s about objects it will not touch (orphans kept without ``--prune``,
conflicts with objects the toolkit does not own, stale tokens, warnings). Changes are typed by
the desired spec ``S`` and the observed object ``O`` of their kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from ..exceptions import RubinMonitoringError, exit_code

S = TypeVar("S")
O = TypeVar("O")  # noqa: E741  # Observed, beside S for Spec


class Action(StrEnum):
    """What a change does to its object."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RECREATE = "recreate"


class Status(StrEnum):
    """Whether a change is only planned, was made, or failed."""

    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"


class NoteKind(StrEnum):
    """Why a job reports an object it does not change."""

    ORPHAN = "orphan"
    """Owned, but nothing desires it any more; deleted only with ``--prune``."""
    CONFLICT = "conflict"
    """A desired object is blocked by one the toolkit does not own; needs a person (exit 1)."""
    STALE = "stale"
    """An owned object that no longer matches what it should be and is not fixed by this run."""
    EXISTS = "exists"
    """An owned object that is as desired, worth naming (e.g. a token whose value is not shown)."""
    WARNING = "warning"
    """Something a person should know; changes nothing, fails nothing."""
    GRANTS = "grants"
    """What a desired object will be given (a token's permissions), shown with the plan."""


@dataclass(frozen=True)
class ReconcileOptions:
    """How a reconciling job plans and applies (FORCE, PRUNE, DRY_RUN, CONCURRENCY)."""

    force: bool = False
    prune: bool = False
    dry_run: bool = False
    concurrency: int = 8


@dataclass(frozen=True)
class Change(Generic[S, O]):
    """One change to one object: ``spec`` is the desired state (None for a delete), ``current``
    the observed object (None for a create). Changes of a lower ``phase`` are all applied before
    any change of a higher one (e.g. a user before the token that belongs to it)."""

    action: Action
    kind: str
    name: str
    reason: str
    spec: S | None = field(default=None, compare=False, repr=False)
    current: O | None = field(default=None, compare=False, repr=False)
    phase: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Note:
    """An object a job reports without changing it, and why."""

    category: NoteKind
    kind: str
    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass
class ChangeResult:
    """One change and what became of it (with the error when it failed)."""

    change: Change[Any, Any]
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


def orphan_changes(
    kind: str,
    name: str,
    reason: str,
    current: O,
    *,
    prune: bool,
    phase: int = 0,
) -> tuple[list[Note], list[Change[Any, O]]]:
    """The one orphan rule: an owned object nothing desires is reported as an orphan (kept),
    or, with ``prune``, deleted (then it is a change, not a note)."""
    if not prune:
        return [Note(NoteKind.ORPHAN, kind, name, reason)], []
    return [], [Change(Action.DELETE, kind, name, f"--prune: {reason}", None, current, phase)]


class _Notes:
    """Reading a plan's or a report's notes by category."""

    notes: list[Note]

    def notes_of(self, category: NoteKind) -> list[Note]:
        """The notes of one category, in order."""
        return [note for note in self.notes if note.category is category]

    @property
    def orphans(self) -> list[Note]:
        """Owned objects kept although nothing desires them."""
        return self.notes_of(NoteKind.ORPHAN)

    @property
    def conflicts(self) -> list[Note]:
        """Desired objects blocked by objects the toolkit does not own."""
        return self.notes_of(NoteKind.CONFLICT)


@dataclass
class Plan(_Notes, Generic[S, O]):
    """What a job will do: the changes, the notes, and how many desired objects are as they
    should be. Built by a pure ``plan_*`` function."""

    changes: list[Change[S, O]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    unchanged: int = 0
    failures: list[ChangeResult] = field(default_factory=list)
    """Changes the plan already knows cannot be made (e.g. a bucket name InfluxDB refuses)."""

    def note(self, category: NoteKind, kind: str, name: str, reason: str) -> None:
        """Report an object the plan does not change."""
        self.notes.append(Note(category, kind, name, reason))

    def orphan(
        self, kind: str, name: str, reason: str, current: O, *, prune: bool, phase: int = 0
    ) -> None:
        """Apply the one orphan rule to ``current``: a note, or with ``prune`` a delete."""
        notes, deletes = orphan_changes(kind, name, reason, current, prune=prune, phase=phase)
        self.notes.extend(notes)
        self.changes.extend(deletes)


@dataclass
class Report(_Notes):
    """What a reconciling job did (or, dry-run, would do). Its exit code follows the one rule
    in :func:`rubin_monitoring.exceptions.exit_code`."""

    job: str
    dry_run: bool
    results: list[ChangeResult]
    notes: list[Note] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RubinMonitoringError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """3 InfluxDB refused the token or went away, 2 bad input, 1 a change failed or a
        conflict needs a person, 0 converged."""
        return exit_code(self.errors, failed=bool(self.failed or self.conflicts))

    @property
    def failed(self) -> list[ChangeResult]:
        """The changes that failed."""
        return [result for result in self.results if result.status is Status.FAILED]

    def summary(self) -> dict[str, int]:
        """How many changes of each action, unchanged objects, failures and conflicts."""
        counts = Counter(result.change.action.value for result in self.results)
        summary = {action.value: counts.get(action.value, 0) for action in Action}
        summary["unchanged"] = self.unchanged
        summary["failed"] = len(self.failed)
        summary["conflict"] = len(self.conflicts)
        return summary

"""The shape of every reconciling job, and the one engine that runs it.

A job observes InfluxDB (list calls only), plans (a pure function of what it desires and what it
observed), and executes one change at a time; :func:`reconcile` does the rest for every job:
dry-run, phases, bounded concurrency, failing fast when InfluxDB is gone, progress, the report.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import Any, Generic, Protocol, TypeVar

from ..exceptions import InfluxDBUnavailableError, RubinMonitoringError
from ..interrupts import stop_reason
from ..models.changes import (
    Action,
    Change,
    ChangeResult,
    O,
    Plan,
    ReconcileOptions,
    Report,
    S,
    Status,
)
from ..models.inventory import InventoryProblem

log = logging.getLogger(__name__)

Observed = TypeVar("Observed")


class Progress(Protocol):
    """Told how many changes a run applies, then of each as it finishes (from worker threads)."""

    def start(self, total: int) -> None:
        """``total`` changes are about to be applied."""

    def done(self, result: ChangeResult) -> None:
        """One change finished (successfully or not)."""


# After this many connection failures in a row, InfluxDB is taken to be gone.
GONE_AFTER = 3

HELD_REASON = (
    "kept as it is, PRUNE or not: the repository enables its application in a file with a "
    "problem (see the failures)"
)


def problem_result(problem: InventoryProblem, kind: str, name: str) -> ChangeResult:
    """An inventory problem as a failed change of ``kind`` (``name``: the object it concerns,
    or the environment or application when none): every job that reads the inventory reports
    its problems, so the run exits 1 while they last."""
    shown = name or problem.subject
    change: Change[Any, Any] = Change(Action.CREATE, kind, shown, f"enabled in {problem.file}")
    return ChangeResult(change, Status.FAILED, str(problem))


class ReconcilingJob(ABC, Generic[Observed, S, O]):
    """One job: ``observe`` (I/O), ``plan`` (pure), ``execute`` (I/O, one change).

    ``name`` is the job's name in reports and logs.
    """

    name: str

    @abstractmethod
    def observe(self) -> Observed:
        """Everything the plan needs from InfluxDB, from list calls only."""

    @abstractmethod
    def plan(self, observed: Observed, options: ReconcileOptions) -> Plan[S, O]:
        """The changes that bring ``observed`` to the desired state. Pure: no I/O."""

    @abstractmethod
    def execute(self, change: Change[S, O]) -> None:
        """Make one change; raise :class:`RubinMonitoringError` if it cannot be made."""

    def finish(self, report: Report) -> Report:
        """Add what only this job reports (default: nothing)."""
        return report


class ObjectJob(ReconcilingJob[Observed, S, O]):
    """A job over one kind of object with create, update and delete: a recreate (FORCE) is a
    delete, then a create."""

    @abstractmethod
    def create(self, spec: S) -> None:
        """Create the object ``spec`` describes."""

    @abstractmethod
    def update(self, current: O, spec: S) -> None:
        """Bring ``current`` to ``spec`` in place."""

    @abstractmethod
    def delete(self, current: O) -> None:
        """Delete ``current``."""

    def execute(self, change: Change[S, O]) -> None:
        spec, current = change.spec, change.current
        if current is not None and change.action in (Action.DELETE, Action.RECREATE):
            self.delete(current)
        if spec is not None and change.action in (Action.CREATE, Action.RECREATE):
            self.create(spec)
        elif spec is not None and current is not None and change.action is Action.UPDATE:
            self.update(current, spec)


class _Runner:
    """Applies changes and records results; stops early when InfluxDB is clearly gone."""

    def __init__(
        self,
        execute: Callable[[Change[S, O]], None],
        progress: Progress | None,
        should_stop: Callable[[], RubinMonitoringError | None],
    ) -> None:
        self.execute = execute
        self.progress = progress
        self.should_stop = should_stop
        self._stopped: RubinMonitoringError | None = None
        self.errors: list[RubinMonitoringError] = []
        self._lock = threading.Lock()
        self._unreachable_in_a_row = 0
        self._gone: InfluxDBUnavailableError | None = None

    def run(self, result: ChangeResult) -> None:
        change = result.change
        stop = self._stop_reason()
        if stop is not None:
            result.status, result.error = Status.FAILED, f"not attempted: {stop}"
        else:
            try:
                self.execute(change)
            except RubinMonitoringError as error:
                result.status, result.error = Status.FAILED, str(error)
                self._failed(change, error)
            else:
                result.status = Status.DONE
                with self._lock:
                    self._unreachable_in_a_row = 0
                log.info("%s %s %s: %s", change.action, change.kind, change.name, change.reason)
        if self.progress is not None:
            self.progress.done(result)

    def _stop_reason(self) -> str | None:
        if self._gone is not None:
            return "InfluxDB is unreachable"
        with self._lock:
            if self._stopped is None:
                self._stopped = stop_reason() or self.should_stop()
                if self._stopped is not None:
                    self.errors.append(self._stopped)
                    log.error("stopping: %s", self._stopped)
            return None if self._stopped is None else str(self._stopped)

    def _failed(self, change: Change[S, O], error: RubinMonitoringError) -> None:
        with self._lock:
            self.errors.append(error)
            if not isinstance(error, InfluxDBUnavailableError):
                self._unreachable_in_a_row = 0
            elif self._gone is None:
                self._unreachable_in_a_row += 1
                if self._unreachable_in_a_row >= GONE_AFTER:
                    self._gone = error
                    log.error(
                        "InfluxDB is unreachable (%d requests in a row failed); not attempting "
                        "the remaining changes: %s",
                        GONE_AFTER,
                        error,
                    )
                    return
            else:
                return
        log.error("%s %s %s failed: %s", change.action, change.kind, change.name, error)


def _never() -> RubinMonitoringError | None:
    return None


def apply_changes(
    plan: Plan[S, O],
    execute: Callable[[Change[S, O]], None],
    options: ReconcileOptions,
    progress: Progress | None = None,
    should_stop: Callable[[], RubinMonitoringError | None] = _never,
) -> tuple[list[ChangeResult], list[RubinMonitoringError]]:
    """Execute every change of ``plan`` (none with dry-run), phase by phase, up to
    ``options.concurrency`` at a time. One failure never stops the others, but once InfluxDB is
    clearly gone, or ``should_stop()`` gives a reason (the lease was lost), the remaining
    changes fail without a request; so do they once SIGTERM or SIGINT arrived."""
    results = [ChangeResult(change) for change in plan.changes]
    for failure in plan.failures:
        change = failure.change
        log.error("%s %s %s: %s", change.action, change.kind, change.name, failure.error)
    if options.dry_run:
        return [*plan.failures, *results], []
    runner = _Runner(execute, progress, should_stop)
    if progress is not None:
        progress.start(len(results))
    ordered = sorted(results, key=lambda result: result.change.phase)
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        for _, phase in groupby(ordered, key=lambda result: result.change.phase):
            list(pool.map(runner.run, list(phase)))
    return [*plan.failures, *results], runner.errors


def reconcile(
    job: ReconcilingJob[Observed, S, O],
    options: ReconcileOptions,
    progress: Progress | None = None,
    should_stop: Callable[[], RubinMonitoringError | None] = _never,
) -> Report:
    """Observe, plan, apply (unless dry-run) and report: the one way every job runs. The
    caller holds the job's lease (see :mod:`rubin_monitoring.services.lease`) around it."""
    plan = job.plan(job.observe(), options)
    results, errors = apply_changes(plan, job.execute, options, progress, should_stop)
    report = Report(
        job=job.name,
        dry_run=options.dry_run,
        results=results,
        notes=list(plan.notes),
        unchanged=plan.unchanged,
        errors=errors,
    )
    return job.finish(report)

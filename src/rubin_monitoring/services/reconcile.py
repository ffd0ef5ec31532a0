"""Apply a plan with bounded concurrency and turn the results into a report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..exceptions import RubinMonitoringError
from ..models.changes import Action, Change, ChangeResult, Plan, ReconcileOptions, Report, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectHandlers:
    """How to write one kind of object; a recreate is a delete, then a create."""

    create: Callable[[Any], object]
    update: Callable[[Any, Any], object]
    delete: Callable[[Any], object]

    def execute(self, change: Change) -> None:
        spec, current = change.target.spec, change.target.current
        if change.action in (Action.DELETE, Action.RECREATE):
            self.delete(current)
        if change.action in (Action.CREATE, Action.RECREATE):
            self.create(spec)
        elif change.action is Action.UPDATE:
            self.update(current, spec)


def apply_plan(
    job: str,
    plan: Plan,
    execute: Callable[[Change], None],
    options: ReconcileOptions,
) -> Report:
    """Execute every change (unless dry-run); one failure never stops the others."""
    results = [ChangeResult(change) for change in plan.changes]
    errors: dict[int, RubinMonitoringError] = {}

    def run(index: int) -> None:
        result = results[index]
        change = result.change
        try:
            execute(change)
        except RubinMonitoringError as error:
            result.status, result.error = Status.FAILED, str(error)
            errors[index] = error
            log.error("%s %s %s failed: %s", change.action, change.kind, change.name, error)
        else:
            result.status = Status.DONE
            log.info("%s %s %s: %s", change.action, change.kind, change.name, change.reason)

    if not options.dry_run and results:
        with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
            list(pool.map(run, range(len(results))))
    report = Report(
        job=job,
        dry_run=options.dry_run,
        results=results,
        orphans=plan.orphans,
        unchanged=plan.unchanged,
        conflicts=plan.conflicts,
        errors=list(errors.values()),
    )
    return report

"""Apply a plan with bounded concurrency and turn the results into a report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..exceptions import RubinMonitoringError
from ..models.changes import Change, ChangeResult, Plan, Report, Status

log = logging.getLogger(__name__)


def apply_plan(
    job: str,
    plan: Plan,
    execute: Callable[[Change], None],
    *,
    dry_run: bool,
    concurrency: int,
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

    if not dry_run and results:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(run, range(len(results))))
    report = Report(
        job=job,
        dry_run=dry_run,
        results=results,
        orphans=plan.orphans,
        unchanged=plan.unchanged,
        conflicts=plan.conflicts,
        errors=list(errors.values()),
    )
    return report

"""The heartbeat (dead man's switch): after a run, the notifier calls ``HEARTBEAT_URL`` only when
the whole chain is healthy, so an outside service that expects the call every few minutes
alerts when the monitoring itself stops (influxd, the check tasks, the notifier, the CronJobs).

Healthy means, all at once:

* the notifier's own run succeeded (exit 0, not a dry run);
* every check task of the toolkit's succeeded at its last run (the rule of
  ``taskmaker --health``);
* every one of them is active and ran within its interval: its last completed run is at most
  ``2 x every + offset + 1m`` old (one missed run is tolerated, two are not);
* there is at least one.

The notifier's token cannot tell the bot user's tasks from a look-alike by owner (it may not
read users), so here "the toolkit's" is every task whose description carries the toolkit's
marker, whoever owns it: a failing look-alike stops the heartbeat too, the safe side.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..durations import format_duration, parse_duration
from ..exceptions import RubinMonitoringError
from ..models.alerts import HeartbeatResult, HeartbeatStatus, NotifierReport
from ..models.tasks import ObservedTask
from ..storage.heartbeat import HeartbeatError
from .tasks import failing_tasks

log = logging.getLogger(__name__)

LATE_GRACE_SECONDS = 60
_FRACTION = re.compile(r"(\.\d{6})\d+")


class PingerLike(Protocol):
    """What the heartbeat needs to call its URL (see storage/heartbeat.py)."""

    def ping(self) -> int:
        """Call the URL; the attempts it took, or raise HeartbeatError."""


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(literal: str | None) -> int | None:
    if not literal:
        return 0
    try:
        return parse_duration(literal)
    except ValueError:
        return None


def late_after(task: ObservedTask) -> int | None:
    """How old a task's last completed run may be before it counts as late, or None when the
    task has no ``every`` (cron tasks are not the toolkit's)."""
    every = _seconds(task.every)
    if not every:
        return None
    return 2 * every + (_seconds(task.offset) or 0) + LATE_GRACE_SECONDS


def chain_problems(tasks: Sequence[ObservedTask], now: datetime) -> list[str]:
    """Why the check tasks are not healthy at ``now`` (empty: healthy). Pure."""
    marked = sorted((task for task in tasks if task.identity is not None), key=lambda t: t.name)
    if not marked:
        return ["no check task of the toolkit's exists (run taskmaker)"]
    problems = [
        f"task {task.name}: last run failed ({task.last_run_error or 'no error given'})"
        for task in failing_tasks(marked)
    ]
    for task in marked:
        if task.status != "active":
            problems.append(f"task {task.name} is {task.status}")
            continue
        limit = late_after(task)
        if limit is None:
            continue
        last = _moment(task.latest_completed)
        if last is None or now - last > timedelta(seconds=limit):
            seen = task.latest_completed or "never"
            problems.append(
                f"task {task.name} last ran at {seen}, more than {format_duration(limit)} ago"
            )
    return problems


def heartbeat(
    report: NotifierReport,
    list_tasks: Callable[[], list[ObservedTask]],
    pinger: PingerLike,
    *,
    now: datetime | None = None,
) -> HeartbeatResult:
    """Call the heartbeat if the chain is healthy, and say what happened. A failure to list
    the tasks (InfluxDB gone, a token that may not read tasks) is added to the report's
    errors, so it sets the exit code; the heartbeat is then skipped."""
    if report.dry_run:
        return HeartbeatResult(HeartbeatStatus.SKIPPED, "dry run")
    code = report.exit_code
    if code != 0:
        return _skipped(f"the notifier run did not succeed (exit {code})")
    try:
        tasks = list_tasks()
    except RubinMonitoringError as error:
        report.errors.append(error)
        return _skipped(f"cannot list the check tasks: {error}")
    problems = chain_problems(tasks, now or datetime.now(UTC))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _skipped(f"{problems[0]}{more}")
    try:
        attempts = pinger.ping()
    except HeartbeatError as error:
        log.error("%s", error)
        return HeartbeatResult(HeartbeatStatus.FAILED, error.reason, error.attempts)
    log.info("heartbeat sent (%d attempt%s)", attempts, "" if attempts == 1 else "s")
    return HeartbeatResult(HeartbeatStatus.SENT, "the chain is healthy", attempts)


def _skipped(reason: str) -> HeartbeatResult:
    log.warning("heartbeat not sent: %s", reason)
    return HeartbeatResult(HeartbeatStatus.SKIPPED, reason)

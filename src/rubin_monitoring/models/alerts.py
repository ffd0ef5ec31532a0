"""Alerts: findings read from ``multiapp_``, records of sent alerts in ``alerted_``, Slack routes
and inhibition rules, the messages planned for each route, and the notifier's report.

A :class:`Route` carries its webhook URL, which is a secret: it is excluded from ``repr`` and
never rendered by anything here. Routes are shown by name only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ..exceptions import RubinMonitoringError, exit_code
from .matchers import Matcher, matches_all, pod_of

# Severities in the order alerts are listed; anything else sorts after them.
SEVERITY_ORDER = ("critical", "error", "warning", "info")


def severity_rank(severity: str) -> int:
    """Sort rank of a severity: critical first, unknown severities last."""
    try:
        return SEVERITY_ORDER.index(severity.lower())
    except ValueError:
        return len(SEVERITY_ORDER)


class AlertStatus(StrEnum):
    """Whether a notice is about a problem (firing) or its end (resolved)."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Finding:
    """One ``alert`` row a check task wrote into ``multiapp_``."""

    time: datetime
    check: str
    application: str
    cluster: str
    severity: str
    dedup_key: str
    message: str
    value: float | None = None


@dataclass(frozen=True)
class Alert:
    """One problem to notify about: all findings sharing a ``dedup_key``, shown as the latest."""

    dedup_key: str
    check: str
    application: str
    cluster: str
    severity: str
    message: str
    value: float | None
    time: datetime
    status: AlertStatus = AlertStatus.FIRING
    rows: int = 1

    @property
    def labels(self) -> dict[str, str]:
        """What matchers (silences, inhibition rules) and ``group_by`` see: the tags, and the
        pod of an application check's ``dedup_key``."""
        return {
            "cluster": self.cluster,
            "application": self.application,
            "check": self.check,
            "severity": self.severity,
            "pod": pod_of(self.check, self.dedup_key),
        }

    @property
    def sort_key(self) -> tuple[int, int, str, str, str, str]:
        """Firing before resolved, then by severity, cluster, application, check, key."""
        firing_first = 0 if self.status is AlertStatus.FIRING else 1
        return (
            firing_first,
            severity_rank(self.severity),
            self.cluster,
            self.application,
            self.check,
            self.dedup_key,
        )


@dataclass(frozen=True)
class AlertRecord:
    """One point in ``alerted_``: an alert (or its resolution) that Slack answered ``ok`` to."""

    time: datetime
    dedup_key: str
    status: AlertStatus
    check: str
    application: str
    cluster: str
    severity: str
    route: str
    message: str = ""
    value: float | None = None


GROUP_BY_LABELS: tuple[str, ...] = ("cluster", "application", "check", "severity")
"""The labels a route may group its messages by."""
GROUP_EACH = "..."
"""``group_by: ['...']``: every alert in a message of its own (Alertmanager's spelling)."""


@dataclass(frozen=True)
class Route:
    """Where a group of alerts goes. ``url`` is a secret: never in repr, logs or output.

    ``group_by``, ``repeat_seconds`` and ``send_resolved`` are the route's own timing and
    grouping; None takes the global setting (no grouping: every alert of the route in as few
    messages as fit; ``ALERT_REPEAT_INTERVAL``; ``SEND_RESOLVED``)."""

    name: str
    url: str = field(repr=False)
    clusters: frozenset[str] = frozenset()
    applications: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    group_by: tuple[str, ...] | None = None
    repeat_seconds: int | None = None
    send_resolved: bool | None = None

    def group_of(self, alert: Alert) -> tuple[tuple[str, str], ...]:
        """The (label, value) pairs that put ``alert`` in its message group."""
        if not self.group_by:
            return ()
        labels = alert.labels
        if GROUP_EACH in self.group_by:
            return (("dedup_key", alert.dedup_key),)
        return tuple((label, labels[label]) for label in self.group_by)

    def matches(self, alert: Alert) -> bool:
        """Every given criterion must match; a route without criteria matches everything."""
        return (
            (not self.clusters or alert.cluster in self.clusters)
            and (not self.applications or alert.application in self.applications)
            and (not self.severities or alert.severity.lower() in self.severities)
        )


@dataclass(frozen=True)
class InhibitRule:
    """Alerts matching ``target`` are not sent while an alert matching ``source`` fires with the
    same values of the ``equal`` labels (Alertmanager's inhibition). An alert matching both
    sides is inhibited only by a source that does not match the target side too."""

    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, source: Alert, target: Alert) -> bool:
        """Whether firing ``source`` inhibits ``target`` under this rule."""
        if source.dedup_key == target.dedup_key or source.status is not AlertStatus.FIRING:
            return False
        target_labels, source_labels = target.labels, source.labels
        if not matches_all(self.target, target_labels):
            return False
        if not matches_all(self.source, source_labels):
            return False
        if matches_all(self.source, target_labels) and matches_all(self.target, source_labels):
            return False
        return all(source_labels[label] == target_labels[label] for label in self.equal)


@dataclass(frozen=True)
class SilencedAlert:
    """An alert not sent because a silence matches it."""

    alert: Alert
    silence_id: str


@dataclass(frozen=True)
class InhibitedAlert:
    """An alert not sent because another (``source``, its ``dedup_key``) inhibits it."""

    alert: Alert
    rule: str
    source: str


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message for one route: part ``part`` of ``parts`` of its group for that route
    in this run (``group``: the route's ``group_by`` labels and their values, if any)."""

    route: Route
    text: str
    alerts: tuple[Alert, ...]
    part: int = 1
    parts: int = 1
    group: tuple[tuple[str, str], ...] = ()


class Delivery(StrEnum):
    """What became of one Slack message."""

    PLANNED = "planned"
    SENT = "sent"
    FAILED = "failed"
    UNRECORDED = "sent, not recorded"
    SKIPPED = "skipped"


@dataclass
class MessageResult:
    """One message's delivery: its status, the error if any, how many attempts it took."""

    message: SlackMessage
    status: Delivery = Delivery.PLANNED
    error: str | None = None
    attempts: int = 0

    @property
    def failed(self) -> bool:
        """True when the message's alerts did not reach Slack and ``alerted_`` together."""
        return self.status not in (Delivery.PLANNED, Delivery.SENT)


class HeartbeatStatus(StrEnum):
    """What became of the heartbeat after a run."""

    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class HeartbeatResult:
    """The heartbeat call of one run: sent, skipped (and why: the chain is not healthy, or a
    dry run), or failed (the URL did not answer 2xx). The URL itself is never part of it."""

    status: HeartbeatStatus
    reason: str = ""
    attempts: int = 0

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.value, "reason": self.reason, "attempts": self.attempts}


@dataclass
class NotifierReport:
    """What the notifier did (or, dry-run, would do) in one run."""

    dry_run: bool
    findings: int
    alerts: int
    suppressed: list[Alert]
    results: list[MessageResult]
    unrouted: list[Alert] = field(default_factory=list)
    errors: list[RubinMonitoringError] = field(default_factory=list)
    job: str = "notifier"
    silenced: list[SilencedAlert] = field(default_factory=list)
    inhibited: list[InhibitedAlert] = field(default_factory=list)
    heartbeat: HeartbeatResult | None = None
    """None: no ``HEARTBEAT_URL``."""

    @property
    def exit_code(self) -> int:
        """The one rule (:func:`rubin_monitoring.exceptions.exit_code`): 3 when InfluxDB refused
        the token or went away, 1 when an alert was not delivered or the heartbeat failed."""
        failed = bool(self.unrouted) or any(result.failed for result in self.results)
        heartbeat_failed = (
            self.heartbeat is not None and self.heartbeat.status is HeartbeatStatus.FAILED
        )
        return exit_code(self.errors, failed=failed or heartbeat_failed)

    def _alerts(self, *statuses: Delivery) -> list[Alert]:
        return [
            alert
            for result in self.results
            if result.status in statuses
            for alert in result.message.alerts
        ]

    def summary(self) -> dict[str, int]:
        """Counts for the report's summary line and JSON."""
        sent = self._alerts(Delivery.SENT)
        planned = self._alerts(Delivery.PLANNED)
        not_delivered = self._alerts(Delivery.FAILED, Delivery.SKIPPED)
        kinds = Counter(alert.status for alert in sent + planned)
        return {
            "findings": self.findings,
            "alerts": self.alerts,
            "suppressed": len(self.suppressed),
            "silenced": len(self.silenced),
            "inhibited": len(self.inhibited),
            "planned": len(planned),
            "sent": len(sent),
            "resolved": kinds.get(AlertStatus.RESOLVED, 0),
            "failed": len(not_delivered) + len(self.unrouted),
            "unrecorded": len(self._alerts(Delivery.UNRECORDED)),
            "messages": sum(result.status is not Delivery.SKIPPED for result in self.results),
        }

    def failures(self) -> list[dict[str, object]]:
        """One row per alert that was not delivered, with its route and why."""
        rows: list[dict[str, object]] = [
            {"route": None, "dedup_key": alert.dedup_key, "error": "no route matches"}
            for alert in self.unrouted
        ]
        for result in self.results:
            if result.failed:
                rows.extend(
                    {
                        "route": result.message.route.name,
                        "dedup_key": alert.dedup_key,
                        "status": result.status.value,
                        "error": result.error,
                    }
                    for alert in result.message.alerts
                )
        return rows

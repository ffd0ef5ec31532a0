"""notifier: findings in ``multiapp_`` not yet in ``alerted_`` go to Slack, then get recorded.

Observe, plan, apply, report, as every job:

1. Observe: the ``alert`` rows of the last look-back window, the records of alerts sent within
   the longest repeat interval (global or a route's), and the silences in ``silences_``.
2. Plan (pure): one alert per ``dedup_key`` (the latest row); drop those an inhibition rule or
   an active silence mutes (reported as inhibited or silenced, not recorded); drop those whose
   last record is ``firing`` within their route's repeat interval (already sent); optionally add
   ``resolved`` notices for recorded keys that stopped appearing (per route's
   ``send_resolved``); route each alert; pack each route's alerts (per ``group_by`` group) into
   as few Slack messages as the size limit allows.
3. Apply: one worker per webhook, messages in order, paced and retried by the Slack adapter;
   after each ``ok`` the message's alerts are recorded in ``alerted_`` before the next message.
   A failed message is not recorded, so the next run sends it again; a crash between ``ok`` and
   the record can repeat one message once, never lose it.
4. Report: what was sent (or would be, with ``--dry-run``) per route name, and what was
   silenced or inhibited; URLs never shown.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, Protocol

from ..config import ALERTED_BUCKET, NotifierSettings
from ..exceptions import (
    EXIT_CHANGES_FAILED,
    EXIT_INFLUXDB_UNAVAILABLE,
    ConfigError,
    RubinMonitoringError,
)
from ..interrupts import stop_reason
from ..models.alerts import (
    Alert,
    AlertRecord,
    AlertStatus,
    Delivery,
    Finding,
    InhibitedAlert,
    InhibitRule,
    MessageResult,
    NotifierReport,
    Route,
    SilencedAlert,
    SlackMessage,
    severity_rank,
)
from ..models.names import one_line
from ..models.silences import Silence
from ..storage.slack import Sent, SlackDeliveryError
from .muting import inhibit, silence
from .routes import route_for

log = logging.getLogger(__name__)

# Slack truncates a message's text beyond 40,000 characters; keep a margin under it.
SLACK_TEXT_LIMIT = 40_000
MAX_MESSAGE_CHARS = SLACK_TEXT_LIMIT - 1_000
HEADER_RESERVE = 200  # room kept in every message for its header line
MAX_ALERT_TEXT = 600  # an alert's message is cut to this many characters
MAX_NAME_TEXT = 80  # and a cluster, application, check or severity to this many
MAX_WORKERS = 16  # webhooks served in parallel

# Attachment bar colours, as the reference tool's messages had them.
SEVERITY_COLOUR = {
    "critical": "#d50000",
    "error": "#d50000",
    "warning": "#ff9100",
    "info": "#2962ff",
}
RESOLVED_COLOUR = "#2e7d32"
UNKNOWN_COLOUR = "#9e9e9e"

SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "error": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


class AlertsNotRecordedError(RubinMonitoringError):
    """Slack took a message but ``alerted_`` could not record it: the run stops sending."""

    exit_code = EXIT_INFLUXDB_UNAVAILABLE


class SilencesNotAppliedError(RubinMonitoringError):
    """``silences_`` is missing, or the token may not read it: the run sent its alerts without
    silences (alerting must not stop for that), and exits 1 so someone fixes it."""

    exit_code = EXIT_CHANGES_FAILED


class AlertStoreLike(Protocol):
    """What the notifier needs from ``multiapp_`` and ``alerted_`` (see storage/alerts.py)."""

    def findings(self, lookback_seconds: int) -> list[Finding]:
        """Every finding of the last ``lookback_seconds``."""

    def records(self, since_seconds: int) -> list[AlertRecord]:
        """Every record of the last ``since_seconds``."""

    def record(self, alerts: Iterable[Alert], route: str, when: datetime | None = None) -> None:
        """Record that ``alerts`` were sent to ``route``."""

    def check_writable(self) -> None:
        """Prove that records can be written (raise :class:`RubinMonitoringError` if not)."""


class SilenceSourceLike(Protocol):
    """Where the notifier reads silences (see storage/silences.py)."""

    def silences(self) -> list[Silence]:
        """Every silence's latest state."""


class SenderLike(Protocol):
    """What the notifier needs to send a Slack message (see storage/slack.py)."""

    def post(self, url: str, payload: Mapping[str, Any], *, route: str) -> Sent:
        """Deliver one payload or raise SlackDeliveryError."""


@dataclass(frozen=True)
class NotifierOptions:
    """How the notifier reads, suppresses, sends and packs alerts."""

    lookback_seconds: int = 600
    repeat_seconds: int = 3600
    send_resolved: bool = False
    dry_run: bool = False
    max_chars: int = MAX_MESSAGE_CHARS


def notifier_options(settings: NotifierSettings, *, dry_run: bool) -> NotifierOptions:
    """The notifier's options from its settings (``ALERT_REPEAT_INTERVAL`` is already checked
    against ``alerted_``'s retention, as each route's ``repeat_interval`` is)."""
    return NotifierOptions(
        lookback_seconds=settings.lookback_seconds,
        repeat_seconds=settings.repeat_seconds,
        send_resolved=settings.send_resolved,
        dry_run=dry_run,
    )


# Plan


def collapse(findings: Iterable[Finding]) -> list[Alert]:
    """One alert per ``dedup_key``, as its latest row; rows without a key get one from their
    check, application and cluster, so they are still deduplicated rather than dropped."""
    latest: dict[str, Finding] = {}
    rows: Counter[str] = Counter()
    keyless = 0
    for finding in findings:
        key = finding.dedup_key
        if not key:
            keyless += 1
            key = f"{finding.check}/{finding.application}/{finding.cluster}"
        rows[key] += 1
        if key not in latest or finding.time >= latest[key].time:
            latest[key] = finding
    if keyless:
        log.warning("%d alert rows had no dedup_key; keyed by check/application/cluster", keyless)
    alerts = [
        Alert(
            dedup_key=key,
            check=finding.check,
            application=finding.application,
            cluster=finding.cluster,
            severity=finding.severity or "unknown",
            message=finding.message,
            value=finding.value,
            time=finding.time,
            rows=rows[key],
        )
        for key, finding in latest.items()
    ]
    return sorted(alerts, key=lambda alert: alert.sort_key)


def last_records(records: Iterable[AlertRecord]) -> dict[str, AlertRecord]:
    """The latest record of each ``dedup_key``."""
    last: dict[str, AlertRecord] = {}
    for record in records:
        if record.dedup_key not in last or record.time >= last[record.dedup_key].time:
            last[record.dedup_key] = record
    return last


@dataclass(frozen=True)
class AlertPlan:
    """The alerts to send, and those suppressed as already sent within the repeat interval."""

    send: list[Alert]
    suppressed: list[Alert]


def repeat_window(route: Route | None, default: int | None) -> int | None:
    """The repeat interval of alerts going to ``route``: its own, else ``default``."""
    if route is not None and route.repeat_seconds is not None:
        return route.repeat_seconds
    return default


def records_window(routes: Sequence[Route], default: int) -> int:
    """How far back records must be read: the longest repeat interval of any route."""
    return max([default, *(route.repeat_seconds or 0 for route in routes)])


def plan_alerts(
    alerts: Sequence[Alert],
    records: Iterable[AlertRecord],
    *,
    send_resolved: bool,
    routes: Sequence[Route] = (),
    repeat_seconds: int | None = None,
    now: datetime | None = None,
    current: Iterable[str] | None = None,
) -> AlertPlan:
    """Alerts to send: those whose key was not notified as firing within its repeat interval,
    plus a resolved notice for each key whose last record is firing and which no longer appears
    in ``current`` (default: the keys of ``alerts``), where the route asks for them
    (``send_resolved`` unless the route says otherwise).

    The repeat interval of an alert is its route's (``routes``: the first that takes it), else
    ``repeat_seconds``; records older than that (counted back from ``now``) do not hold it back.
    Without ``repeat_seconds`` or ``now``, ``records`` is taken to cover exactly the interval.
    """
    last = last_records(records)

    def recent(record: AlertRecord, route: Route | None) -> bool:
        window = repeat_window(route, repeat_seconds)
        if window is None or now is None:
            return True
        return record.time >= now - timedelta(seconds=window)

    def route_of(alert: Alert) -> Route | None:
        return route_for(alert, routes) if routes else None

    send: list[Alert] = []
    suppressed: list[Alert] = []
    for alert in alerts:
        record = last.get(alert.dedup_key)
        if (
            record is not None
            and record.status is AlertStatus.FIRING
            and recent(record, route_of(alert))
        ):
            suppressed.append(alert)
        else:
            send.append(alert)
    keys = {alert.dedup_key for alert in alerts} if current is None else set(current)
    for key, record in last.items():
        if record.status is not AlertStatus.FIRING or key in keys:
            continue
        notice = Alert(
            dedup_key=record.dedup_key,
            check=record.check,
            application=record.application,
            cluster=record.cluster,
            severity=record.severity,
            message=record.message,
            value=record.value,
            time=record.time,
            status=AlertStatus.RESOLVED,
        )
        route = route_of(notice)
        wanted = (
            send_resolved if route is None or route.send_resolved is None else route.send_resolved
        )
        if wanted and recent(record, route):
            send.append(notice)
    return AlertPlan(sorted(send, key=lambda alert: alert.sort_key), suppressed)


@dataclass(frozen=True)
class NotificationPlan:
    """Everything the notifier decided about this run's alerts."""

    send: list[Alert]
    suppressed: list[Alert]
    silenced: list[SilencedAlert]
    inhibited: list[InhibitedAlert]


def plan_notifications(
    alerts: Sequence[Alert],
    records: Iterable[AlertRecord],
    *,
    routes: Sequence[Route],
    options: NotifierOptions,
    silences: Iterable[Silence] = (),
    inhibit_rules: Iterable[InhibitRule] = (),
    now: datetime,
) -> NotificationPlan:
    """Inhibition, then silences, then the repeat interval, as Alertmanager orders them: an
    alert muted by a rule or a silence is reported as such (and not recorded), whatever was sent
    before; resolved notices are silenced too, never inhibited. Pure."""
    kept, inhibited = inhibit(alerts, inhibit_rules)
    active = [item for item in silences if item.active(now)]
    kept, silenced = silence(kept, active, now)
    plan = plan_alerts(
        kept,
        records,
        send_resolved=options.send_resolved,
        routes=routes,
        repeat_seconds=options.repeat_seconds,
        now=now,
        current=[alert.dedup_key for alert in alerts],
    )
    send, muted = silence(plan.send, active, now)
    return NotificationPlan(send, plan.suppressed, silenced + muted, inhibited)


def slack_length(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units), never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (``&``, ``<``, ``>``) as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    flat = " ".join(one_line(text.replace("\n", " ")).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _name(text: str) -> str:
    """A tag from the findings (cluster, application, check, severity) as one short line of
    Slack text: whatever wrote the finding, it cannot add lines to a message."""
    return _escape(_clip(text, MAX_NAME_TEXT).replace("`", "'"))


def format_alert(alert: Alert) -> str:
    """One line per alert: severity first, then where and what."""
    where = f"`{_name(alert.cluster or '?')}` {_name(alert.application or '?')}"
    what = _escape(_clip(alert.message, MAX_ALERT_TEXT)) or "(no message)"
    severity, check = _name(alert.severity), _name(alert.check)
    if alert.status is AlertStatus.RESOLVED:
        return f":white_check_mark: *RESOLVED* ({severity}) {where} {check}: {what}"
    emoji = SEVERITY_EMOJI.get(alert.severity.lower(), ":white_circle:")
    value = "" if alert.value is None else f" (value {alert.value:g})"
    return f"{emoji} *{_name(alert.severity.upper())}* {where} {check}: {what}{value}"


def format_header(
    alerts: Sequence[Alert], part: int, parts: int, group: Sequence[tuple[str, str]] = ()
) -> str:
    """The first line of a message: the group (if the route groups), counts by severity, and
    which part of how many."""
    firing = [alert for alert in alerts if alert.status is AlertStatus.FIRING]
    resolved = len(alerts) - len(firing)
    counts = Counter(alert.severity.lower() for alert in firing)
    severities = sorted(counts, key=lambda severity: (severity_rank(severity), severity))
    pieces = []
    if firing:
        detail = ", ".join(f"{counts[severity]} {_name(severity)}" for severity in severities)
        pieces.append(f"{len(firing)} firing ({detail})")
    if resolved:
        pieces.append(f"{resolved} resolved")
    part_of = f" (part {part} of {parts})" if parts > 1 else ""
    summary = _clip(", ".join(pieces), HEADER_RESERVE - 60)  # odd severities cannot overflow
    where = ""
    if group:
        # Each value one short line, as in the alert lines; at most HEADER_RESERVE // 2 in all.
        named = " ".join(f"{label}={_name(value)}" for label, value in group)
        where = " " + _clip(named, HEADER_RESERVE // 2)
    return f"*rubin-monitoring alerts*{where}: {summary}{part_of}"


def split_messages(
    route: Route,
    alerts: Sequence[Alert],
    max_chars: int = MAX_MESSAGE_CHARS,
    group: tuple[tuple[str, str], ...] = (),
) -> list[SlackMessage]:
    """Pack ``alerts`` (in order) into the fewest messages whose text fits ``max_chars``.

    Lines are packed greedily, which is optimal for an ordered list: a new message starts only
    when the next line would not fit (``HEADER_RESERVE`` is kept for the header).
    """
    budget = max_chars - HEADER_RESERVE
    groups: list[list[tuple[Alert, str]]] = []
    used = budget + 1
    for alert in alerts:
        line = format_alert(alert)
        size = slack_length(line) + 1
        if size > budget:
            raise ValueError(f"max_chars {max_chars} leaves no room for one alert line")
        if used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append((alert, line))
        used += size
    messages = []
    for part, lines in enumerate(groups, start=1):
        members = tuple(alert for alert, _ in lines)
        header = format_header(members, part, len(groups), group)
        text = "\n".join([header, *(line for _, line in lines)])
        messages.append(SlackMessage(route, text, members, part, len(groups), group))
    return messages


def plan_messages(
    alerts: Sequence[Alert], routes: Sequence[Route], max_chars: int = MAX_MESSAGE_CHARS
) -> tuple[list[SlackMessage], list[Alert]]:
    """Messages per route, in route order (per ``group_by`` group, the group of the first alert
    first); and the alerts no route takes."""
    by_route: dict[Route, list[Alert]] = defaultdict(list)
    unrouted: list[Alert] = []
    for alert in alerts:
        route = route_for(alert, routes)
        if route is None:
            unrouted.append(alert)
        else:
            by_route[route].append(alert)
    messages = []
    for route in routes:
        groups: dict[tuple[tuple[str, str], ...], list[Alert]] = defaultdict(list)
        for alert in by_route.get(route, ()):
            groups[route.group_of(alert)].append(alert)  # in order: most severe group first
        for group, members in groups.items():
            messages.extend(split_messages(route, members, max_chars, group))
    return messages, unrouted


def severity_colour(alert: Alert) -> str:
    """The attachment colour of an alert line: by severity, green once resolved."""
    if alert.status is AlertStatus.RESOLVED:
        return RESOLVED_COLOUR
    return SEVERITY_COLOUR.get(alert.severity.lower(), UNKNOWN_COLOUR)


def payload(message: SlackMessage) -> dict[str, object]:
    """The webhook body of ``message``: the header as ``text`` (what a notification preview
    shows: how many problems, how severe), then the alert lines in attachments, one per run of
    alerts of the same colour, so severity shows as the bar colour users of the reference tool
    know. ``fallback`` repeats each attachment's lines for clients without attachments."""
    header, *lines = message.text.split("\n")
    attachments: list[dict[str, object]] = []
    for colour, group in groupby(
        zip(message.alerts, lines, strict=True), key=lambda pair: severity_colour(pair[0])
    ):
        text = "\n".join(line for _, line in group)
        attachments.append({"color": colour, "text": text, "fallback": text, "mrkdwn_in": ["text"]})
    return {
        "text": header,
        "attachments": attachments,
        "unfurl_links": False,
        "unfurl_media": False,
    }


# Apply


class _Delivery:
    """Sends messages, one worker per webhook, recording each message after Slack's ok."""

    def __init__(self, store: AlertStoreLike, sender: SenderLike) -> None:
        self.store = store
        self.sender = sender
        self.errors: list[RubinMonitoringError] = []
        self._stop = threading.Event()  # InfluxDB cannot record: send nothing more
        self._lock = threading.Lock()

    def _fail(self, error: RubinMonitoringError) -> None:
        with self._lock:
            self.errors.append(error)

    def run(self, results: Sequence[MessageResult]) -> None:
        by_webhook: dict[str, list[MessageResult]] = defaultdict(list)
        for result in results:
            by_webhook[result.message.route.url].append(result)
        if not by_webhook:
            return
        workers = min(MAX_WORKERS, len(by_webhook))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack") as pool:
            for future in [pool.submit(self._serve, queue) for queue in by_webhook.values()]:
                future.result()

    def _serve(self, queue: Sequence[MessageResult]) -> None:
        broken: str | None = None
        for result in queue:
            message = result.message
            name = message.route.name
            if self._stop.is_set():
                result.status, result.error = Delivery.SKIPPED, "not sent: InfluxDB cannot record"
                continue
            interrupted = stop_reason()
            if interrupted is not None:
                result.status, result.error = Delivery.SKIPPED, f"not sent: {interrupted}"
                continue
            if broken is not None:
                result.status, result.error = Delivery.SKIPPED, f"not sent: {broken}"
                continue
            try:
                sent = self.sender.post(message.route.url, payload(message), route=name)
            except SlackDeliveryError as error:
                result.status, result.error, result.attempts = (
                    Delivery.FAILED,
                    error.reason,
                    error.attempts,
                )
                self._fail(error)
                log.error(
                    "route %s: message %d/%d (%d alerts) not delivered, left for the next run: %s",
                    name,
                    message.part,
                    message.parts,
                    len(message.alerts),
                    error.reason,
                )
                if error.route_broken:
                    broken = f"an earlier message to this webhook failed ({error.reason})"
                continue
            result.attempts = sent.attempts
            try:
                self.store.record(message.alerts, name)
            except RubinMonitoringError as error:
                result.status, result.error = Delivery.UNRECORDED, str(error)
                self._fail(AlertsNotRecordedError(f"alerted_ cannot be written: {error}"))
                self._stop.set()
                log.error(
                    "route %s: message %d/%d delivered but not recorded in alerted_ "
                    "(the next run will repeat it); stopping: %s",
                    name,
                    message.part,
                    message.parts,
                    error,
                )
                continue
            result.status = Delivery.SENT
            log.info(
                "route %s: sent message %d/%d with %d alerts (%d attempt%s, %.1fs)",
                name,
                message.part,
                message.parts,
                len(message.alerts),
                sent.attempts,
                "" if sent.attempts == 1 else "s",
                sent.seconds,
            )


def _unwritable(store: AlertStoreLike) -> AlertsNotRecordedError | None:
    """Why nothing may be sent (``alerted_`` cannot be written), or None. Sending what cannot
    be recorded would repeat it on every run."""
    try:
        store.check_writable()
    except RubinMonitoringError as error:
        log.error("%s cannot be written; sending nothing: %s", ALERTED_BUCKET, error)
        return AlertsNotRecordedError(f"{ALERTED_BUCKET} cannot be written: {error}")
    return None


def read_silences(
    source: SilenceSourceLike | None,
) -> tuple[list[Silence], list[RubinMonitoringError]]:
    """The silences, and the error to report when ``silences_`` cannot be read because it is
    missing or the token may not read it (InfluxDB answers both with "bucket not found"): the
    run then goes on without silences, since a missing bucket must not stop alerting. Any other
    failure (InfluxDB unreachable, the token refused) stops the run, as for the findings: a
    silenced alert is never sent because a read failed."""
    if source is None:
        return [], []
    try:
        return source.silences(), []
    except ConfigError as error:
        log.error("silences not applied, alerts are sent without them: %s", error)
        return [], [
            SilencesNotAppliedError(
                f"silences not applied: {error}; run bucketmaker, then tokenmaker --rotate "
                "--role notifier"
            )
        ]


def run_notifier(
    store: AlertStoreLike,
    sender: SenderLike,
    routes: Sequence[Route],
    options: NotifierOptions,
    *,
    silences: SilenceSourceLike | None = None,
    inhibit_rules: Iterable[InhibitRule] = (),
    now: datetime | None = None,
) -> NotifierReport:
    """Observe findings, records and silences, plan the messages, send them (unless dry-run),
    report.

    Every alert sent is recorded in ``alerted_`` only after Slack answered ``ok``; an alert
    whose message failed is not recorded, so the next run sends it again. Before the first
    message the run proves it can write ``alerted_``; if it cannot, it sends nothing (exit 3).
    Silenced and inhibited alerts are reported and neither sent nor recorded.
    """
    findings = store.findings(options.lookback_seconds)
    alerts = collapse(findings)
    records = store.records(records_window(routes, options.repeat_seconds))
    known, errors = read_silences(silences)
    moment = now or datetime.now(UTC)
    plan = plan_notifications(
        alerts,
        records,
        routes=routes,
        options=options,
        silences=known,
        inhibit_rules=inhibit_rules,
        now=moment,
    )
    messages, unrouted = plan_messages(plan.send, routes, options.max_chars)
    log.info(
        "%d findings, %d alerts: %d to send in %d message(s), %d already sent within the "
        "repeat interval, %d silenced, %d inhibited, %d without a route",
        len(findings),
        len(alerts),
        len(plan.send) - len(unrouted),
        len(messages),
        len(plan.suppressed),
        len(plan.silenced),
        len(plan.inhibited),
        len(unrouted),
    )
    for alert in unrouted:
        log.error(
            "alert %s (%s/%s %s): no route matches and SLACK_WEBHOOK_URL is not set",
            alert.dedup_key,
            alert.cluster,
            alert.application,
            alert.check,
        )
    results = [MessageResult(message) for message in messages]
    if not options.dry_run and results:
        unwritable = _unwritable(store)
        if unwritable is None:
            delivery = _Delivery(store, sender)
            delivery.run(results)
            errors.extend(delivery.errors)
        else:
            errors.append(unwritable)
            for result in results:
                result.status, result.error = Delivery.SKIPPED, f"not sent: {unwritable}"
    return NotifierReport(
        dry_run=options.dry_run,
        findings=len(findings),
        alerts=len(alerts),
        suppressed=plan.suppressed,
        results=results,
        unrouted=unrouted,
        errors=errors,
        silenced=plan.silenced,
        inhibited=plan.inhibited,
    )

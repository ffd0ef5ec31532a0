"""Every rendering of every result, for people (text) or machines (JSON). Only these go to
stdout; logs go to stderr.

One function per result type, :func:`render_text` and :func:`to_json`, dispatching on the
result: a reconciling job's :class:`Report` (tokenmaker's :class:`TokenReport` adds permissions
and new token values), the notifier's :class:`NotifierReport`, taskmaker's
:class:`TaskHealth`, the :class:`Inventory`, telegraf-config's :class:`TelegrafConfig`,
receiver-config's :class:`ReceiverConfig` and prometheus-config's :class:`RemoteWriteConfig`
(as text, the configuration or manifests themselves, ready to pipe), and the silence
commands' results (``silence add`` prints the new ID alone).
"""

from __future__ import annotations

import json
from functools import singledispatch
from pathlib import Path

from .models.alerts import Alert, InhibitedAlert, MessageResult, NotifierReport, SilencedAlert
from .models.changes import NoteKind, Report
from .models.inventory import Inventory
from .models.names import one_line
from .models.tokens import TokenReport
from .services.receiver import ReceiverConfig
from .services.remote_write import RemoteWriteConfig
from .services.silences import SilenceAdded, SilenceList, SilencesExpired
from .services.tasks import TaskHealth
from .services.telegraf import TelegrafConfig
from .storage.secret_manifest import in_role_order, secret_key

Rendered = (
    TokenReport
    | Report
    | NotifierReport
    | TaskHealth
    | Inventory
    | TelegrafConfig
    | ReceiverConfig
    | RemoteWriteConfig
    | SilenceAdded
    | SilenceList
    | SilencesExpired
)


def dumps(data: object) -> str:
    """JSON as the toolkit prints it."""
    return json.dumps(data, indent=2, sort_keys=False)


def text_lines(lines: list[str]) -> str:
    """``lines`` as text, each kept on its own line: a line break or control character inside
    one (a name from the repository, a server's answer) is escaped, so output cannot be forged."""
    return "\n".join(one_line(line) for line in lines)


def render(result: Rendered, output: str, *, manifest: Path | None = None) -> str:
    """``result`` as ``output`` (``text`` or ``json``). ``manifest``: where tokenmaker wrote
    new token values instead of printing them."""
    if output == "json":
        return dumps(to_json(result, manifest=manifest))
    return render_text(result, manifest=manifest)


# Text


@singledispatch
def render_text(result: object, *, manifest: Path | None = None) -> str:
    """``result`` as text for people (one implementation per result type)."""
    raise TypeError(f"cannot render {type(result).__name__}")


_NOTE_TEXT = {
    NoteKind.ORPHAN: "kept, use --prune to delete",
    NoteKind.STALE: "re-issue with --rotate --role {name}",
}


def _report_lines(report: Report) -> list[str]:
    mode = "plan (dry run)" if report.dry_run else "result"
    lines = [f"{report.job} {mode}:"]
    for result in report.results:
        change = result.change
        status = "" if report.dry_run else f" [{result.status.value}]"
        error = f": {result.error}" if result.error else ""
        lines.append(
            f"  {change.action.value:8} {change.kind} {change.name} ({change.reason})"
            f"{status}{error}"
        )
    for note in report.notes:
        if note.category is NoteKind.GRANTS:
            continue
        if note.category is NoteKind.WARNING:
            lines.append(f"  warning  {note.reason}")
            continue
        hint = _NOTE_TEXT.get(note.category, "").format(name=note.name)
        reason = f"{note.reason}; {hint}" if hint else note.reason
        lines.append(f"  {note.category.value:8} {note.kind} {note.name} ({reason})")
    return lines


def _summary_line(summary: dict[str, int]) -> str:
    return "  summary: " + ", ".join(f"{count} {name}" for name, count in summary.items())


@render_text.register
def _(report: Report, *, manifest: Path | None = None) -> str:
    return text_lines([*_report_lines(report), _summary_line(report.summary())])


def _token_summary(report: TokenReport) -> dict[str, int]:
    return {**report.summary(), "stale": len(report.notes_of(NoteKind.STALE))}


@render_text.register
def _(report: TokenReport, *, manifest: Path | None = None) -> str:
    lines = [*_report_lines(report), _summary_line(_token_summary(report))]
    if report.dry_run:
        lines.extend(f"  grants   {role}: {text}" for role, text in report.permissions.items())
    elif manifest is not None:
        if report.tokens:
            keys = ", ".join(secret_key(role) for role, _ in in_role_order(report.tokens))
            lines.append(f"secret manifest {manifest} written (mode 0600), keys: {keys}")
        else:
            lines.append(f"secret manifest {manifest} not written: no new token values")
    elif report.tokens:
        lines.append("new tokens (shown only this once):")
        lines.extend(f"{role} {token}" for role, token in in_role_order(report.tokens))
    return text_lines(lines)


def _alert_line(alert: Alert) -> str:
    return (
        f"    {alert.status.value} {alert.severity} {alert.cluster}/"
        f"{alert.application} {alert.check} ({alert.dedup_key})"
    )


def _group_text(group: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{label}={value}" for label, value in group)


def _message_lines(result: MessageResult, dry_run: bool) -> list[str]:
    message = result.message
    count = len(message.alerts)
    status = "" if dry_run else f" [{result.status.value}]"
    error = f": {result.error}" if result.error else ""
    group = f", group {_group_text(message.group)}" if message.group else ""
    lines = [
        f"  route {message.route.name}{group}, message {message.part}/{message.parts}, "
        f"{count} alert{'s' if count != 1 else ''}{status}{error}"
    ]
    if dry_run:
        lines.extend(f"    | {line}" for line in message.text.splitlines())
    else:
        lines.extend(_alert_line(alert) for alert in message.alerts)
    return lines


@render_text.register
def _(report: NotifierReport, *, manifest: Path | None = None) -> str:
    lines = [f"{report.job} {'plan (dry run)' if report.dry_run else 'result'}:"]
    for result in report.results:
        lines.extend(_message_lines(result, report.dry_run))
    for alert in report.unrouted:
        lines.append(
            f"  unrouted {alert.severity} {alert.cluster}/{alert.application} {alert.check} "
            f"({alert.dedup_key}): no route matches and SLACK_WEBHOOK_URL is not set"
        )
    for muted in report.silenced:
        alert = muted.alert
        lines.append(
            f"  silenced {alert.status.value} {alert.severity} {alert.cluster}/"
            f"{alert.application} {alert.check} ({alert.dedup_key}) by silence {muted.silence_id}"
        )
    for held in report.inhibited:
        alert = held.alert
        lines.append(
            f"  inhibited {alert.severity} {alert.cluster}/{alert.application} {alert.check} "
            f"({alert.dedup_key}) by {held.source} (rule {held.rule})"
        )
    if report.heartbeat is not None:
        reason = f": {report.heartbeat.reason}" if report.heartbeat.reason else ""
        lines.append(f"  heartbeat {report.heartbeat.status.value}{reason}")
    lines.append(_summary_line(report.summary()))
    return text_lines(lines)


@render_text.register
def _(health: TaskHealth, *, manifest: Path | None = None) -> str:
    lines = [
        f"taskmaker health: {len(health.failing)} of {health.owned} owned tasks "
        "failed their last run"
    ]
    lines.extend(f"  {task.name} ({task.id}): {task.last_run_error}" for task in health.failing)
    return text_lines(lines)


@render_text.register
def _(inventory: Inventory, *, manifest: Path | None = None) -> str:
    lines = [
        f"{env.name} ({env.fqdn or '-'}, {env.file}): {' '.join(env.applications)}"
        for env in inventory.environments
    ]
    lines.append(f"buckets: {' '.join(inventory.buckets)}")
    return text_lines(lines)


@render_text.register
def _(config: TelegrafConfig, *, manifest: Path | None = None) -> str:
    return config.text.rstrip("\n")


@render_text.register
def _(config: ReceiverConfig, *, manifest: Path | None = None) -> str:
    return config.text.rstrip("\n")


@render_text.register
def _(config: RemoteWriteConfig, *, manifest: Path | None = None) -> str:
    return config.text.rstrip("\n")


@render_text.register
def _(added: SilenceAdded, *, manifest: Path | None = None) -> str:
    return added.silence.id


@render_text.register
def _(found: SilenceList, *, manifest: Path | None = None) -> str:
    if not found.silences:
        return "no silences" if found.expired else "no active or pending silences"
    return text_lines(
        [
            f"{item.id} {item.state(found.now).value} {' '.join(map(str, item.matchers))} "
            f"until {item.ends_at.isoformat(timespec='seconds')} by {item.created_by}: "
            f"{item.comment}"
            for item in found.silences
        ]
    )


@render_text.register
def _(done: SilencesExpired, *, manifest: Path | None = None) -> str:
    return text_lines([f"{result.id} {result.status}" for result in done.results])


# JSON


@singledispatch
def to_json(result: object, *, manifest: Path | None = None) -> dict[str, object]:
    """``result`` as the JSON object ``--output json`` prints (one implementation per type)."""
    raise TypeError(f"cannot render {type(result).__name__}")


@to_json.register
def _(report: Report, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "job": report.job,
        "dry_run": report.dry_run,
        "changes": [result.to_json() for result in report.results],
        "orphans": [note.to_json() for note in report.orphans],
        "conflicts": [note.to_json() for note in report.conflicts],
        "summary": report.summary(),
    }


@to_json.register
def _(report: TokenReport, *, manifest: Path | None = None) -> dict[str, object]:
    body = to_json.dispatch(Report)(report)
    body["summary"] = _token_summary(report)
    body["stale"] = [
        {"role": note.name, "reason": note.reason} for note in report.notes_of(NoteKind.STALE)
    ]
    body["existing"] = [note.name for note in report.notes_of(NoteKind.EXISTS)]
    body["warnings"] = [note.reason for note in report.notes_of(NoteKind.WARNING)]
    body["permissions"] = dict(report.permissions)
    if manifest is not None:
        body["secret_manifest"] = str(manifest) if report.tokens else None
        body["tokens"] = {}
    else:
        body["tokens"] = dict(in_role_order(report.tokens))
    return body


def _alert_json(alert: Alert) -> dict[str, object]:
    return {
        "dedup_key": alert.dedup_key,
        "status": alert.status.value,
        "severity": alert.severity,
        "cluster": alert.cluster,
        "application": alert.application,
        "check": alert.check,
        "message": alert.message,
        "value": alert.value,
        "rows": alert.rows,
    }


def _silenced_json(muted: SilencedAlert) -> dict[str, object]:
    return {**_alert_json(muted.alert), "silence_id": muted.silence_id}


def _inhibited_json(held: InhibitedAlert) -> dict[str, object]:
    return {**_alert_json(held.alert), "rule": held.rule, "source": held.source}


def _message_json(result: MessageResult, *, with_text: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "route": result.message.route.name,
        "group": dict(result.message.group),
        "part": result.message.part,
        "parts": result.message.parts,
        "alerts": [alert.dedup_key for alert in result.message.alerts],
        "status": result.status.value,
        "attempts": result.attempts,
        "error": result.error,
    }
    if with_text:
        data["text"] = result.message.text
    return data


def _routes_json(report: NotifierReport) -> dict[str, dict[str, object]]:
    routes: dict[str, dict[str, object]] = {}
    for name in dict.fromkeys(result.message.route.name for result in report.results):
        results = [result for result in report.results if result.message.route.name == name]
        routes[name] = {
            "messages": len(results),
            "alerts": [
                _alert_json(alert)
                for result in results
                if not result.failed
                for alert in result.message.alerts
            ],
            "failed": [
                _alert_json(alert)
                for result in results
                if result.failed
                for alert in result.message.alerts
            ],
        }
    return routes


@to_json.register
def _(report: NotifierReport, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "job": report.job,
        "dry_run": report.dry_run,
        "routes": _routes_json(report),
        "messages": [_message_json(result, with_text=report.dry_run) for result in report.results],
        "suppressed": [alert.dedup_key for alert in report.suppressed],
        "silenced": [_silenced_json(muted) for muted in report.silenced],
        "inhibited": [_inhibited_json(held) for held in report.inhibited],
        "heartbeat": None if report.heartbeat is None else report.heartbeat.to_json(),
        "summary": report.summary(),
        "failures": report.failures(),
    }


@to_json.register
def _(health: TaskHealth, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "job": "taskmaker-health",
        "owned_tasks": health.owned,
        "failing": [
            {
                "id": task.id,
                "name": task.name,
                "application": (task.identity or ("", "", ""))[1],
                "check": (task.identity or ("", "", ""))[2],
                "last_run_status": task.last_run_status,
                "last_run_error": task.last_run_error,
                "latest_completed": task.latest_completed,
            }
            for task in health.failing
        ],
    }


@to_json.register
def _(inventory: Inventory, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "environments": [
            {
                "name": env.name,
                "fqdn": env.fqdn,
                "file": env.file,
                "applications": list(env.applications),
            }
            for env in inventory.environments
        ],
        "applications": inventory.applications,
        "buckets": inventory.buckets,
        "errors": [str(problem) for problem in inventory.problems],
    }


@to_json.register
def _(config: TelegrafConfig, *, manifest: Path | None = None) -> dict[str, object]:
    return {"environment": config.environment, "format": config.format, "text": config.text}


@to_json.register
def _(config: ReceiverConfig, *, manifest: Path | None = None) -> dict[str, object]:
    listeners = [
        {
            "environment": listener.environment,
            "port": listener.port,
            "path": listener.path,
            "username": listener.username,
            "password_variable": listener.password_variable,
            "secret_key": listener.secret_key,
        }
        for listener in config.listeners
    ]
    return {"format": config.format, "listeners": listeners, "text": config.text}


@to_json.register
def _(config: RemoteWriteConfig, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "environment": config.environment,
        "format": config.format,
        "url": config.url,
        "text": config.text,
    }


@to_json.register
def _(added: SilenceAdded, *, manifest: Path | None = None) -> dict[str, object]:
    silence = added.silence
    return {"id": silence.id, "silence": silence.to_json(silence.starts_at)}


@to_json.register
def _(found: SilenceList, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "now": found.now.isoformat(),
        "silences": [item.to_json(found.now) for item in found.silences],
    }


@to_json.register
def _(done: SilencesExpired, *, manifest: Path | None = None) -> dict[str, object]:
    return {
        "results": [
            {
                "id": result.id,
                "status": result.status,
                "silence": result.silence.to_json(done.now),
            }
            for result in done.results
        ]
    }

"""Human and JSON renderings of reports. Only these go to stdout."""

from __future__ import annotations

import json
from typing import Any

import click

from .models.changes import Report


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def render_report(report: Report) -> str:
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
    for orphan in report.orphans:
        lines.append(
            f"  orphan   {orphan.kind} {orphan.name} ({orphan.reason}; kept, use --prune to delete)"
        )
    for conflict in report.conflicts:
        lines.append(f"  conflict {conflict.kind} {conflict.name} ({conflict.reason})")
    summary = ", ".join(f"{count} {name}" for name, count in report.summary().items())
    lines.append(f"  summary: {summary}")
    return "\n".join(lines)


def emit_report(report: Report, output: str) -> None:
    if output == "json":
        emit_json(report.to_json())
    else:
        click.echo(render_report(report))

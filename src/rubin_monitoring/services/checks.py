"""Render the Flux alert checks (``templates/flux/*.flux``) that taskmaker installs as tasks.

Each check reads Telegraf's ``kubernetes_pod_container`` measurement from one application's
bucket and writes one ``alert`` point per problem into the alert bucket (``multiapp_``):

* tags ``check``, ``application``, ``cluster``, ``severity``, ``dedup_key``;
* fields ``message`` (string) and ``value`` (float);
* ``_time`` = the run's ``now()``.

``dedup_key`` is ``<check>/<cluster>/<application>/<namespace>/<pod>/<container>``: stable for
the same problem, with no timestamp or measured value in it.

The first line of every rendered script is ``option task = {name: ..., every: ..., offset: ...}``
(the task reconciler normalises that line when it compares stored and rendered Flux). A rendered
script has no ``import`` (Flux requires imports before any statement, so they could not follow
that line) and names no organization (``from()``/``to()`` use the task's organization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files

import jinja2

from ..durations import format_duration, parse_duration

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_SEVERITY",
    "CheckParams",
    "flux_float",
    "flux_string",
    "parse_check_params",
    "parse_checks",
    "parse_threshold",
    "render_check",
]

CHECK_NAMES: tuple[str, ...] = ("restarts", "not_running", "cpu", "memory")
"""Every check the toolkit knows, in a stable order."""

DEFAULT_SEVERITY: dict[str, str] = {
    "restarts": "warning",
    "not_running": "critical",
    "cpu": "warning",
    "memory": "warning",
}
"""The ``severity`` tag each check writes."""

MAX_THRESHOLD = 1000.0

# Task offsets are parsed by Go's time.ParseDuration on create, which knows no days or weeks.
_OFFSET_UNITS = "hms"


@dataclass(frozen=True)
class CheckParams:
    """Settings shared by every check task (validate with :func:`parse_check_params`)."""

    every: str = "5m"
    """Flux duration literal: how often the task runs."""
    window: str = "10m"
    """How far back each run looks."""
    cpu_threshold: float = 90.0
    """Percent of the container's CPU limit (mean usage over the window)."""
    memory_threshold: float = 90.0
    """Percent of the container's memory limit (mean working set over the window)."""
    pending_grace: str = "10m"
    """How long a container may be Pending or ContainerCreating before it is reported."""


def parse_threshold(text: str, what: str = "threshold") -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not a number") from None
    if math.isnan(value) or not 0 < value <= MAX_THRESHOLD:
        raise ValueError(f"{what} {text!r} must be a number above 0 and at most 1000 (percent)")
    return value


def parse_checks(text: str) -> tuple[str, ...]:
    """``"restarts, cpu"`` -> ``("restarts", "cpu")``: known names, duplicates dropped, in order."""
    names: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in CHECK_NAMES:
            raise ValueError(f"unknown check {name!r} (known: {', '.join(CHECK_NAMES)})")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"no checks given (choose from {', '.join(CHECK_NAMES)})")
    return tuple(names)


def parse_check_params(
    every: str, window: str, cpu_threshold: str, memory_threshold: str, pending_grace: str
) -> CheckParams:
    """Validate the check settings (as strings, from flags or environment)."""
    params = CheckParams(
        every=every.strip(),
        window=window.strip(),
        cpu_threshold=parse_threshold(cpu_threshold.strip(), "CPU threshold"),
        memory_threshold=parse_threshold(memory_threshold.strip(), "memory threshold"),
        pending_grace=pending_grace.strip(),
    )
    _validate(params)
    return params


def _validate(params: CheckParams) -> None:
    if parse_duration(params.every, what="check interval") < 1:
        raise ValueError(f"check interval {params.every!r} must be at least 1s")
    if parse_duration(params.window, what="check window") < 1:
        raise ValueError(f"check window {params.window!r} must be at least 1s")
    parse_duration(params.pending_grace, what="pending grace")
    for what, value in (
        ("CPU threshold", params.cpu_threshold),
        ("memory threshold", params.memory_threshold),
    ):
        parse_threshold(str(value), what)


def flux_string(value: str) -> str:
    """``value`` as a Flux string literal, quotes included (escapes ``\\ " ${`` and controls)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("${", "\\${")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def flux_float(value: float) -> str:
    """``value`` as a Flux float literal (Flux has no exponent notation: ``1e-05`` is invalid)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no Flux float literal")
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


@cache
def _environment() -> jinja2.Environment:
    root = files("rubin_monitoring") / "templates" / "flux"
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (root / name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["flux_string"] = flux_string
    environment.filters["flux_float"] = flux_float
    return environment


def render_check(
    check: str,
    *,
    application: str,
    task_name: str,
    offset: str,
    params: CheckParams,
    alert_bucket: str = "multiapp_",
) -> str:
    """The Flux task script of ``check`` for the application whose bucket is ``application``."""
    if check not in CHECK_NAMES:
        raise ValueError(f"unknown check {check!r} (known: {', '.join(CHECK_NAMES)})")
    for what, value in (
        ("application", application),
        ("task name", task_name),
        ("alert bucket", alert_bucket),
    ):
        if not value.strip():
            raise ValueError(f"{what} is empty")
    parse_duration(offset, units=_OFFSET_UNITS, what="task offset")
    _validate(params)
    window_seconds = parse_duration(params.window)
    grace_seconds = parse_duration(params.pending_grace)
    template = _environment().get_template(f"{check}.flux")
    return template.render(
        check=check,
        severity=DEFAULT_SEVERITY[check],
        application=application,
        task_name=task_name,
        offset=offset,
        every=params.every,
        window=params.window,
        window_seconds=window_seconds,
        # not_running looks further back, so it can tell how long a container has been starting.
        lookback=format_duration(window_seconds + grace_seconds),
        pending_grace=params.pending_grace,
        grace_seconds=grace_seconds,
        cpu_threshold=params.cpu_threshold,
        memory_threshold=params.memory_threshold,
        alert_bucket=alert_bucket,
    )

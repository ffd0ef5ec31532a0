"""Render the Flux alert checks (``templates/flux/*.flux``) that taskmaker installs as tasks.

Each check reads what the collectors write (the names of :mod:`rubin_monitoring.models.metrics`,
given to every template as ``m``: a template names no measurement, field or tag of its own) and
writes one ``alert`` point per problem into the alert bucket (``multiapp_``):

* tags ``check``, ``application``, ``cluster``, ``severity``, ``dedup_key``;
* fields ``message`` (string) and ``value`` (float);
* ``_time`` = the run's ``now()``.

``dedup_key`` is ``<check>/<cluster>/<application>/<namespace>/<pod>/<container>`` for the
checks of containers, ``<check>/<cluster>/<application>/<subject>`` for the others: stable for
the same problem, with no timestamp or measured value in it.

The first line of every rendered script is ``option task = {name: ..., every: ..., offset: ...}``
(the task reconciler normalises that line when it compares stored and rendered Flux). A rendered
script has no ``import`` (Flux requires imports before any statement, so they could not follow
that line) and names no organization (``from()``/``to()`` use the task's organization).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import cache
from importlib.resources import files

import jinja2

from ..durations import format_duration, parse_duration
from ..models import metrics
from ..models.checks import (
    BUCKET_CHECKS,
    CERT_MANAGER_BUCKET,
    CHECK_NAMES,
    DEFAULT_SEVERITY,
    FLEET_CHECKS,
    HOST_BUCKET,
    PROBES_BUCKET,
    SOURCE_CHECKS,
    CheckSettings,
)
from ..models.inventory import bucket_name

# Task offsets are parsed by Go's time.ParseDuration on create, which knows no days or weeks.
_OFFSET_UNITS = "hms"


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


def template_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """The Jinja2 environment the check templates are rendered in, reading them from
    ``loader``: strict (an undefined variable is an error), no autoescaping, with the
    ``flux_string`` and ``flux_float`` filters."""
    environment = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["flux_string"] = flux_string
    environment.filters["flux_float"] = flux_float
    return environment


@cache
def _environment() -> jinja2.Environment:
    root = files("rubin_monitoring") / "templates" / "flux"
    return template_environment(
        jinja2.FunctionLoader(lambda name: (root / name).read_text(encoding="utf-8"))
    )


def bucket_aliases(applications: Iterable[str]) -> list[tuple[str, str]]:
    """(application, bucket) for each application whose bucket is not named like it
    (``times-square`` -> ``times_square``), sorted: what the checks that find an application by
    a namespace or an Argo CD Application's name use to tag their findings with its bucket."""
    return sorted({(app, bucket_name(app)) for app in applications if bucket_name(app) != app})


def _render(
    check: str, task_name: str, offset: str, settings: CheckSettings, **extra: object
) -> str:
    for what, value in (("task name", task_name),):
        if not value.strip():
            raise ValueError(f"{what} is empty")
    parse_duration(offset, units=_OFFSET_UNITS, what="task offset")
    window_seconds = parse_duration(settings.window)
    grace_seconds = parse_duration(settings.pending_grace)
    sync_grace_seconds = parse_duration(settings.argocd_sync_grace)
    template = _environment().get_template(f"{check}.flux")
    context: dict[str, object] = {"aliases": [], **extra}
    return template.render(
        m=metrics.field_names(),
        check=check,
        severity=DEFAULT_SEVERITY[check],
        task_name=task_name,
        offset=offset,
        every=settings.every,
        window=settings.window,
        window_seconds=window_seconds,
        # not_running looks further back, so it can tell how long a container has been starting.
        lookback=format_duration(window_seconds + grace_seconds),
        pending_grace=settings.pending_grace,
        grace_seconds=grace_seconds,
        cpu_threshold=settings.cpu_threshold,
        memory_threshold=settings.memory_threshold,
        silent_after=settings.silent_after,
        silent_seconds=parse_duration(settings.silent_after),
        disk_threshold=settings.disk_threshold,
        tls_expiry_warning=settings.tls_expiry_warning,
        tls_expiry_seconds=parse_duration(settings.tls_expiry_warning),
        argocd_sync_grace=settings.argocd_sync_grace,
        argocd_sync_grace_seconds=sync_grace_seconds,
        # argocd_app reads back to a grace before the window, to tell how long it has been.
        argocd_lookback=format_duration(window_seconds + sync_grace_seconds),
        http_5xx_threshold=settings.http_5xx_threshold,
        http_5xx_min_rate=settings.http_5xx_min_rate,
        cert_expiry_warning=settings.cert_expiry_warning,
        cert_expiry_seconds=parse_duration(settings.cert_expiry_warning),
        host_bucket=HOST_BUCKET,
        probes_bucket=PROBES_BUCKET,
        **context,
    )


def _check_names(check: str, allowed: Sequence[str], what: str) -> None:
    if check not in allowed:
        known = ", ".join(allowed) if check in CHECK_NAMES else ", ".join(CHECK_NAMES)
        raise ValueError(f"unknown {what} check {check!r} (known: {known})")


def render_check(
    check: str,
    *,
    bucket: str,
    task_name: str,
    offset: str,
    settings: CheckSettings,
    alert_bucket: str = "multiapp_",
    applications: Sequence[str] = (),
) -> str:
    """The Flux task script of ``check`` over the application bucket ``bucket`` (a check of
    :data:`~rubin_monitoring.models.checks.SOURCE_CHECKS`: over the bucket it reads).

    ``settings`` are taken as validated (by :mod:`rubin_monitoring.config`); ``offset`` must be
    a duration of hours, minutes and seconds; ``applications`` are the inventory's
    applications, whose findings the checks of :data:`SOURCE_CHECKS` tag with their bucket's
    name. Raises :class:`ValueError` for an unknown check, an empty name or a bad offset.
    """
    _check_names(check, (*BUCKET_CHECKS, *SOURCE_CHECKS), "application")
    for what, value in (("bucket", bucket), ("alert bucket", alert_bucket)):
        if not value.strip():
            raise ValueError(f"{what} is empty")
    return _render(
        check,
        task_name,
        offset,
        settings,
        application=bucket,
        alert_bucket=alert_bucket,
        ignored_pods=settings.ignored_pods(check, bucket),
        aliases=bucket_aliases(applications),
    )


def render_silent_check(
    *,
    cluster: str,
    buckets: Sequence[str],
    task_name: str,
    offset: str,
    settings: CheckSettings,
    alert_bucket: str = "multiapp_",
) -> str:
    """The Flux task script of ``silent`` for one environment: ``buckets`` are the buckets of
    the applications the inventory enables there (at least one)."""
    if not cluster.strip() or not buckets:
        raise ValueError("a silent check needs an environment and at least one bucket")
    return _render(
        "silent",
        task_name,
        offset,
        settings,
        cluster=cluster,
        buckets=list(buckets),
        alert_bucket=alert_bucket,
    )


def render_fleet_check(
    check: str,
    *,
    task_name: str,
    offset: str,
    settings: CheckSettings,
    alert_bucket: str = "multiapp_",
    applications: Sequence[str] = (),
) -> str:
    """The Flux task script of a fleet check (``disk``, ``site_down``, ``tls_expiry``,
    ``cert_expiry``). ``applications`` are the inventory's: ``cert_expiry`` reads the
    cert-manager application's bucket only when it is one of them (a task reading a bucket that
    does not exist fails)."""
    _check_names(check, FLEET_CHECKS, "fleet")
    buckets = {bucket_name(app) for app in applications}
    return _render(
        check,
        task_name,
        offset,
        settings,
        alert_bucket=alert_bucket,
        cert_manager_bucket=CERT_MANAGER_BUCKET if CERT_MANAGER_BUCKET in buckets else None,
        aliases=bucket_aliases(applications),
    )

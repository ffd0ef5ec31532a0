"""Command-line entry points. Thin: parse options, build via the factory, run, map errors."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import (
    BUCKETS,
    COMMON,
    DRY_RUN,
    INFLUXDB,
    NOTIFIER,
    RECONCILE,
    REPOSITORY,
    TASKS,
    Settings,
    SettingSpec,
    load_settings,
)
from .exceptions import RubinMonitoringError
from .factory import influxdb_store, load_inventory
from .logs import setup_logging
from .output import emit_json, emit_report
from .services.buckets import run_bucketmaker
from .services.checks import CheckParams
from .services.dbrps import run_bucketmapper
from .services.notifier import notifier_options, run_notifier
from .services.routes import load_routes
from .services.tasks import desired_tasks, run_taskmaker, task_health
from .services.tokens import (
    DEFAULT_BOT_USER,
    DEFAULT_SECRET_NAME,
    ROLE_NAMES,
    Role,
    check_manifest_path,
    render_tokens_text,
    run_tokenmaker,
    secret_manifest_text,
    tokens_to_json,
    write_secret_manifest,
)
from .storage.alerts import AlertStore
from .storage.authorizations import AuthorizationStore
from .storage.slack import SlackWebhooks

log = logging.getLogger("rubin_monitoring")


def _option(spec: SettingSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    env = " or ".join(spec.env)
    text = f"{spec.help} [env {env}" + (f"; default {spec.default}]" if spec.default else "]")
    if spec.boolean:
        name = spec.field.replace("_", "-")
        return click.option(f"--{name}/--no-{name}", spec.field, default=None, help=text)
    return click.option(spec.flag, spec.field, help=text)


def _fail(message: str, code: int, log_format: str | None) -> None:
    if log_format == "json":
        click.echo(json.dumps({"level": "error", "message": message}), err=True)
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


JobFunc = Callable[..., int]


def job(*groups: tuple[SettingSpec, ...]) -> Callable[[JobFunc], Callable[..., None]]:
    """Give a job its options (common ones plus ``groups``), settings, logging, exit codes.

    Options a command declares itself with click.option reach the job as keyword arguments.
    """

    def decorate(func: JobFunc) -> Callable[..., None]:
        return _wrap(func, [spec for group in (COMMON, *groups) for spec in group])

    return decorate


def _wrap(func: JobFunc, specs: list[SettingSpec]) -> Callable[..., None]:
    fields = {spec.field for spec in specs}

    @functools.wraps(func)
    def wrapper(**flags: object) -> None:
        settings: Settings | None = None
        try:
            extra = {key: value for key, value in flags.items() if key not in fields}
            settings = load_settings(flags, specs)
            setup_logging(settings.log_format, settings.debug)
            code = func(settings, **extra)
        except RubinMonitoringError as error:
            _fail(str(error), error.exit_code, settings.log_format if settings else None)
        sys.exit(code)

    command: Callable[..., None] = wrapper
    for spec in reversed(specs):
        command = _option(spec)(command)
    return command


@click.command("inventory")
@job(REPOSITORY)
def inventory_command(settings: Settings) -> int:
    """Print the environments, applications and buckets the repository enables."""
    inventory = load_inventory(settings)
    for problem in inventory.problems:
        log.error("%s", problem)
    if settings.output == "json":
        emit_json(inventory.to_json())
    else:
        for env in inventory.environments:
            click.echo(f"{env.name} ({env.fqdn or '-'}, {env.file}): {' '.join(env.applications)}")
        click.echo(f"buckets: {' '.join(inventory.buckets)}")
    return 1 if inventory.problems else 0


@click.command("bucketmaker")
@job(INFLUXDB, RECONCILE, REPOSITORY, BUCKETS)
def bucketmaker_command(settings: Settings) -> int:
    """One bucket per enabled application, plus multiapp_ and alerted_."""
    inventory = load_inventory(settings)
    with influxdb_store(settings) as store:
        report = run_bucketmaker(
            store,
            inventory,
            retention_seconds=settings.bucket_retention,
            options=settings.reconcile_options(),
        )
    emit_report(report, settings.output)
    return report.exit_code


@click.command("bucketmapper")
@job(INFLUXDB, RECONCILE)
def bucketmapper_command(settings: Settings) -> int:
    """One default DBRP mapping per owned bucket, for InfluxQL clients."""
    with influxdb_store(settings) as store:
        report = run_bucketmapper(
            store,
            settings.reconcile_options(),
        )
    emit_report(report, settings.output)
    return report.exit_code


def _report_task_health(settings: Settings) -> int:
    with influxdb_store(settings) as store:
        health = task_health(store)
    if settings.output == "json":
        emit_json(health.to_json())
    else:
        click.echo(
            f"taskmaker health: {len(health.failing)} of {health.owned} owned tasks "
            "failed their last run"
        )
        for task in health.failing:
            click.echo(f"  {task.name} ({task.id}): {task.last_run_error}")
    return 1 if health.failing else 0


@click.command("taskmaker")
@click.option(
    "--health",
    is_flag=True,
    help="Report owned tasks whose last run failed (exit 1 if any) instead of reconciling.",
)
@job(INFLUXDB, RECONCILE, REPOSITORY, TASKS)
def taskmaker_command(settings: Settings, health: bool) -> int:
    """Flux alert check tasks, one per application and enabled check."""
    if health:
        return _report_task_health(settings)
    inventory = load_inventory(settings)
    params = CheckParams(
        every=settings.check_every,
        window=settings.check_window,
        cpu_threshold=settings.cpu_threshold,
        memory_threshold=settings.memory_threshold,
        pending_grace=settings.pending_grace,
    )
    desired = desired_tasks(inventory.buckets, settings.checks, params)
    with influxdb_store(settings) as store:
        report = run_taskmaker(
            store,
            desired,
            settings.reconcile_options(),
        )
    emit_report(report, settings.output)
    return report.exit_code


@click.command("tokenmaker")
@click.option(
    "--rotate",
    is_flag=True,
    help="Replace the toolkit's tokens: new values, old tokens deleted (FORCE does the same).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLE_NAMES),
    help="Only this role's token (repeatable; default: every role).",
)
@click.option(
    "--bot-user",
    default=DEFAULT_BOT_USER,
    show_default=True,
    help="User that owns taskmaker's tasks; use one per organization.",
)
@click.option(
    "--secret-manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write new token values to this Kubernetes Secret manifest (mode 0600), not stdout.",
)
@click.option(
    "--secret-name", default=DEFAULT_SECRET_NAME, show_default=True, help="The Secret's name."
)
@click.option("--namespace", help="The Secret's namespace (default: none in the manifest).")
@job(INFLUXDB, RECONCILE)
def tokenmaker_command(
    settings: Settings,
    rotate: bool,
    roles: tuple[str, ...],
    bot_user: str,
    secret_manifest: Path | None,
    secret_name: str,
    namespace: str | None,
) -> int:
    """Least-privilege, org-scoped tokens and the bot user that owns the tasks (one-off setup).

    New token values go to stdout once, or only into --secret-manifest; never to the logs.
    """
    manifest = secret_manifest
    if manifest is not None:
        check_manifest_path(manifest)
    with influxdb_store(settings) as store:
        result = run_tokenmaker(
            store,
            AuthorizationStore(store.http),
            bot_user=bot_user,
            roles=[Role(role) for role in roles],
            rotate=rotate or settings.force,
            prune=settings.prune,
            dry_run=settings.dry_run,
        )
    if manifest is not None and result.tokens:
        write_secret_manifest(manifest, secret_manifest_text(result.tokens, secret_name, namespace))
    if settings.output == "json":
        emit_json(tokens_to_json(result, manifest=manifest))
    else:
        click.echo(render_tokens_text(result, manifest=manifest))
    return result.exit_code


@click.command("notifier")
@job(INFLUXDB, NOTIFIER, DRY_RUN)
def notifier_command(settings: Settings) -> int:
    """Slack alerts for multiapp_ findings, each sent once, recorded in alerted_."""
    options = notifier_options(settings)
    routes = load_routes(settings.slack_webhook_url, settings.slack_routes_file)
    with influxdb_store(settings) as store:
        report = run_notifier(
            AlertStore(store.http, store.org),
            SlackWebhooks(timeout=settings.slack_timeout),
            routes,
            options,
        )
    if settings.output == "json":
        emit_json(report.to_json())
    else:
        click.echo(report.to_text())
    return report.exit_code


@click.group()
@click.version_option(__version__)
def cli() -> None:
    """Keep InfluxDB v2 in step with a Phalanx-style configuration repository."""


for _command in (
    inventory_command,
    bucketmaker_command,
    bucketmapper_command,
    taskmaker_command,
    tokenmaker_command,
    notifier_command,
):
    cli.add_command(_command)


def main() -> None:
    cli(auto_envvar_prefix=None)


bucketmaker_main = bucketmaker_command.main
bucketmapper_main = bucketmapper_command.main
taskmaker_main = taskmaker_command.main
tokenmaker_main = tokenmaker_command.main
notifier_main = notifier_command.main

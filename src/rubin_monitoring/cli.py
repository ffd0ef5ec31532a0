"""Command-line entry points. Thin: parse options, build via the factory, run, map errors."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .config import (
    BUCKETS,
    COMMON,
    INFLUXDB,
    NOTIFIER,
    RECONCILE,
    REPOSITORY,
    TASKS,
    Settings,
    SettingSpec,
    load_settings,
)
from .exceptions import NotImplementedYetError, RubinMonitoringError
from .factory import influxdb_store, load_inventory
from .logs import setup_logging
from .output import emit_json, emit_report
from .services.buckets import run_bucketmaker
from .services.dbrps import run_bucketmapper

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

    for spec in reversed(specs):
        wrapper = _option(spec)(wrapper)
    return wrapper


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
            force=settings.force,
            prune=settings.prune,
            dry_run=settings.dry_run,
            concurrency=settings.concurrency,
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
            force=settings.force,
            prune=settings.prune,
            dry_run=settings.dry_run,
            concurrency=settings.concurrency,
        )
    emit_report(report, settings.output)
    return report.exit_code


def _not_implemented(name: str, doc: str, *groups: tuple[SettingSpec, ...]) -> click.Command:
    @click.command(name, help=doc)
    @job(*groups)
    def command(settings: Settings) -> int:
        raise NotImplementedYetError(f"{name} is not implemented yet")

    return command


taskmaker_command = _not_implemented(
    "taskmaker", "Flux alert tasks per application.", INFLUXDB, RECONCILE, REPOSITORY, TASKS
)
tokenmaker_command = _not_implemented(
    "tokenmaker", "Least-privilege tokens (one-off setup).", INFLUXDB
)
notifier_command = _not_implemented(
    "notifier", "Slack alerts for multiapp_ findings.", INFLUXDB, NOTIFIER
)


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

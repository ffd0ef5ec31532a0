"""Command-line entry points. Thin: parse options, build via the factory, run, render, exit."""

from __future__ import annotations

import functools
import getpass
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .config import (
    BUCKETS,
    COMMON,
    DASHBOARDS,
    DRY_RUN,
    INFLUXDB,
    INFLUXDB_TARGET,
    LEASE,
    NOTIFIER,
    RECONCILE,
    REPOSITORY,
    SCRAPE,
    TASKS,
    Settings,
    SettingSpec,
    load_settings,
)
from .exceptions import (
    EXIT_CHANGES_FAILED,
    ConfigError,
    InfluxDBUnavailableError,
    RubinMonitoringError,
)
from .factory import Factory
from .interrupts import stop_on_signals
from .logs import setup_logging
from .models.changes import Report
from .models.names import one_line
from .models.tokens import DEFAULT_BOT_USER, DEFAULT_SECRET_NAME, ROLE_HELP, TokenReport
from .progress import progress_for
from .render import Rendered, dumps, render
from .services.host import host_config, host_config_toml
from .services.probes import probe_config, probe_config_toml, probe_problems
from .services.receiver import DEFAULT_BASE_PORT, DEFAULT_BUFFER_LIMIT, DEFAULT_MAX_BODY_SIZE
from .services.reconcile import ReconcilingJob, reconcile
from .services.remote_write import DEFAULT_PASSWORD_FILE
from .services.remote_write import DEFAULT_SECRET_NAME as REMOTE_WRITE_SECRET
from .services.remote_write import FORMATS as REMOTE_WRITE_FORMATS
from .services.silences import add_silence, expire_silences, new_silence, query_silences
from .services.telegraf import DEFAULT_IMAGE, DEFAULT_NAMESPACE, environment_problems
from .storage.secret_manifest import (
    check_manifest_path,
    secret_manifest_text,
    write_secret_manifest,
)

log = logging.getLogger("rubin_monitoring")


def _option(spec: SettingSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    env = " or ".join(spec.env)
    text = f"{spec.help} [env {env}" + (f"; default {spec.default}]" if spec.default else "]")
    if spec.boolean:
        name = spec.field.replace("_", "-")
        return click.option(f"--{name}/--no-{name}", spec.field, default=None, help=text)
    return click.option(spec.flag, spec.field, help=text)


def _fail(message: str, code: int, log_format: str | None) -> NoReturn:
    if log_format == "json":
        click.echo(json.dumps({"level": "error", "message": message}), err=True)
    else:
        click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


JobFunc = Callable[..., int]


def job(*groups: tuple[SettingSpec, ...]) -> Callable[[JobFunc], Callable[..., None]]:
    """Give a command its options (common ones plus ``groups``), validated settings, logging
    and exit code. Options a command declares itself reach it as keyword arguments."""

    def decorate(func: JobFunc) -> Callable[..., None]:
        return _wrap(func, [spec for group in (COMMON, *groups) for spec in group])

    return decorate


def _wrap(func: JobFunc, specs: list[SettingSpec]) -> Callable[..., None]:
    fields = {spec.field for spec in specs}

    @functools.wraps(func)
    def wrapper(**flags: object) -> None:
        settings: Settings | None = None
        try:
            with stop_on_signals():
                extra = {key: value for key, value in flags.items() if key not in fields}
                settings = load_settings(flags, specs)
                setup_logging(settings.log_format, settings.debug)
                code = func(settings, **extra)
        except RubinMonitoringError as error:
            _fail(str(error), error.exit_code, settings.log_format if settings else None)
        except Exception as error:  # a bug: still one line, the traceback only with DEBUG
            debug = settings is not None and settings.debug
            if debug:
                log.exception("internal error")
            hint = "" if debug else "; DEBUG=1 logs the traceback"
            message = f"internal error ({type(error).__name__}){hint}: please report it"
            _fail(message, EXIT_CHANGES_FAILED, settings.log_format if settings else None)
        sys.exit(code)

    command: Callable[..., None] = wrapper
    for spec in reversed(specs):
        command = _option(spec)(command)
    return command


def _emit(result: Rendered, settings: Settings, *, manifest: Path | None = None) -> None:
    click.echo(render(result, settings.output, manifest=manifest))


def _reconcile(
    settings: Settings, build: Callable[[Factory], ReconcilingJob[Any, Any, Any]]
) -> int:
    """Build a job with the factory, reconcile it, print its report; the report's exit code."""
    with Factory(settings) as factory:
        report = _run(factory, build(factory), settings)
    _emit(report, settings)
    return report.exit_code


def _run(factory: Factory, job: ReconcilingJob[Any, Any, Any], settings: Settings) -> Report:
    """Reconcile ``job``, holding the writers' lease unless dry-run."""
    if settings.dry_run:
        return reconcile(job, settings.reconcile)
    progress = progress_for(job.name, settings.output)
    try:
        with factory.writers_lease(job.name) as lease:
            return reconcile(job, settings.reconcile, progress, lease.lost_error)
    finally:
        if progress is not None:
            progress.close()


@click.command("inventory")
@job(REPOSITORY)
def inventory_command(settings: Settings) -> int:
    """Print the environments, applications and buckets the repository enables."""
    with Factory(settings) as factory:
        inventory = factory.inventory()
    for problem in inventory.problems:
        log.error("%s", problem)
    _emit(inventory, settings)
    return 1 if inventory.problems else 0


@click.command("bucketmaker")
@job(INFLUXDB, RECONCILE, REPOSITORY, BUCKETS)
def bucketmaker_command(settings: Settings) -> int:
    """One bucket per enabled application, plus multiapp_ and alerted_."""
    return _reconcile(settings, Factory.bucketmaker)


@click.command("bucketmapper")
@job(INFLUXDB, RECONCILE)
def bucketmapper_command(settings: Settings) -> int:
    """One default DBRP mapping per owned bucket, for InfluxQL clients."""
    return _reconcile(settings, Factory.bucketmapper)


@click.command("taskmaker")
@click.option(
    "--health",
    is_flag=True,
    help="Report owned tasks whose last run failed (exit 1 if any) instead of reconciling.",
)
@job(INFLUXDB, RECONCILE, REPOSITORY, TASKS)
def taskmaker_command(settings: Settings, health: bool) -> int:
    """Flux alert check tasks, one per application and enabled check."""
    if not health:
        return _reconcile(settings, Factory.taskmaker)
    with Factory(settings) as factory:
        report = factory.task_health()
    _emit(report, settings)
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
    help=f"Only this role's token: {ROLE_HELP} (repeatable; default: every role).",
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
@job(INFLUXDB, RECONCILE, REPOSITORY)
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
    if secret_manifest is not None:
        check_manifest_path(secret_manifest)
    with Factory(settings) as factory:
        maker = factory.tokenmaker(bot_user=bot_user, roles=roles, rotate=rotate)
        report = _run(factory, maker, settings)
    assert isinstance(report, TokenReport)
    if secret_manifest is not None and report.tokens:
        text = secret_manifest_text(report.tokens, secret_name, namespace)
        write_secret_manifest(secret_manifest, text)
    _emit(report, settings, manifest=secret_manifest)
    return report.exit_code


@click.command("probe-config")
@click.option("--interval", default="1m", show_default=True, help="How often each site is probed.")
@click.option("--timeout", default="10s", show_default=True, help="Time limit of one probe.")
@click.option("--tls-ca", help="CA file the probes trust (default: the system's).")
@job(INFLUXDB_TARGET, REPOSITORY)
def probe_config_command(
    settings: Settings, interval: str, timeout: str, tls_ca: str | None
) -> int:
    """Print the probe Telegraf's configuration: every environment's site and certificate,
    for the checks site_down and tls_expiry (token from INFLUX_TOKEN, never in the file)."""
    with Factory(settings) as factory:
        inventory = factory.inventory()
        influxdb = factory.influxdb
    problems = probe_problems(inventory)
    for problem in problems:
        log.error("%s", problem)
    config = probe_config(
        inventory,
        influxdb_url=influxdb.url,
        organization=influxdb.org,
        interval=interval,
        timeout=timeout,
        tls_ca=tls_ca,
    )
    if settings.output == "json":
        click.echo(dumps(config))
    else:
        click.echo(probe_config_toml(config), nl=False)
    return 1 if problems else 0


@click.command("host-config")
@click.option(
    "--metrics-url",
    help="influxd's /metrics as the host reaches it (default: INFLUXDB_URL/metrics).",
)
@click.option("--interval", default="60s", show_default=True, help="How often Telegraf collects.")
@click.option(
    "--mount-point",
    "mount_points",
    multiple=True,
    help="A mount point to watch (repeatable; default: every real file system).",
)
@click.option("--hostname", help="The host tag the disk check names (default: the host's name).")
@click.option("--tls-ca", help="CA file Telegraf trusts for InfluxDB (default: the system's).")
@job(INFLUXDB_TARGET)
def host_config_command(
    settings: Settings,
    metrics_url: str | None,
    interval: str,
    mount_points: tuple[str, ...],
    hostname: str | None,
    tls_ca: str | None,
) -> int:
    """Print the Telegraf configuration of the InfluxDB host: influxd's own /metrics and its
    disks, into influxdb_ (token host-telegraf from INFLUX_TOKEN, never in the file)."""
    with Factory(settings) as factory:
        influxdb = factory.influxdb
    config = host_config(
        influxdb_url=influxdb.url,
        organization=influxdb.org,
        scrape_url=metrics_url,
        interval=interval,
        mount_points=mount_points,
        hostname=hostname,
        tls_ca=tls_ca,
    )
    if settings.output == "json":
        click.echo(dumps(config))
    else:
        click.echo(host_config_toml(config), nl=False)
    return 0


@click.command("notifier")
@job(INFLUXDB, NOTIFIER, DRY_RUN, LEASE)
def notifier_command(settings: Settings) -> int:
    """Slack alerts for multiapp_ findings, each sent once, recorded in alerted_."""
    with Factory(settings) as factory:
        report = factory.run_notifier()
    _emit(report, settings)
    return report.exit_code


@click.command("dashboardmaker")
@job(INFLUXDB, RECONCILE, DASHBOARDS)
def dashboardmaker_command(settings: Settings) -> int:
    """The dashboards and variables under dashboards/, applied through one InfluxDB stack."""
    return _reconcile(settings, Factory.dashboardmaker)


@click.command("telegraf-config")
@click.option(
    "--environment", required=True, help="The Phalanx environment (cluster) to configure."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["config", "manifests"]),
    default="config",
    show_default=True,
    help="Telegraf's TOML configuration, or the Kubernetes objects that run it.",
)
@click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace of the manifests' objects.",
)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Telegraf image.")
@click.option(
    "--secret-name",
    default=DEFAULT_SECRET_NAME,
    show_default=True,
    help="tokenmaker's Secret; the DaemonSet reads key telegraf-<environment>-token.",
)
@job(INFLUXDB_TARGET, REPOSITORY, SCRAPE)
def telegraf_config_command(
    settings: Settings,
    environment: str,
    output_format: str,
    namespace: str,
    image: str,
    secret_name: str,
) -> int:
    """Print the Telegraf configuration (or manifests) for one environment's cluster.

    Points go to the bucket of the application whose namespace they come from; only the
    environment's enabled applications pass. The enabled applications' Prometheus endpoints
    are scraped (the scrape catalog, and pods annotated prometheus.io/scrape). The token is
    read from $INFLUX_TOKEN by Telegraf.
    """
    with Factory(settings) as factory:
        result = factory.telegraf_config(
            environment,
            output_format=output_format,
            namespace=namespace,
            image=image,
            secret_name=secret_name,
        )
        problems = environment_problems(factory.inventory(), environment)
    for problem in problems:
        log.error("%s", problem)
    _emit(result, settings)
    return 1 if problems else 0


@click.command("receiver-config")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["config", "manifests"]),
    default="config",
    show_default=True,
    help="Telegraf's TOML configuration, or the Kubernetes objects that run it.",
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="Port of the first environment's listener; the others follow, in name order.",
)
@click.option("--listen-address", default="", help="IP address to listen on (default: every one).")
@click.option(
    "--max-body-size",
    type=click.IntRange(1024),
    default=DEFAULT_MAX_BODY_SIZE,
    show_default=True,
    help="Largest request body in bytes (as sent: snappy-compressed); larger ones get 413.",
)
@click.option(
    "--buffer-limit",
    type=click.IntRange(10_000),
    default=DEFAULT_BUFFER_LIMIT,
    show_default=True,
    help="Points held while InfluxDB takes less than arrives (memory: about 1.5 KiB each).",
)
@click.option("--tls-cert", help="Certificate file: the listeners serve HTTPS (with --tls-key).")
@click.option("--tls-key", help="Private key file of --tls-cert.")
@click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace of the manifests' objects.",
)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Telegraf image.")
@click.option(
    "--secret-name",
    default=DEFAULT_SECRET_NAME,
    show_default=True,
    help="tokenmaker's Secret: keys receiver-token and receiver-<environment>-password.",
)
@click.option("--ingress-host", help="Also an Ingress for this host, one path per environment.")
@click.option("--ingress-class", default="nginx", show_default=True, help="The Ingress's class.")
@click.option("--ingress-tls-secret", help="TLS Secret of the Ingress (TLS terminated there).")
@job(INFLUXDB_TARGET, REPOSITORY)
def receiver_config_command(settings: Settings, **options: Any) -> int:
    """Print the remote-write receiver's configuration (or manifests): a central Telegraf
    into which every environment's Prometheus writes, each with its own credential, its
    series routed into the buckets of the applications that environment enables.

    Tokens and passwords are read by Telegraf from INFLUX_TOKEN and RECEIVER_<ENV>_PASSWORD.
    """
    with Factory(settings) as factory:
        result = factory.receiver_config(**options)
        problems = factory.inventory().problems
    for problem in problems:
        log.error("%s", problem)
    _emit(result, settings)
    return 1 if problems else 0


@click.command("prometheus-config")
@click.option(
    "--environment", required=True, help="The Phalanx environment (cluster) to configure."
)
@click.option(
    "--receiver-url",
    required=True,
    help="Where the cluster reaches the receiver: https://host (its Ingress) or https://host:port "
    "(the environment's listener); the environment's path is added.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(list(REMOTE_WRITE_FORMATS)),
    default="prometheus",
    show_default=True,
    help="A prometheus.yml fragment, or kube-prometheus-stack values.",
)
@click.option(
    "--password-file",
    default=DEFAULT_PASSWORD_FILE,
    show_default=True,
    help="prometheus.yml: the file holding the password (receiver-<environment>-password).",
)
@click.option(
    "--secret-name",
    default=REMOTE_WRITE_SECRET,
    show_default=True,
    help="kube-prometheus-stack: the Secret with keys username and password.",
)
@job(REPOSITORY, SCRAPE)
def prometheus_config_command(settings: Settings, environment: str, **options: Any) -> int:
    """Print the remote_write section of one environment's own Prometheus, into the
    receiver of receiver-config: only the namespaces of the applications it enables and the
    metrics the checks and dashboards read, queued for a receiver away for 5 minutes."""
    with Factory(settings) as factory:
        result = factory.remote_write_config(environment, **options)
        problems = environment_problems(factory.inventory(), environment)
    for problem in problems:
        log.error("%s", problem)
    _emit(result, settings)
    return 1 if problems else 0


def _default_author() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name, as in a container without one
        return None


@click.group("silence")
def silence_group() -> None:
    """Silences: mute the alerts that match, from the notifier's next run, for a while.

    Matchers as amtool writes them: label=value, label!=value (value may use * and ?),
    label=~regex, label!~regex; labels cluster, application, check, severity, pod. Stored in
    InfluxDB (bucket silences_); the token needs read and write on it (tokenmaker's silencer).
    """


@silence_group.command("add")
@click.argument("matchers", nargs=-1)
@click.option(
    "--duration", help="How long the silence lasts (e.g. 2h, 1d; at most 30d) [default 1h]."
)
@click.option("--end", help="When the silence ends instead (RFC 3339, e.g. 2025-06-01T14:00:00Z).")
@click.option("--author", default=_default_author, help="Who adds it [default: your login name].")
@click.option("--comment", default="", help="Why (required; shown by silence query).")
@job(INFLUXDB)
def silence_add_command(
    settings: Settings,
    matchers: tuple[str, ...],
    duration: str | None,
    end: str | None,
    author: str | None,
    comment: str,
) -> int:
    """Add a silence; print its ID alone (JSON with --output json)."""
    if not author:
        raise ConfigError("silence add: no login name to use as --author; give --author NAME")
    silence = new_silence(matchers, author=author, comment=comment, duration=duration, end=end)
    with Factory(settings) as factory:
        try:
            added = add_silence(factory.silence_store(), silence)
        except InfluxDBUnavailableError as error:
            # The write may have been stored before the answer was lost: name the ID to look for.
            raise InfluxDBUnavailableError(
                f"{error} (silence {silence.id} may have been stored: see silence query)"
            ) from None
    _emit(added, settings)
    return 0


@silence_group.command("query")
@click.option(
    "--expired", is_flag=True, help="Also list the expired silences still stored (31 days)."
)
@job(INFLUXDB)
def silence_query_command(settings: Settings, expired: bool) -> int:
    """List the active and pending silences, the soonest to end first."""
    with Factory(settings) as factory:
        found = query_silences(factory.silence_store(), expired=expired)
    _emit(found, settings)
    return 0


@silence_group.command("expire")
@click.argument("ids", nargs=-1, required=True)
@job(INFLUXDB)
def silence_expire_command(settings: Settings, ids: tuple[str, ...]) -> int:
    """End silences now: the notifier's next run sends what they muted."""
    with Factory(settings) as factory:
        done = expire_silences(factory.silence_store(), ids)
    _emit(done, settings)
    return 0


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
    probe_config_command,
    host_config_command,
    dashboardmaker_command,
    telegraf_config_command,
    receiver_config_command,
    prometheus_config_command,
    silence_group,
):
    cli.add_command(_command)


def main() -> None:
    """The ``rubin-monitoring`` command: every job as a subcommand."""
    cli(auto_envvar_prefix=None)


bucketmaker_main = bucketmaker_command.main
bucketmapper_main = bucketmapper_command.main
taskmaker_main = taskmaker_command.main
tokenmaker_main = tokenmaker_command.main
notifier_main = notifier_command.main
probe_config_main = probe_config_command.main
dashboardmaker_main = dashboardmaker_command.main
telegrafmaker_main = telegraf_config_command.main

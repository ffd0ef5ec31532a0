"""Settings from flags and environment variables, validated in one place.

A flag wins over its environment variable, which wins over the default. Every invalid or missing
setting raises :class:`ConfigError` naming the variable, so the CLI can print one line and exit 2.
A command declares the groups of settings it uses; they are all parsed and validated when it
starts, before anything is read or written, and reach the code as typed groups
(:class:`InfluxDBSettings`, :class:`ReconcileOptions`, :class:`RepositorySettings`,
:class:`CheckSettings`, :class:`NotifierSettings`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .durations import parse_duration, parse_retention
from .exceptions import ConfigError
from .models.changes import ReconcileOptions
from .models.checks import (
    CHECK_NAMES,
    DEFAULT_CHECKS,
    MAX_THRESHOLD,
    POD_CHECKS,
    CheckSettings,
    IgnoreRule,
)
from .models.inventory import bucket_name
from .models.names import one_line

DEFAULT_PHALANX_REPO = "https://github.com/lsst-sqre/phalanx.git"
ALERT_BUCKET = "multiapp_"
ALERTED_BUCKET = "alerted_"
SILENCES_BUCKET = "silences_"
INTERNAL_BUCKET_RETENTION_SECONDS = 3600
"""Retention of ``multiapp_``: findings are read for ``ALERT_LOOKBACK`` only."""
ALERTED_RETENTION_SECONDS = 7 * 86400
"""Retention of ``alerted_``: no repeat interval (global or a route's) may be longer, or the
records that hold an alert back would expire first."""
MAX_SILENCE_SECONDS = 30 * 86400
"""The longest a silence may last."""
SILENCES_RETENTION_SECONDS = MAX_SILENCE_SECONDS + 86400
"""Retention of ``silences_``: longer than any silence lasts, so its latest point outlives it."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(text: str) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case); empty is false."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use 1/0, true/false, yes/no)")


def parse_url(text: str) -> str:
    """An http(s) URL, without a trailing slash."""
    parsed = urlparse(text.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text.strip().rstrip("/")


def parse_influxdb_url(text: str) -> str:
    """InfluxDB's base URL: scheme, host and port only. Credentials in the URL are refused
    without echoing them (the token goes in INFLUXDB_TOKEN); so is a path, which the API would
    answer with a misleading 404."""
    parsed = urlparse(text.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("is not an http(s) URL such as http://influxdb:8086")
    if "@" in parsed.netloc:
        raise ValueError(
            "must not contain credentials (user:password@); give the token in INFLUXDB_TOKEN"
        )
    try:
        parsed.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if not parsed.netloc.isprintable() or " " in parsed.netloc:
        raise ValueError("has a host with blanks or control characters")
    if parsed.path.strip("/") or parsed.query or parsed.fragment:
        raise ValueError(
            f"must be the server's base URL {parsed.scheme}://{one_line(parsed.netloc)} "
            "without a path"
        )
    return f"{parsed.scheme}://{parsed.netloc}"


def parse_choice(*choices: str) -> Callable[[str], str]:
    """A parser that accepts one of ``choices`` (any case), returned in lower case."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


def parse_positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


def parse_shard_duration(text: str) -> int | None:
    """``auto`` (None: half the retention, see :func:`auto_shard_group_seconds`), or a
    duration of at least 1h, in seconds."""
    if text.strip().lower() == "auto":
        return None
    seconds = parse_duration(text.strip())
    if seconds < 3600:
        raise ValueError(f"{text!r} is shorter than InfluxDB's minimum shard-group duration of 1h")
    return seconds


def parse_percent(text: str) -> int:
    """A whole percentage from 1 to 100."""
    value = parse_positive_int(text.strip().removesuffix("%"))
    if value > 100:
        raise ValueError(f"{text!r} is more than 100")
    return value


def parse_bucket_retention(text: str) -> int:
    """A bucket retention in seconds: ``0``/``inf`` (infinite), else at least 1h (the minimum)."""
    seconds = parse_retention(text)
    if 0 < seconds < 3600:
        raise ValueError(f"{text!r} is shorter than InfluxDB's minimum retention of 1h")
    return seconds


def parse_flux_duration(text: str) -> str:
    """A Flux duration literal (``5m``, ``1h30m``), kept as written."""
    parse_duration(text.strip())
    return text.strip()


def parse_interval(text: str) -> str:
    """A Flux duration literal of at least one second, kept as written."""
    if parse_duration(text.strip()) < 1:
        raise ValueError(f"{text!r} must be at least 1s")
    return text.strip()


def parse_duration_seconds(text: str) -> int:
    """A duration literal (``0s`` allowed), in seconds."""
    return parse_duration(text.strip())


def parse_positive_seconds(text: str) -> int:
    """A duration literal above zero, in seconds."""
    seconds = parse_duration(text.strip())
    if seconds <= 0:
        raise ValueError(f"{text!r} must be a finite duration above 0")
    return seconds


def parse_repeat_interval(text: str) -> int:
    """A repeat interval in seconds: above zero and at most ``alerted_``'s retention (7d)."""
    seconds = parse_positive_seconds(text)
    if seconds > ALERTED_RETENTION_SECONDS:
        raise ValueError(
            f"{text.strip()!r} is longer than the retention of {ALERTED_BUCKET} "
            f"({ALERTED_RETENTION_SECONDS // 86400}d), which keeps the records that hold "
            "an alert back"
        )
    return seconds


def parse_threshold(text: str) -> float:
    """A percentage above 0 and at most 1000."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"percentage {text!r} is not a number") from None
    if math.isnan(value) or not 0 < value <= MAX_THRESHOLD:
        raise ValueError(f"percentage {text!r} must be above 0 and at most 1000")
    return value


def parse_share(text: str) -> float:
    """A percentage of a whole: above 0 and at most 100."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"percentage {text!r} is not a number") from None
    if math.isnan(value) or not 0 < value <= 100:
        raise ValueError(f"percentage {text!r} must be above 0 and at most 100")
    return value


def parse_rate(text: str) -> float:
    """A rate per second: a finite number, at least 0."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"rate {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"rate {text!r} must be a finite number, at least 0")
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


_POD_GLOB = re.compile(r"^[a-z0-9*?][a-z0-9.*?-]*$")
_APPLICATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_ignore_rules(text: str) -> tuple[IgnoreRule, ...]:
    """``IGNORE_PODS``: rules separated by commas or newlines, each
    ``[<check>:][<application>/]<pod-name glob>``, e.g. ``not_running:nublado/prepull-*``
    (``*`` any characters, ``?`` one). No check: every application check; no application:
    every application."""
    rules = []
    for raw in re.split(r"[,\n]", text):
        item = raw.strip()
        if not item:
            continue
        check, _, rest = item.rpartition(":") if ":" in item else ("", "", item)
        application, _, pattern = rest.rpartition("/") if "/" in rest else ("", "", rest)
        if check and check not in POD_CHECKS:
            raise ValueError(
                f"rule {item!r}: {check!r} is not a check of containers ({', '.join(POD_CHECKS)})"
            )
        if application and not _APPLICATION.match(application):
            raise ValueError(f"rule {item!r}: {application!r} is not an application name")
        if not _POD_GLOB.match(pattern):
            raise ValueError(
                f"rule {item!r}: the pod pattern may use lowercase letters, digits, '-', '.', "
                "'*' and '?'"
            )
        rules.append(
            IgnoreRule(pattern, check or None, bucket_name(application) if application else None)
        )
    return tuple(rules)


def parse_nonempty(text: str) -> str:
    """The text without surrounding blanks; blank text is refused."""
    if not text.strip():
        raise ValueError("is empty")
    return text.strip()


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its field, its environment variable(s) (the first is its name), how to parse it,
    its default and help; ``secret`` values are never echoed, ``required`` ones must be given when
    their group is used."""

    field: str
    env: tuple[str, ...]
    parse: Callable[[str], Any]
    default: str | None
    help: str
    secret: bool = False
    boolean: bool = False
    required: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, ``--`` and the field with dashes."""
        return "--" + self.field.replace("_", "-")

    @property
    def label(self) -> str:
        """How errors name the setting: ``VARIABLE (--flag)``."""
        return f"{self.env[0]} ({self.flag})" if self.env else self.flag


def _spec(
    field: str,
    env: str | tuple[str, ...],
    parse: Callable[[str], Any],
    default: str | None,
    help: str,
    secret: bool = False,
    required: bool = False,
) -> SettingSpec:
    names = (env,) if isinstance(env, str) else env
    return SettingSpec(field, names, parse, default, help, secret, parse is parse_bool, required)


# Settings every job reads.
COMMON = (
    _spec("debug", "DEBUG", parse_bool, "0", "Verbose logs."),
    _spec(
        "log_format",
        "LOG_FORMAT",
        parse_choice("text", "json"),
        "text",
        "Log format on stderr: text or json.",
    ),
    _spec(
        "output",
        "OUTPUT",
        parse_choice("text", "json"),
        "text",
        "Result format on stdout: text or json.",
    ),
)
INFLUXDB = (
    _spec(
        "influxdb_url",
        ("INFLUXDB_URL", "INFLUX_HOST"),
        parse_influxdb_url,
        None,
        "InfluxDB base URL (scheme, host, port).",
        required=True,
    ),
    _spec(
        "influxdb_token",
        ("INFLUXDB_TOKEN", "INFLUX_TOKEN"),
        parse_nonempty,
        None,
        "InfluxDB API token.",
        secret=True,
        required=True,
    ),
    _spec(
        "influxdb_org",
        ("INFLUXDB_ORG", "INFLUX_ORG"),
        parse_nonempty,
        None,
        "InfluxDB organization name.",
        required=True,
    ),
    _spec("http_timeout", "HTTP_TIMEOUT", parse_positive_int, "30", "Seconds per HTTP request."),
    _spec(
        "http_retry_budget",
        "HTTP_RETRY_BUDGET",
        parse_positive_seconds,
        "30s",
        "How long InfluxDB may fail every request (timeouts included) before the run gives "
        "up with exit 3: the bound on a hung server, however many requests the run makes.",
    ),
)
# Where generated Telegraf configurations write: URL and organization, no token.
INFLUXDB_TARGET = (INFLUXDB[0], INFLUXDB[2])
DRY_RUN = (_spec("dry_run", "DRY_RUN", parse_bool, "0", "Print the plan and change nothing."),)
LEASE = (
    _spec(
        "lease_ttl",
        "LEASE_TTL",
        parse_positive_seconds,
        "5m",
        "A writing run's lease expires this long after its last renewal (a killed run blocks "
        "the next one at most this long).",
    ),
    _spec(
        "lease_wait",
        "LEASE_WAIT",
        parse_duration_seconds,
        "30s",
        "How long a run waits for another run's lease before it exits 4.",
    ),
)
RECONCILE = (
    *LEASE,
    _spec("force", "FORCE", parse_bool, "0", "Recreate every owned, desired object."),
    *DRY_RUN,
    _spec("prune", "PRUNE", parse_bool, "0", "Delete owned objects nothing desires any more."),
    _spec("concurrency", "CONCURRENCY", parse_positive_int, "8", "Parallel write requests."),
)
REPOSITORY = (
    _spec(
        "phalanx_repo",
        "PHALANX_REPO",
        parse_nonempty,
        DEFAULT_PHALANX_REPO,
        "Git URL or local directory of the configuration repository.",
    ),
    _spec(
        "phalanx_ref",
        "PHALANX_REF",
        parse_nonempty,
        None,
        "Branch, tag or commit to read (default: the default branch of a URL, a local "
        "directory as it is).",
    ),
    _spec(
        "phalanx_timeout",
        "PHALANX_TIMEOUT",
        parse_positive_int,
        "60",
        "Seconds the whole fetch of the repository may take.",
    ),
    _spec(
        "phalanx_max_file_bytes",
        "PHALANX_MAX_FILE_BYTES",
        parse_positive_int,
        "1048576",
        "Largest values file read, in bytes (a larger one is refused).",
    ),
)
BUCKETS = (
    _spec(
        "recreate_buckets",
        "RECREATE_BUCKETS",
        parse_bool,
        "0",
        "Drop and recreate every owned, desired bucket (its data is lost; tokens must be "
        "re-issued). FORCE alone re-applies buckets in place.",
    ),
    _spec(
        "prune_max_share",
        "PRUNE_MAX_SHARE",
        parse_percent,
        "50",
        "PRUNE deletes no bucket when it would delete more than this percentage of the owned "
        "buckets at once (a broken repository must not empty the database); 100 allows all.",
    ),
    _spec(
        "bucket_retention",
        "BUCKET_RETENTION",
        parse_bucket_retention,
        "7d",
        "Retention of application buckets (e.g. 7d, 30d, inf).",
    ),
    _spec(
        "bucket_shard_duration",
        "BUCKET_SHARD_DURATION",
        parse_shard_duration,
        "auto",
        "Span of each shard group of the buckets: auto (half the retention, 1h to 30d) or a "
        "duration of at least 1h and at most the retention. Fewer, longer shards cost less "
        "memory and fewer files; data stays up to retention + this before it is dropped.",
    ),
)
TASKS = (
    _spec(
        "checks",
        "CHECKS",
        parse_checks,
        DEFAULT_CHECKS,
        "Comma-separated checks: per application restarts, not_running, cpu, memory, "
        "oom_killed, job_failed; over Argo CD's and ingress-nginx's buckets argocd_app, "
        "http_5xx; per environment silent; for the fleet disk, site_down, tls_expiry, "
        "cert_expiry.",
    ),
    _spec("check_every", "CHECK_EVERY", parse_interval, "5m", "How often each check task runs."),
    _spec(
        "check_window", "CHECK_WINDOW", parse_interval, "10m", "How far back each check run looks."
    ),
    _spec(
        "cpu_threshold",
        "CPU_THRESHOLD",
        parse_threshold,
        "90",
        "CPU alert threshold, percent of the container's limit.",
    ),
    _spec(
        "memory_threshold",
        "MEMORY_THRESHOLD",
        parse_threshold,
        "90",
        "Memory alert threshold, percent of the container's limit.",
    ),
    _spec(
        "pending_grace",
        "PENDING_GRACE",
        parse_flux_duration,
        "10m",
        "How long a container may be Pending or ContainerCreating before it is reported.",
    ),
    _spec(
        "ignore_pods",
        "IGNORE_PODS",
        parse_ignore_rules,
        "",
        "Pods that never alert: [check:][application/]pod-glob, comma-separated "
        "(e.g. not_running:nublado/prepull-*).",
    ),
    _spec(
        "silent_after",
        "SILENT_AFTER",
        parse_interval,
        "15m",
        "How long an enabled application may send no points from its cluster (check silent).",
    ),
    _spec(
        "disk_threshold",
        "DISK_THRESHOLD",
        parse_threshold,
        "85",
        "Percent of the InfluxDB host's disk in use above which check disk alerts.",
    ),
    _spec(
        "tls_expiry_warning",
        "TLS_EXPIRY_WARNING",
        parse_interval,
        "30d",
        "How long before a site's certificate expires check tls_expiry alerts.",
    ),
    _spec(
        "argocd_sync_grace",
        "ARGOCD_SYNC_GRACE",
        parse_interval,
        "30m",
        "How long an Argo CD Application may be out of sync before check argocd_app reports it.",
    ),
    _spec(
        "http_5xx_threshold",
        "HTTP_5XX_THRESHOLD",
        parse_share,
        "5",
        "Percent of an ingress's requests answered 5xx above which check http_5xx alerts.",
    ),
    _spec(
        "http_5xx_min_rate",
        "HTTP_5XX_MIN_RATE",
        parse_rate,
        "0.2",
        "Requests per second through an ingress (over CHECK_WINDOW) below which check "
        "http_5xx does not judge it.",
    ),
    _spec(
        "cert_expiry_warning",
        "CERT_EXPIRY_WARNING",
        parse_interval,
        "21d",
        "How long before a certificate of a cluster (cert-manager's, the control plane's) "
        "expires check cert_expiry alerts.",
    ),
)
NOTIFIER = (
    _spec(
        "slack_webhook_url",
        "SLACK_WEBHOOK_URL",
        parse_url,
        None,
        "Default Slack incoming-webhook URL.",
        secret=True,
    ),
    _spec(
        "slack_routes_file",
        "SLACK_ROUTES_FILE",
        parse_nonempty,
        None,
        "YAML file routing clusters/applications/severities to other webhooks.",
    ),
    _spec(
        "alert_lookback",
        "ALERT_LOOKBACK",
        parse_positive_seconds,
        "10m",
        "How far back the notifier reads findings from multiapp_.",
    ),
    _spec(
        "alert_repeat_interval",
        "ALERT_REPEAT_INTERVAL",
        parse_repeat_interval,
        "1h",
        "An alert already sent within this interval is not sent again.",
    ),
    _spec(
        "send_resolved",
        "SEND_RESOLVED",
        parse_bool,
        "0",
        "Also send a message when an alerted problem stops appearing.",
    ),
    _spec(
        "slack_timeout",
        "SLACK_TIMEOUT",
        parse_positive_int,
        "10",
        "Seconds per Slack request before it counts as failed (then retried a few times).",
    ),
    _spec(
        "heartbeat_url",
        "HEARTBEAT_URL",
        parse_url,
        None,
        "URL the notifier calls (GET) after each run in which the whole chain was healthy: a "
        "dead man's switch for the monitoring itself.",
        secret=True,
    ),
)
DASHBOARDS = (
    _spec(
        "dashboards_dir",
        "DASHBOARDS_DIR",
        parse_nonempty,
        None,
        "Directory of InfluxDB template files (*.yml) to apply (default: the dashboards "
        "shipped with the toolkit).",
    ),
)
SCRAPE = (
    _spec(
        "scrape_catalog",
        "SCRAPE_CATALOG",
        parse_nonempty,
        None,
        "YAML file of scrape-catalog entries that add to or replace the shipped ones "
        "(telegraf-config).",
    ),
)
SPECS: tuple[SettingSpec, ...] = (
    *COMMON,
    *INFLUXDB,
    *RECONCILE,
    *REPOSITORY,
    *BUCKETS,
    *TASKS,
    *NOTIFIER,
    *DASHBOARDS,
    *SCRAPE,
)


@dataclass(frozen=True)
class InfluxDBSettings:
    """Where InfluxDB is and how to talk to it."""

    url: str
    token: str = field(repr=False)
    org: str
    http_timeout: int = 30
    retry_budget_seconds: int = 30


@dataclass(frozen=True)
class RepositorySettings:
    """The configuration repository and the ref to read."""

    repo: str = DEFAULT_PHALANX_REPO
    ref: str | None = None
    timeout_seconds: int = 60
    max_file_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class NotifierSettings:
    """Where alerts go and how often. ``webhook_url`` is a secret: never in repr or output."""

    webhook_url: str | None = field(default=None, repr=False)
    routes_file: str | None = None
    lookback_seconds: int = 600
    repeat_seconds: int = 3600
    send_resolved: bool = False
    slack_timeout: int = 10
    heartbeat_url: str | None = field(default=None, repr=False)
    """A secret like the webhooks: never in repr, logs or output."""


@dataclass(frozen=True)
class LeaseSettings:
    """How long a writing run's lease lasts without renewal, and how long a run waits for one."""

    ttl_seconds: int = 300
    wait_seconds: int = 30


@dataclass(frozen=True)
class Settings:
    """Every setting, grouped. ``influxdb`` is None only for commands that never talk to it."""

    debug: bool
    log_format: str
    output: str
    influxdb: InfluxDBSettings | None
    reconcile: ReconcileOptions
    repository: RepositorySettings
    bucket_retention: int
    recreate_buckets: bool
    checks: CheckSettings
    notifier: NotifierSettings
    lease: LeaseSettings
    dashboards_dir: str | None = None
    """dashboardmaker's template files; None: the packaged ``dashboards/``."""
    prune_max_share: int = 50
    """The largest percentage of owned buckets one PRUNE run may delete."""
    bucket_shard_seconds: int | None = None
    """The buckets' shard-group duration; None: half the retention (``auto``)."""
    scrape_catalog: str | None = None
    """telegraf-config's user catalog file (``SCRAPE_CATALOG``); None: the shipped one only."""

    @property
    def dry_run(self) -> bool:
        """Whether this run only plans (DRY_RUN)."""
        return self.reconcile.dry_run


def _group(values: Mapping[str, Any]) -> Settings:
    influxdb = None
    if values["influxdb_url"] is not None:
        influxdb = InfluxDBSettings(
            url=values["influxdb_url"],
            # Commands that only name InfluxDB (generated Telegraf files) take no token.
            token=values["influxdb_token"] or "",
            org=values["influxdb_org"],
            http_timeout=values["http_timeout"],
            retry_budget_seconds=values["http_retry_budget"],
        )
    return Settings(
        debug=values["debug"],
        log_format=values["log_format"],
        output=values["output"],
        influxdb=influxdb,
        reconcile=ReconcileOptions(
            force=values["force"],
            prune=values["prune"],
            dry_run=values["dry_run"],
            concurrency=values["concurrency"],
        ),
        repository=RepositorySettings(
            repo=values["phalanx_repo"],
            ref=values["phalanx_ref"],
            timeout_seconds=values["phalanx_timeout"],
            max_file_bytes=values["phalanx_max_file_bytes"],
        ),
        bucket_retention=values["bucket_retention"],
        recreate_buckets=values["recreate_buckets"],
        prune_max_share=values["prune_max_share"],
        bucket_shard_seconds=values["bucket_shard_duration"],
        checks=CheckSettings(
            checks=values["checks"],
            every=values["check_every"],
            window=values["check_window"],
            cpu_threshold=values["cpu_threshold"],
            memory_threshold=values["memory_threshold"],
            pending_grace=values["pending_grace"],
            silent_after=values["silent_after"],
            disk_threshold=values["disk_threshold"],
            tls_expiry_warning=values["tls_expiry_warning"],
            argocd_sync_grace=values["argocd_sync_grace"],
            http_5xx_threshold=values["http_5xx_threshold"],
            http_5xx_min_rate=values["http_5xx_min_rate"],
            cert_expiry_warning=values["cert_expiry_warning"],
            ignore=values["ignore_pods"],
        ),
        notifier=NotifierSettings(
            webhook_url=values["slack_webhook_url"],
            routes_file=values["slack_routes_file"],
            lookback_seconds=values["alert_lookback"],
            repeat_seconds=values["alert_repeat_interval"],
            send_resolved=values["send_resolved"],
            slack_timeout=values["slack_timeout"],
            heartbeat_url=values["heartbeat_url"],
        ),
        lease=LeaseSettings(ttl_seconds=values["lease_ttl"], wait_seconds=values["lease_wait"]),
        dashboards_dir=values["dashboards_dir"],
        scrape_catalog=values["scrape_catalog"],
    )


def load_settings(
    flags: Mapping[str, object | None],
    specs: Iterable[SettingSpec] = SPECS,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Parse and validate the settings in ``specs`` (the groups the running command uses);
    ``flags`` maps field names to flag values (None when not given).

    Only ``specs`` are read from flags and environment; the others keep their defaults, so a
    stray variable for another job cannot break this one. Raises :class:`ConfigError` naming
    the variable for a missing required or an invalid value (a secret's value is never shown).
    """
    env = os.environ if environ is None else environ
    used = {spec.field for spec in specs}
    values: dict[str, Any] = {}
    missing: list[SettingSpec] = []
    for spec in SPECS:
        if spec.field not in used:
            values[spec.field] = None if spec.default is None else spec.parse(spec.default)
            continue
        flag = flags.get(spec.field)
        if flag is not None and not isinstance(flag, str):
            values[spec.field] = flag
            continue
        raw = flag
        if raw is None:
            raw = next((env[name] for name in spec.env if name in env), None)
        if raw is None:
            raw = spec.default
        if raw is None:
            if spec.required:
                missing.append(spec)
            values[spec.field] = None
            continue
        try:
            values[spec.field] = spec.parse(raw)
        except ValueError as error:
            detail = "invalid value" if spec.secret else str(error)
            raise ConfigError(f"invalid {spec.label}: {detail}") from None
    if missing:
        raise ConfigError(f"{missing[0].label} is not set")
    return _group(values)

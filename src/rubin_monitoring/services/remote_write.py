"""The sending side of remote write: the ``remote_write`` section of a cluster's own Prometheus,
pointing at its listener of the receiver (:mod:`.receiver`). Pure rendering.

Two shapes of one setting: a plain ``prometheus.yml`` fragment (the password read from a file)
and kube-prometheus-stack values (``prometheus.prometheusSpec.remoteWrite``, the user name and
password from a Secret). Either way:

- ``write_relabel_configs`` keep only the series of the namespaces of the applications the
  environment enables (the receiver would drop the others, after the trip), and of the metrics
  the checks and dashboards read: :func:`~rubin_monitoring.models.metrics.forwarded_metrics`
  (kube-state-metrics' and the applications' metrics, histograms as their three series) and the
  ``metrics`` allowlists of the scrape catalog's entries for the applications it enables;
- the queue is sized for a receiver away for 5 minutes (the README says the arithmetic):
  Prometheus keeps what it could not send in its write-ahead log and retries a batch that met a
  connection error, a 5xx or a 429 until it is accepted, backing off up to ``max_backoff``; no
  sample age limit is set, so nothing is dropped for being late. Metadata is not sent (the
  receiver has no use for it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..exceptions import ConfigError
from ..models.metrics import NAMESPACE, forwarded_metrics
from ..models.names import kubernetes_name_problem, quoted
from ..models.scrape import ScrapeEntry
from .receiver import Listener

REMOTE_WRITE_NAME = "rubin-monitoring"
DEFAULT_PASSWORD_FILE = "/etc/prometheus/secrets/rubin-monitoring-remote-write/password"
DEFAULT_SECRET_NAME = "rubin-monitoring-remote-write"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
REMOTE_TIMEOUT = "30s"
# The queue (see the README's arithmetic): one shard sends one batch at a time; up to
# MAX_SHARDS batches of MAX_SAMPLES_PER_SEND are in flight while it catches up.
CAPACITY = 10_000
MAX_SAMPLES_PER_SEND = 2_000
BATCH_SEND_DEADLINE = "5s"
MIN_SHARDS = 1
MAX_SHARDS = 10
MIN_BACKOFF = "30ms"
MAX_BACKOFF = "5s"
FORMATS = ("prometheus", "kube-prometheus-stack")


@dataclass(frozen=True)
class RemoteWriteConfig:
    """prometheus-config's result: ``text`` is YAML in ``format`` for ``environment``."""

    environment: str
    format: str
    url: str
    text: str


def receiver_write_url(receiver_url: str, listener: Listener) -> str:
    """The URL environment ``listener`` writes to: ``receiver_url`` (scheme, host, optional
    port; where the cluster reaches the receiver) and the listener's path. Raises
    :class:`ConfigError` for anything but a plain http(s) base URL."""
    shown = quoted(receiver_url)
    if not receiver_url.isprintable() or any(char.isspace() for char in receiver_url):
        raise ConfigError(f"--receiver-url {shown}: expected http(s)://host[:port]")
    parts = urlsplit(receiver_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--receiver-url {shown}: expected http(s)://host[:port]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            "--receiver-url: no credentials, query or fragment (the password is read from a "
            "file or a Secret)"
        )
    if parts.path.strip("/"):
        raise ConfigError(f"--receiver-url {shown}: no path (the environment's path is added)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"--receiver-url {shown}: bad port") from None
    return f"{parts.scheme}://{parts.netloc}{listener.path}"


def _glob_regex(pattern: str) -> str:
    """A Telegraf glob (``*``, ``?``) as an RE2 regular expression."""
    return "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )


def forwarded_names(catalog: Sequence[ScrapeEntry], applications: Sequence[str]) -> list[str]:
    """The metric-name patterns forwarded: :func:`forwarded_metrics`, then the ``metrics``
    allowlists of the catalog entries an environment enabling ``applications`` scrapes, as
    regular expressions, each once."""
    enabled = frozenset(applications)
    patterns = list(forwarded_metrics())
    for entry in catalog:
        if entry.active(enabled):
            patterns.extend(_glob_regex(glob) for glob in entry.metrics)
    return list(dict.fromkeys(patterns))


def write_relabel_configs(namespaces: Sequence[str], names: Sequence[str]) -> list[dict[str, Any]]:
    """Keep a series only if its ``namespace`` is one of ``namespaces`` and its name matches
    one of ``names`` (Prometheus anchors relabelling regular expressions)."""
    if not namespaces:
        raise ConfigError("the environment enables no application: nothing to forward")
    return [
        {"source_labels": [NAMESPACE], "regex": f"({'|'.join(namespaces)})", "action": "keep"},
        {"source_labels": ["__name__"], "regex": f"({'|'.join(names)})", "action": "keep"},
    ]


def prometheus_remote_write(
    url: str,
    username: str,
    relabel: Sequence[Mapping[str, Any]],
    *,
    password_file: str = DEFAULT_PASSWORD_FILE,
) -> dict[str, Any]:
    """The ``remote_write`` entry of ``prometheus.yml`` (Prometheus 2.42 and 3.x)."""
    return {
        "name": REMOTE_WRITE_NAME,
        "url": url,
        "remote_timeout": REMOTE_TIMEOUT,
        "basic_auth": {"username": username, "password_file": password_file},
        "write_relabel_configs": [dict(rule) for rule in relabel],
        "queue_config": {
            "capacity": CAPACITY,
            "max_samples_per_send": MAX_SAMPLES_PER_SEND,
            "batch_send_deadline": BATCH_SEND_DEADLINE,
            "min_shards": MIN_SHARDS,
            "max_shards": MAX_SHARDS,
            "min_backoff": MIN_BACKOFF,
            "max_backoff": MAX_BACKOFF,
            "retry_on_http_429": True,
        },
        "metadata_config": {"send": False},
    }


def kube_prometheus_stack_remote_write(
    url: str, relabel: Sequence[Mapping[str, Any]], *, secret_name: str = DEFAULT_SECRET_NAME
) -> dict[str, Any]:
    """The same as a prometheus-operator ``RemoteWriteSpec`` (kube-prometheus-stack's
    ``prometheus.prometheusSpec.remoteWrite``): user name and password from the Secret
    ``secret_name`` (keys ``username`` and ``password``)."""
    rules = [
        {"sourceLabels": rule["source_labels"], "regex": rule["regex"], "action": rule["action"]}
        for rule in relabel
    ]
    return {
        "name": REMOTE_WRITE_NAME,
        "url": url,
        "remoteTimeout": REMOTE_TIMEOUT,
        "basicAuth": {
            "username": {"name": secret_name, "key": USERNAME_KEY},
            "password": {"name": secret_name, "key": PASSWORD_KEY},
        },
        "writeRelabelConfigs": rules,
        "queueConfig": {
            "capacity": CAPACITY,
            "maxSamplesPerSend": MAX_SAMPLES_PER_SEND,
            "batchSendDeadline": BATCH_SEND_DEADLINE,
            "minShards": MIN_SHARDS,
            "maxShards": MAX_SHARDS,
            "minBackoff": MIN_BACKOFF,
            "maxBackoff": MAX_BACKOFF,
            "retryOnRateLimit": True,
        },
        "metadataConfig": {"send": False},
    }


def check_options(
    *,
    receiver_url: str,
    output_format: str = "prometheus",
    password_file: str = DEFAULT_PASSWORD_FILE,
    secret_name: str = DEFAULT_SECRET_NAME,
) -> None:
    """Raise :class:`ConfigError` for options prometheus-config cannot render (before anything
    is read)."""
    if output_format not in FORMATS:
        raise ConfigError(f"--format {quoted(output_format)}: one of {', '.join(FORMATS)}")
    receiver_write_url(receiver_url, Listener("environment", port=0))
    if not password_file.startswith("/") or not password_file.isprintable():
        raise ConfigError(f"--password-file {quoted(password_file)}: expected an absolute path")
    problem = kubernetes_name_problem(secret_name)
    if problem is not None:
        raise ConfigError(f"--secret-name {quoted(secret_name)} {problem}")


def render_remote_write(
    environment: str,
    namespaces: Sequence[str],
    receiver_url: str,
    *,
    catalog: Sequence[ScrapeEntry] = (),
    output_format: str = "prometheus",
    password_file: str = DEFAULT_PASSWORD_FILE,
    secret_name: str = DEFAULT_SECRET_NAME,
) -> RemoteWriteConfig:
    """prometheus-config's whole job: environment ``environment``'s ``remote_write`` section
    (it enables ``namespaces``; it writes to its listener of the receiver at ``receiver_url``)
    in ``output_format``: ``prometheus`` (a ``prometheus.yml`` fragment) or
    ``kube-prometheus-stack`` (Helm values)."""
    check_options(
        receiver_url=receiver_url,
        output_format=output_format,
        password_file=password_file,
        secret_name=secret_name,
    )
    # The port is the receiver's business: the URL is --receiver-url's, and the path, user and
    # Secret key of an environment do not depend on it.
    listener = Listener(environment, port=0)
    url = receiver_write_url(receiver_url, listener)
    relabel = write_relabel_configs(namespaces, forwarded_names(catalog, namespaces))
    header = (
        f"# Remote write of cluster {environment} into the rubin-monitoring receiver, generated "
        "by\n# rubin-monitoring prometheus-config: do not edit; regenerate.\n"
    )
    document: dict[str, Any]
    if output_format == "prometheus":
        header += (
            f"# The password is key {listener.secret_key} of tokenmaker's Secret, in "
            f"{password_file}.\n"
        )
        document = {
            "remote_write": [
                prometheus_remote_write(
                    url, listener.username, relabel, password_file=password_file
                )
            ]
        }
    else:
        header += (
            f"# Secret {secret_name}: key {USERNAME_KEY} = {listener.username}, key "
            f"{PASSWORD_KEY} = key {listener.secret_key} of tokenmaker's Secret.\n"
        )
        entry = kube_prometheus_stack_remote_write(url, relabel, secret_name=secret_name)
        document = {"prometheus": {"prometheusSpec": {"remoteWrite": [entry]}}}
    text = header + yaml.safe_dump(document, sort_keys=False, width=100)
    return RemoteWriteConfig(environment, output_format, url, text)

"""The remote-write receiver: one central Telegraf into which every cluster's own Prometheus
writes (Prometheus remote write 1.0), generated from the repository. Pure rendering.

Checked against Telegraf v1.37.2 (``plugins/inputs/http_listener_v2``,
``plugins/parsers/prometheusremotewrite``, ``models/running_input.go``, ``models/filter.go``,
``plugins/processors/enum``):

- **One listener per environment** (``inputs.http_listener_v2``, ``data_format =
  "prometheusremotewrite"``, ``prometheus_metric_version = 2``), on a port of its own
  (``base_port`` + the environment's index in name order) and the path
  ``/<environment>/api/v1/write``, with HTTP basic auth: user = the environment, password =
  ``${RECEIVER_<ENV>_PASSWORD}``, the ``receiver-<env>`` credential of tokenmaker. A listener
  checks the credential before it reads the body (401 otherwise), so a cluster can only write
  through its own listener. The password reference ends in ``:?``: Telegraf refuses to start
  when the variable is unset or empty, because a listener with an empty password would accept
  anyone (the plugin skips authentication then).
- **The cluster is the listener's**: the input sets the tag ``cluster`` (``tags``) after
  ``tagexclude`` dropped the sender's own (Telegraf applies an input's ``tags`` only to points
  without that tag, then ``tagexclude``; ``always_include_local_tags`` applies them again
  afterwards), so a sender's ``cluster`` label, an external label or a relabelled one, never
  reaches InfluxDB. The routing tag, ``instance`` and kube-prometheus-stack's ``prometheus`` and
  ``prometheus_replica`` are dropped the same way.
- **Points shaped as the scrape path's**: measurement ``prometheus`` (``name_override`` of the
  parser's ``prometheus_remote_write``), one field per metric name, the labels as tags,
  summaries' quantiles dropped as the scrape path drops them.
- **Routing** by the series' ``namespace`` label (the scrape target's namespace, or for
  kube-state-metrics, scraped with ``honor_labels``, the object's): one ``processors.enum`` per
  environment, for points of that cluster only, maps each namespace of an application the
  environment enables to its bucket (the routing tag); then ``processors.rename`` gives a series
  its own namespace label back (``exported_namespace``, where Prometheus put it). The output
  writes each point into the bucket its routing tag names and passes only those buckets.
- **Dropped and counted**: a point of a namespace the environment does not enable, or without
  one, has no routing tag; one ``outputs.discard`` per environment (alias
  ``unrouted:<environment>``) takes exactly those, and ``inputs.internal`` writes its counters
  (``internal_write``, field ``metrics_added`` = points dropped since the receiver started) with
  the receiver's other own metrics into ``influxdb_``.
- **Limits**: ``max_body_size`` (a larger declared body gets 413 before it is read),
  ``read_timeout`` and ``write_timeout``; TLS with the listener's own certificate when given
  (``tls_cert``/``tls_key``), else terminated in front of it (the manifests' Ingress).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError
from ..models.checks import HOST_BUCKET
from ..models.inventory import Inventory, bucket_name
from ..models.metrics import (
    CLUSTER,
    EXPORTED_NAMESPACE,
    NAMESPACE,
    PROMETHEUS,
    REMOTE_WRITE_DROPPED_TAGS,
)
from ..models.names import quoted
from ..models.tokens import receiver_role
from ..storage.secret_manifest import secret_key
from .scrape import QUANTILE, ROUTE_TAG
from .telegraf import DEFAULT_IMAGE, DEFAULT_NAMESPACE, enabled_namespaces, manifests_text
from .telegraf_toml import EnvReference, telegraf_toml

TOKEN_VARIABLE = "INFLUX_TOKEN"
DEFAULT_BASE_PORT = 9201
DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024
"""Bytes of one request's body (snappy-compressed). A Prometheus batch of 2000 samples
(``max_samples_per_send``) is well under 1 MiB compressed; a refused batch (413) is lost, so
the limit keeps a wide margin."""
READ_TIMEOUT = "10s"
WRITE_TIMEOUT = "10s"
FLUSH_INTERVAL = "1s"
METRIC_BATCH_SIZE = 5000
DEFAULT_BUFFER_LIMIT = 500_000
"""Points the output holds while InfluxDB takes less than arrives (beyond, the oldest are
dropped and counted as ``metrics_dropped``): the receiver acknowledges a request before it
writes, so this is all that absorbs a burst (see the README)."""
MEMORY_BASE_MIB = 128
"""The receiver's memory without a buffer, with room (bench/remote_write.py: 45 MiB idle)."""
KIB_PER_BUFFERED_POINT = 1.5
"""Memory per buffered point (bench/remote_write.py measures it: about 1.3 KiB)."""
CONCURRENT_WRITES = 4
"""Writes in flight to InfluxDB (bench/remote_write.py: 4 write 40% more per second than 1)."""
INTERNAL_INTERVAL = "30s"
APP_NAME = "rubin-monitoring-receiver"
CONFIG_DIR = "/etc/telegraf"
CONFIG_FILE = "receiver.conf"
UNROUTED_ALIAS = "unrouted:"
MANAGED_BY = {"app.kubernetes.io/managed-by": "rubin-monitoring"}


@dataclass(frozen=True)
class Listener:
    """Where and as whom environment ``environment``'s Prometheus writes."""

    environment: str
    port: int

    @property
    def path(self) -> str:
        """The listener's only path; an Ingress in front routes it to this port."""
        return f"/{self.environment}/api/v1/write"

    @property
    def username(self) -> str:
        """The basic-auth user: the environment's name."""
        return self.environment

    @property
    def password_variable(self) -> str:
        """The environment variable Telegraf reads the password from."""
        return f"RECEIVER_{self.environment.upper().replace('-', '_')}_PASSWORD"

    @property
    def secret_key(self) -> str:
        """The key of tokenmaker's Secret holding the password."""
        return secret_key(receiver_role(self.environment))


@dataclass(frozen=True)
class ReceiverConfig:
    """receiver-config's result: ``text`` is a TOML configuration or a YAML manifest stream;
    ``listeners`` says where each environment writes."""

    format: str
    text: str
    listeners: tuple[Listener, ...]


def receiver_listeners(environments: Sequence[str], base_port: int) -> tuple[Listener, ...]:
    """One listener per environment, in name order, on consecutive ports from ``base_port``.
    Raises :class:`ConfigError` when the ports would not fit below 65536."""
    names = sorted(environments)
    if not names:
        raise ConfigError("the repository has no environment: nothing to receive")
    last = base_port + len(names) - 1
    if base_port < 1 or last > 65535:
        raise ConfigError(
            f"--base-port {base_port}: {len(names)} environments need ports {base_port} to "
            f"{last}, beyond 65535"
        )
    return tuple(Listener(name, base_port + index) for index, name in enumerate(names))


def _service_address(listen_address: str, port: int) -> str:
    if ":" in listen_address:  # an IPv6 address
        return f"[{listen_address}]:{port}"
    return f"{listen_address}:{port}"


def check_options(
    *,
    listen_address: str = "",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    **_: object,
) -> None:
    """Raise :class:`ConfigError` for options the receiver cannot run with (before anything
    is read)."""
    if listen_address:
        try:
            ipaddress.ip_address(listen_address)
        except ValueError:
            raise ConfigError(
                f"--listen-address {quoted(listen_address)} is not an IP address (empty: every one)"
            ) from None
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if max_body_size < 1024:
        raise ConfigError(f"--max-body-size {max_body_size}: at least 1024 bytes")
    if buffer_limit < 10_000:
        raise ConfigError(f"--buffer-limit {buffer_limit}: at least 10000 points")


def receiver_routes(inventory: Inventory) -> dict[str, list[str]]:
    """Each environment -> the namespaces whose series it may write: those of the
    applications it enables that have a bucket (as the environment's own Telegraf ships)."""
    return {env.name: enabled_namespaces(env, inventory) for env in inventory.environments}


def receiver_config(
    listeners: Sequence[Listener],
    routes: Mapping[str, Sequence[str]],
    influxdb_url: str,
    organization: str,
    *,
    listen_address: str = "",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> dict[str, Any]:
    """The receiver's configuration as a TOML document (a dict): ``listeners`` accepting
    remote write, each environment's series routed into the buckets of ``routes`` (environment
    -> namespaces), everything else counted and dropped. See the module's documentation."""
    check_options(
        listen_address=listen_address,
        max_body_size=max_body_size,
        buffer_limit=buffer_limit,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    tls = {"tls_cert": tls_cert, "tls_key": tls_key} if tls_cert and tls_key else {}
    dropped_tags = [CLUSTER, ROUTE_TAG, *REMOTE_WRITE_DROPPED_TAGS]
    inputs: dict[str, Any] = {
        "http_listener_v2": [
            {
                "alias": f"remote-write:{listener.environment}",
                "service_address": _service_address(listen_address, listener.port),
                "paths": [listener.path],
                "methods": ["POST"],
                "data_format": "prometheusremotewrite",
                "prometheus_metric_version": 2,
                "max_body_size": max_body_size,
                "read_timeout": READ_TIMEOUT,
                "write_timeout": WRITE_TIMEOUT,
                "basic_username": listener.username,
                "basic_password": EnvReference(f"${{{listener.password_variable}:?is not set}}"),
                **tls,
                "name_override": PROMETHEUS,
                "tagexclude": dropped_tags,
                "tagdrop": {QUANTILE: ["*"]},
                "tags": {CLUSTER: listener.environment},
            }
            for listener in listeners
        ],
        # The receiver's own counters (points received, written, dropped per output), memory.
        "internal": [
            {
                "interval": INTERNAL_INTERVAL,
                "collect_memstats": True,
                "tags": {ROUTE_TAG: HOST_BUCKET},
            }
        ],
    }
    processors: dict[str, Any] = {
        "enum": [
            {
                "alias": f"route:{listener.environment}",
                "order": index + 1,
                "tagpass": {CLUSTER: [listener.environment]},
                "mapping": [
                    {
                        "tags": [NAMESPACE],
                        "dest": ROUTE_TAG,
                        "value_mappings": {
                            namespace: bucket_name(namespace)
                            for namespace in routes.get(listener.environment, ())
                        },
                    }
                ],
            }
            for index, listener in enumerate(listeners)
        ],
        # After routing: a series' own namespace label, renamed by Prometheus, is its again.
        "rename": [
            {
                "order": len(listeners) + 1,
                "replace": [{"tag": EXPORTED_NAMESPACE, "dest": NAMESPACE}],
            }
        ],
    }
    buckets = sorted(
        {bucket_name(ns) for listener in listeners for ns in routes.get(listener.environment, ())}
        | {HOST_BUCKET}
    )
    return {
        "agent": {
            "interval": INTERNAL_INTERVAL,
            "flush_interval": FLUSH_INTERVAL,
            "metric_batch_size": METRIC_BATCH_SIZE,
            "metric_buffer_limit": buffer_limit,
            "omit_hostname": True,
            # The listener's cluster tag is applied again after tagexclude (see above).
            "always_include_local_tags": True,
        },
        "inputs": inputs,
        "processors": processors,
        "outputs": {
            "influxdb_v2": [
                {
                    "urls": [influxdb_url],
                    "token": EnvReference(f"${{{TOKEN_VARIABLE}}}"),
                    "organization": organization,
                    "bucket_tag": ROUTE_TAG,
                    "exclude_bucket_tag": True,
                    "concurrent_writes": CONCURRENT_WRITES,
                    "tagpass": {ROUTE_TAG: buckets},
                }
            ],
            "discard": [
                {
                    "alias": f"{UNROUTED_ALIAS}{listener.environment}",
                    "tagpass": {CLUSTER: [listener.environment]},
                    "tagdrop": {ROUTE_TAG: ["*"]},
                }
                for listener in listeners
            ],
        },
    }


def memory_limit_mib(buffer_limit: int) -> int:
    """The receiver's memory limit for a buffer of ``buffer_limit`` points, MiB."""
    return MEMORY_BASE_MIB + math.ceil(buffer_limit * KIB_PER_BUFFERED_POINT / 1024)


def receiver_config_toml(config: Mapping[str, Any], listeners: Sequence[Listener]) -> str:
    """The receiver's configuration file (TOML, :func:`~.telegraf_toml.telegraf_toml`) after a
    header saying where each environment writes."""
    header = [
        "Remote-write receiver, generated by rubin-monitoring receiver-config from the",
        "configuration repository: do not edit; regenerate. The InfluxDB token (role receiver)",
        "comes from INFLUX_TOKEN, each environment's password from RECEIVER_<ENV>_PASSWORD.",
        *(
            f"{listener.environment}: port {listener.port}, path {listener.path}, user "
            f"{listener.username}, password {listener.password_variable}"
            for listener in listeners
        ),
    ]
    return telegraf_toml(header, config)


def receiver_manifests(
    text: str,
    listeners: Sequence[Listener],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    secret_name: str,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ingress_host: str | None = None,
    ingress_class: str = "nginx",
    ingress_tls_secret: str | None = None,
) -> list[dict[str, Any]]:
    """The Kubernetes objects that run the receiver: a ConfigMap with ``text``, a one-replica
    Deployment (the InfluxDB token and each environment's password from tokenmaker's Secret
    ``secret_name``), a Service with one port per environment (named after it), and with
    ``ingress_host`` an Ingress routing each environment's path to its port, TLS terminated
    there with ``ingress_tls_secret``."""
    labels = {"app.kubernetes.io/name": APP_NAME, **MANAGED_BY}
    selector = {"app.kubernetes.io/name": APP_NAME}
    checksum = hashlib.sha256(text.encode()).hexdigest()

    def meta(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels), **extra}

    env = [
        {
            "name": TOKEN_VARIABLE,
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": secret_key("receiver")}},
        },
        *(
            {
                "name": listener.password_variable,
                "valueFrom": {"secretKeyRef": {"name": secret_name, "key": listener.secret_key}},
            }
            for listener in listeners
        ),
    ]
    container = {
        "name": "telegraf",
        "image": image,
        # Environment variables are substituted inside TOML strings only.
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_FILE}", "--strict-env-handling"],
        "env": env,
        "ports": [{"containerPort": listener.port} for listener in listeners],
        "readinessProbe": {"tcpSocket": {"port": listeners[0].port}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": "100m", "memory": f"{MEMORY_BASE_MIB}Mi"},
            "limits": {"memory": f"{memory_limit_mib(buffer_limit)}Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(APP_NAME),
            "data": {CONFIG_FILE: text},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(APP_NAME),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"rubin-monitoring/config-sha256": checksum},
                    },
                    "spec": {
                        # It never calls the Kubernetes API.
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 999,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": APP_NAME}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(APP_NAME),
            "spec": {
                "selector": selector,
                "ports": [
                    {
                        "name": listener.environment,
                        "port": listener.port,
                        "targetPort": listener.port,
                    }
                    for listener in listeners
                ],
            },
        },
    ]
    if ingress_host:
        spec: dict[str, Any] = {
            "ingressClassName": ingress_class,
            "rules": [
                {
                    "host": ingress_host,
                    "http": {
                        "paths": [
                            {
                                "path": listener.path,
                                "pathType": "Exact",
                                "backend": {
                                    "service": {
                                        "name": APP_NAME,
                                        "port": {"number": listener.port},
                                    }
                                },
                            }
                            for listener in listeners
                        ]
                    },
                }
            ],
        }
        if ingress_tls_secret:
            spec["tls"] = [{"hosts": [ingress_host], "secretName": ingress_tls_secret}]
        # ingress-nginx counts a chunked body against this limit too, which the listener's
        # max_body_size (a declared length) does not.
        annotations = {"nginx.ingress.kubernetes.io/proxy-body-size": str(max_body_size)}
        documents.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": meta(APP_NAME, annotations=annotations),
                "spec": spec,
            }
        )
    return documents


def render_receiver(
    inventory: Inventory,
    influxdb_url: str,
    organization: str,
    *,
    output_format: str = "config",
    base_port: int = DEFAULT_BASE_PORT,
    listen_address: str = "",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    secret_name: str,
    ingress_host: str | None = None,
    ingress_class: str = "nginx",
    ingress_tls_secret: str | None = None,
) -> ReceiverConfig:
    """receiver-config's whole job: the configuration (``output_format`` ``config``) or the
    manifests (``manifests``) of the receiver for every environment of ``inventory``."""
    listeners = receiver_listeners([env.name for env in inventory.environments], base_port)
    config = receiver_config(
        listeners,
        receiver_routes(inventory),
        influxdb_url,
        organization,
        listen_address=listen_address,
        max_body_size=max_body_size,
        buffer_limit=buffer_limit,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    text = receiver_config_toml(config, listeners)
    if output_format == "manifests":
        documents = receiver_manifests(
            text,
            listeners,
            namespace=namespace,
            image=image,
            secret_name=secret_name,
            max_body_size=max_body_size,
            buffer_limit=buffer_limit,
            ingress_host=ingress_host,
            ingress_class=ingress_class,
            ingress_tls_secret=ingress_tls_secret,
        )
        text = manifests_text(documents)
    return ReceiverConfig(output_format, text, listeners)

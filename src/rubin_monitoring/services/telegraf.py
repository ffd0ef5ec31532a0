"""telegraf-config: the Telegraf configuration one Phalanx environment's cluster runs, and the
Kubernetes objects that run it. Pure rendering: nothing here reads or writes anything.

What the configuration does (option names checked against Telegraf v1.37.2's plugin sources):

- ``[global_tags] cluster = "<environment>"``: the checks group and alert by cluster;
- ``inputs.kube_inventory`` (pods only: ``restarts_total``, ``state_code``, limits; tags
  ``phase``, ``state``, ``readiness``) for every namespace (its default is ``default`` only),
  limited to the pods of this node (``node_name``), so a DaemonSet reports each pod once;
- ``inputs.kubernetes`` (``cpu_usage_nanocores``, ``memory_working_set_bytes``) from this node's
  kubelet;
- ``inputs.x509_cert``: the certificate of the cluster's control plane
  (``https://kubernetes.default.svc:443``, verified with the cluster CA), which only an agent
  inside the cluster can see, into the toolkit's ``probes_`` bucket (check ``cert_expiry``).
  Every node's Telegraf reads it: the points are one series (same tags, same time at the
  agent's precision), so InfluxDB keeps one per interval;
- ``inputs.prometheus``: the scrape catalog's entries of the applications the environment
  enables, and annotation discovery in their namespaces (:mod:`.scrape`), each pod scraped by
  the Telegraf of its own node only;
- ``processors.strings`` computes the routing tag (:data:`~.scrape.ROUTE_TAG`): the point's
  ``namespace`` tag with ``-`` replaced by ``_`` (the bucket convention of
  :func:`~rubin_monitoring.models.inventory.bucket_name`), then, for a series scraped from a pod
  and routed by it, the pod's namespace (``pod_namespace``) instead;
- ``outputs.influxdb_v2`` writes each point into the bucket its routing tag names
  (``bucket_tag``, the tag itself dropped: ``exclude_bucket_tag``). A point without that tag
  would go to the output's ``bucket`` option (``createBatchesFromTag`` in the plugin), which is
  left empty; the output's ``tagpass`` lets through only points whose routing tag is the bucket
  of an application this environment enables, so nothing is ever written to a default bucket
  and nothing outside the enabled applications' buckets is written at all.

The token is never in the file: Telegraf substitutes ``${INFLUX_TOKEN}`` from its environment
when it loads the configuration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..exceptions import ConfigError
from ..models.checks import PROBES_BUCKET
from ..models.inventory import Environment, Inventory, InventoryProblem, bucket_name
from ..models.metrics import CONTROL_PLANE_SOURCE, NAMESPACE, SCRAPE_POD_NAMESPACE
from ..models.names import one_line, quoted
from ..models.scrape import ScrapeEntry
from .kube_state_metrics import ksm_manifests
from .scrape import NODE_NAME_VARIABLE, ROUTE_TAG, scrape_inputs
from .telegraf_toml import EnvReference, telegraf_toml

TOKEN_VARIABLE = "INFLUX_TOKEN"
BUCKET_TAG = ROUTE_TAG
DEFAULT_NAMESPACE = "monitoring"
DEFAULT_IMAGE = "telegraf:1.37.2"
DEFAULT_INTERVAL = "60s"
APP_NAME = "telegraf"
CLUSTER_ROLE = "rubin-monitoring-telegraf"
CONFIG_DIR = "/etc/telegraf"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MANAGED_BY = {"app.kubernetes.io/managed-by": "rubin-monitoring"}

# What the two inputs read, and so all the RBAC they need. kube_inventory lists pods only
# (resource_include), so it needs no secrets (its certificate collector reads TLS Secrets),
# nodes or workloads; the kubelet authorizes /stats/summary as nodes/stats and /pods as
# nodes/proxy.
RBAC_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["nodes/stats", "nodes/proxy"], "verbs": ["get"]},
)


@dataclass(frozen=True)
class TelegrafConfig:
    """telegraf-config's result: ``text`` is a TOML configuration or a YAML manifest stream."""

    environment: str
    format: str
    text: str


def telegraf_secret_key(environment: str) -> str:
    """The key of tokenmaker's Secret holding ``environment``'s Telegraf token."""
    return f"telegraf-{environment}-token"


def find_environment(inventory: Inventory, name: str) -> Environment:
    """The environment called ``name``; :class:`ConfigError` saying the problem that holds it
    back, or listing the known ones, if none."""
    for environment in inventory.environments:
        if environment.name == name:
            return environment
    for problem in inventory.problems:
        named = problem.environment == name or problem.file.endswith(f"/values-{name}.yaml")
        if named and problem.held:
            raise ConfigError(str(problem))
    known = ", ".join(sorted(env.name for env in inventory.environments)) or "none"
    raise ConfigError(
        f"no environment {quoted(name)} in the repository (environments: {one_line(known)})"
    )


def environment_problems(inventory: Inventory, name: str) -> list[InventoryProblem]:
    """The inventory's problems that leave something out of environment ``name``'s
    configuration: its applications that cannot be served."""
    environment = find_environment(inventory, name)
    return [
        problem
        for problem in inventory.problems
        if problem.application is not None and problem.application in environment.applications
    ]


def enabled_namespaces(environment: Environment, inventory: Inventory) -> list[str]:
    """The namespaces whose points this environment's Telegraf ships: its enabled applications
    that have a bucket (an application the inventory rejected has none), sorted."""
    served = set(inventory.applications)
    return sorted(app for app in environment.applications if app in served)


def telegraf_config(
    environment: str,
    namespaces: Sequence[str],
    influxdb_url: str,
    organization: str,
    *,
    interval: str = DEFAULT_INTERVAL,
    scrapes: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The configuration as a TOML document (a dict) for the cluster of ``environment``,
    shipping the points of ``namespaces`` into their applications' buckets; ``scrapes`` are
    its ``inputs.prometheus`` tables (:func:`~.scrape.scrape_inputs`).

    The Kubernetes connections are the in-cluster ones of a DaemonSet pod: kube_inventory
    uses the pod's service account (``url`` unset), inputs.kubernetes this node's kubelet
    (``https://${NODE_NAME}:10250``, verified with the cluster CA, the service account token).
    """
    if not namespaces:
        raise ConfigError(
            f"environment {quoted(environment)} enables no application: nothing to ship"
        )
    inputs: dict[str, Any] = {
        "kube_inventory": [
            {
                "namespace": "",
                "resource_include": ["pods"],
                "node_name": EnvReference(f"${{{NODE_NAME_VARIABLE}}}"),
            }
        ],
        "kubernetes": [
            {
                "url": EnvReference(f"https://${{{NODE_NAME_VARIABLE}}}:10250"),
                "bearer_token": f"{SERVICE_ACCOUNT_DIR}/token",
                "tls_ca": f"{SERVICE_ACCOUNT_DIR}/ca.crt",
            }
        ],
    }
    if scrapes:
        inputs["prometheus"] = [dict(table) for table in scrapes]
    inputs["x509_cert"] = [
        {
            "sources": [CONTROL_PLANE_SOURCE],
            "tls_ca": f"{SERVICE_ACCOUNT_DIR}/ca.crt",
            "exclude_root_certs": True,
            "tags": {BUCKET_TAG: PROBES_BUCKET},
        }
    ]
    replace = [
        {"tag": tag, "dest": BUCKET_TAG, "old": "-", "new": "_"}
        for tag in (NAMESPACE, SCRAPE_POD_NAMESPACE)
    ]
    return {
        "global_tags": {"cluster": environment},
        "agent": {
            "interval": interval,
            "flush_interval": interval,
            "omit_hostname": True,
            # A scraped series' own `cluster` label is dropped (tagexclude) and ours put back.
            "always_include_global_tags": True,
        },
        "inputs": inputs,
        # In order: the namespace tag, then for series routed by their pod the pod's namespace.
        "processors": {"strings": [{"replace": replace}]},
        "outputs": {
            "influxdb_v2": [
                {
                    "urls": [influxdb_url],
                    "token": EnvReference(f"${{{TOKEN_VARIABLE}}}"),
                    "organization": organization,
                    "bucket_tag": BUCKET_TAG,
                    "exclude_bucket_tag": True,
                    "tagpass": {
                        BUCKET_TAG: sorted({bucket_name(ns) for ns in namespaces} | {PROBES_BUCKET})
                    },
                    "tagexclude": [SCRAPE_POD_NAMESPACE],
                }
            ],
        },
    }


def config_text(config: dict[str, Any]) -> str:
    """The configuration as TOML (:func:`telegraf_toml`), after a header saying where it comes
    from; ``${NAME}`` references stay literal strings."""
    cluster = config["global_tags"]["cluster"]
    header = (
        f"Telegraf of cluster {cluster}, generated by rubin-monitoring telegraf-config from the",
        "configuration repository: do not edit; regenerate. The token comes from INFLUX_TOKEN.",
    )
    return telegraf_toml(header, config)


def routed_buckets(namespaces: Sequence[str]) -> dict[str, str]:
    """Where each namespace's points go (what ``processors.strings`` computes)."""
    return {namespace: bucket_name(namespace) for namespace in namespaces}


def telegraf_manifests(
    environment: str,
    text: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    secret_name: str,
) -> list[dict[str, Any]]:
    """The Kubernetes objects that run ``text`` (the TOML configuration) on every node of the
    cluster of ``environment``: ServiceAccount, ClusterRole (:data:`RBAC_RULES`),
    ClusterRoleBinding, ConfigMap and DaemonSet. The DaemonSet reads the token from key
    ``telegraf-<environment>-token`` of Secret ``secret_name`` (tokenmaker's manifest)."""
    labels = {"app.kubernetes.io/name": APP_NAME, **MANAGED_BY}
    selector = {"app.kubernetes.io/name": APP_NAME}
    checksum = hashlib.sha256(text.encode()).hexdigest()

    def meta(name: str, *, namespaced: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"name": name}
        if namespaced:
            data["namespace"] = namespace
        data["labels"] = dict(labels)
        return data

    container = {
        "name": APP_NAME,
        "image": image,
        "args": ["--config", f"{CONFIG_DIR}/telegraf.conf"],
        "env": [
            {
                "name": TOKEN_VARIABLE,
                "valueFrom": {
                    "secretKeyRef": {"name": secret_name, "key": telegraf_secret_key(environment)}
                },
            },
            {
                "name": NODE_NAME_VARIABLE,
                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
            },
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(APP_NAME)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(CLUSTER_ROLE, namespaced=False),
            "rules": [dict(rule) for rule in RBAC_RULES],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(CLUSTER_ROLE, namespaced=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": CLUSTER_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": APP_NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(APP_NAME),
            "data": {"telegraf.conf": text},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta(APP_NAME),
            "spec": {
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": labels,
                        # A new configuration rolls the pods.
                        "annotations": {"rubin-monitoring/config-sha256": checksum},
                    },
                    "spec": {
                        "serviceAccountName": APP_NAME,
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
    ]


def manifests_text(documents: Sequence[dict[str, Any]]) -> str:
    """``documents`` as one YAML stream (``---`` between documents)."""
    return yaml.safe_dump_all(documents, sort_keys=False)


def render_telegraf(
    inventory: Inventory,
    environment_name: str,
    influxdb_url: str,
    organization: str,
    *,
    output_format: str = "config",
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    secret_name: str,
    catalog: Sequence[ScrapeEntry] = (),
) -> TelegrafConfig:
    """telegraf-config's whole job: the configuration (``output_format`` ``config``) or the
    manifests (``manifests``: Telegraf's, then kube-state-metrics') for the environment called
    ``environment_name``, scraping the ``catalog`` entries of the applications it enables."""
    environment = find_environment(inventory, environment_name)
    namespaces = enabled_namespaces(environment, inventory)
    scrapes = scrape_inputs(catalog, namespaces, telegraf_namespace=namespace)
    config = telegraf_config(
        environment.name, namespaces, influxdb_url, organization, scrapes=scrapes
    )
    text = config_text(config)
    if output_format == "manifests":
        documents = telegraf_manifests(
            environment.name, text, namespace=namespace, image=image, secret_name=secret_name
        )
        documents += ksm_manifests(namespace=namespace)
        text = manifests_text(documents)
    return TelegrafConfig(environment.name, output_format, text)

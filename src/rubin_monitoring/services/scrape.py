"""The ``inputs.prometheus`` tables of a cluster's Telegraf: the catalog's entries of the
applications an environment enables, and annotation discovery in those applications'
namespaces. Pure rendering. Option names and behaviour checked against Telegraf v1.37.2's
``plugins/inputs/prometheus`` (``prometheus.go``, ``kubernetes.go``):

- **Once per interval, whatever the number of nodes.** Each input watches the pods of one
  namespace (``monitor_kubernetes_pods_namespace``: one namespace per input; the plugin shares
  one pod informer per namespace among its inputs) with the service account's in-cluster
  credentials (``pod_scrape_scope = "cluster"``), and keeps only the pods on its own node
  (``kubernetes_field_selector = "spec.nodeName=${NODE_NAME}"``, matched by the plugin on each
  pod), so the DaemonSet's pod on each node scrapes that node's pods and no other. The
  alternative, ``pod_scrape_scope = "node"``, asks the kubelet's ``/pods`` with TLS
  verification switched off for the whole process, and skips every pod without annotations
  even for a catalog entry; it is not used.
- **Labels and annotations.** The plugin copies every pod label and annotation into tags
  unless filtered: ``pod_annotation_exclude = ["*"]`` always, and ``pod_label_exclude =
  ["*"]`` unless the entry lists ``tags`` (then ``pod_label_include``). It adds ``address``
  (the pod IP; dropped with ``tagexclude``) and ``url`` (``url_tag = ""``: none), and the pod's
  name as ``pod_name``.
- **The series' own namespace.** The plugin writes the pod's namespace into the tag named by
  ``pod_namespace_label_name`` (default ``namespace``, overwriting the series' own label, as
  ingress-nginx's request namespace); here it is ``pod_namespace``, which routes series of
  ``route_by: pod`` entries and is dropped by the output.
- **Summaries' quantiles are dropped** (``tagdrop``; their ``_sum`` and ``_count`` stay): a
  quantile is NaN until observed, which line protocol cannot carry (Telegraf would log an error
  at every flush), and no check or dashboard reads them.
- **The cluster tag is ours.** A series' own ``cluster`` label is dropped (``tagexclude``) and
  the global ``cluster`` tag put back (agent ``always_include_global_tags``).
- **Annotation discovery** (``prometheus.io/scrape: "true"``, ``/port``, ``/path``,
  ``/scheme``) runs in each enabled application's namespace, and skips the pods a catalog entry
  of that namespace scrapes: its label selectors are the complement of the entries' selectors,
  as disjoint selectors (:func:`~rubin_monitoring.models.selectors.complement`), so no pod is
  scraped twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..exceptions import ConfigError
from ..models.metrics import (
    CLUSTER,
    PROMETHEUS,
    SCRAPE_POD,
    SCRAPE_POD_NAMESPACE,
)
from ..models.scrape import RouteBy, ScrapeEntry
from ..models.selectors import Selector, SelectorError, complement
from .telegraf_toml import EnvReference

NODE_NAME_VARIABLE = "NODE_NAME"
ROUTE_TAG = "rubin_monitoring_bucket"
"""The tag that names a point's bucket (``bucket_tag``; never written)."""
NODE_FIELD_SELECTOR = EnvReference(f"spec.nodeName=${{{NODE_NAME_VARIABLE}}}")
ANNOTATIONS_METHOD = "annotations"
QUANTILE = "quantile"
# Only a valid namespace name is watched: the plugin waits for its pod list before Telegraf
# starts, and the API server refuses an invalid name for ever.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _tagexclude(route_by: RouteBy) -> list[str]:
    """Tags an input drops before anything else sees its points: the discovery's pod IP, a
    sender's own ``cluster`` and routing tag (ours are set later), and for series routed by
    their label the scraped pod's name and namespace, which describe the exporter only."""
    dropped = ["address", CLUSTER, ROUTE_TAG]
    if route_by is RouteBy.LABEL:
        dropped += [SCRAPE_POD, SCRAPE_POD_NAMESPACE]
    return dropped


def _discovery(namespace: str) -> dict[str, Any]:
    return {
        "metric_version": 2,
        "url_tag": "",
        "monitor_kubernetes_pods": True,
        "pod_scrape_scope": "cluster",
        "monitor_kubernetes_pods_namespace": namespace,
        "kubernetes_field_selector": NODE_FIELD_SELECTOR,
        "pod_namespace_label_name": SCRAPE_POD_NAMESPACE,
        "pod_annotation_exclude": ["*"],
    }


def entry_input(entry: ScrapeEntry, telegraf_namespace: str) -> dict[str, Any]:
    """The ``[[inputs.prometheus]]`` table that scrapes one catalog entry's pods."""
    table: dict[str, Any] = {
        "alias": f"scrape:{entry.application}/{entry.component}",
        **_discovery(entry.namespace(telegraf_namespace)),
        "monitor_kubernetes_pods_method": "settings",
        "monitor_kubernetes_pods_scheme": entry.scheme,
        "monitor_kubernetes_pods_port": entry.port,
        "monitor_kubernetes_pods_path": entry.path,
        "kubernetes_label_selector": str(entry.selector),
    }
    if entry.tags:
        table["pod_label_include"] = list(entry.tags)
    else:
        table["pod_label_exclude"] = ["*"]
    if entry.measurement != PROMETHEUS:
        table["name_override"] = entry.measurement
    if entry.metrics:
        table["fieldinclude"] = list(entry.metrics)
    table["tagexclude"] = _tagexclude(entry.route_by)
    table["tagdrop"] = {QUANTILE: ["*"]}
    return table


def annotation_input(namespace: str, selector: Selector, part: int = 0) -> dict[str, Any]:
    """The ``[[inputs.prometheus]]`` table that scrapes the pods of ``namespace`` annotated
    ``prometheus.io/scrape: "true"`` and selected by ``selector`` (empty: every pod); ``part``
    numbers the inputs of one namespace when there are several (1, 2...; 0: the only one)."""
    table: dict[str, Any] = {
        "alias": f"annotations:{namespace}" + (f"/{part}" if part else ""),
        **_discovery(namespace),
        "monitor_kubernetes_pods_method": ANNOTATIONS_METHOD,
    }
    if selector.requirements:
        table["kubernetes_label_selector"] = str(selector)
    table["pod_label_exclude"] = ["*"]
    table["tagexclude"] = _tagexclude(RouteBy.POD)
    table["tagdrop"] = {QUANTILE: ["*"]}
    return table


def active_entries(
    entries: Iterable[ScrapeEntry], applications: Iterable[str]
) -> list[ScrapeEntry]:
    """The entries an environment enabling ``applications`` scrapes, in catalog order."""
    enabled = frozenset(applications)
    return [entry for entry in entries if entry.active(enabled)]


def scrape_inputs(
    entries: Sequence[ScrapeEntry],
    namespaces: Sequence[str],
    *,
    telegraf_namespace: str,
    annotations: bool = True,
) -> list[dict[str, Any]]:
    """Every ``[[inputs.prometheus]]`` table of an environment whose enabled applications
    (namespaces) are ``namespaces``: one per active catalog entry, then (``annotations``) the
    annotation discovery of each of those namespaces, outside the catalog's pods.
    Applications whose name is not a namespace name get no annotation discovery.
    :class:`ConfigError` when the catalog's selectors of one namespace are too many to
    complement."""
    active = active_entries(entries, namespaces)
    tables = [entry_input(entry, telegraf_namespace) for entry in active]
    if not annotations:
        return tables
    by_namespace: dict[str, list[Selector]] = {}
    for entry in active:
        by_namespace.setdefault(entry.namespace(telegraf_namespace), []).append(entry.selector)
    for namespace in sorted(namespaces):
        if not _NAMESPACE.match(namespace):
            continue
        try:
            selectors = complement(by_namespace.get(namespace, []))
        except SelectorError as error:
            raise ConfigError(f"scrape catalog, namespace {namespace}: {error}") from None
        several = len(selectors) > 1
        tables.extend(
            annotation_input(namespace, selector, index + 1 if several else 0)
            for index, selector in enumerate(selectors)
        )
    return tables

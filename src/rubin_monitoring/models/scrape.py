"""The scrape catalog's entries: which pods of which application export Prometheus metrics,
where, and how their series are routed into buckets. Pure data; read by
:mod:`rubin_monitoring.services.catalog`, rendered by :mod:`rubin_monitoring.services.scrape`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .metrics import PROMETHEUS
from .selectors import Selector


class RouteBy(Enum):
    """How an entry's series find their bucket.

    ``pod``: the bucket of the application that owns the scraped pod (its namespace), whatever
    the series' own labels say. ``label``: the series' own ``namespace`` label (for
    kube-state-metrics, whose series describe objects of every namespace); a series without
    one, or naming a namespace the environment does not enable, is dropped.
    """

    POD = "pod"
    LABEL = "label"


@dataclass(frozen=True)
class ScrapeEntry:
    """One (application, component) of the catalog.

    Its pods are those of the application's namespace (the application's name, as Phalanx
    deploys it; for an entry ``with_telegraf``, Telegraf's own namespace) that ``selector``
    selects; each is scraped at ``scheme://<pod IP>:port<path>``. ``metrics`` (Telegraf glob
    patterns of field names) limits what is kept (empty: everything); ``tags`` names the pod
    labels kept as tags (empty: none). ``source`` says where the entry was read (file and line).
    """

    application: str
    component: str
    selector: Selector
    port: int
    path: str = "/metrics"
    scheme: str = "http"
    measurement: str = PROMETHEUS
    route_by: RouteBy = RouteBy.POD
    metrics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    with_telegraf: bool = False
    source: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What a user entry overrides: (application, component)."""
        return (self.application, self.component)

    def namespace(self, telegraf_namespace: str) -> str:
        """The namespace whose pods the entry scrapes."""
        return telegraf_namespace if self.with_telegraf else self.application

    def active(self, applications: frozenset[str] | set[str]) -> bool:
        """Whether an environment enabling ``applications`` scrapes this entry: its
        application is enabled, or it runs with Telegraf (deployed by the toolkit itself)."""
        return self.with_telegraf or self.application in applications

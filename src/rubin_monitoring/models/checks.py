"""The alert checks the toolkit knows, and the settings their tasks are rendered with.

Checks come in three scopes (:class:`rubin_monitoring.models.tasks.Scope`): most watch one
application bucket (one task per enabled application); a few watch the bucket of the one
application whose metrics they read (``argocd_app``: Argo CD's, ``http_5xx``: ingress-nginx's;
one task, when that application is enabled); ``silent`` watches one environment (one task per
environment, from the inventory); ``disk``, ``site_down``, ``tls_expiry`` and ``cert_expiry``
watch the fleet as a whole (one task each).
"""

from __future__ import annotations

from dataclasses import dataclass

from .tasks import Scope

POD_CHECKS: tuple[str, ...] = ("restarts", "not_running", "cpu", "memory", "oom_killed")
"""Checks of one application's containers (``IGNORE_PODS`` applies to them)."""
BUCKET_CHECKS: tuple[str, ...] = (*POD_CHECKS, "job_failed")
"""Checks of one application's Kubernetes objects, one task per application bucket."""
SOURCE_CHECKS: dict[str, str] = {"argocd_app": "argocd", "http_5xx": "ingress_nginx"}
"""Checks of the metrics one application exports about the others, by the bucket they read
(the bucket of the Argo CD and ingress-nginx applications): one task over that bucket, when
that application is enabled."""
CLUSTER_CHECKS: tuple[str, ...] = ("silent",)
"""Checks of one environment (cluster), one task per environment."""
FLEET_CHECKS: tuple[str, ...] = ("disk", "site_down", "tls_expiry", "cert_expiry")
"""Checks of the fleet as a whole, one task each."""

CHECK_NAMES: tuple[str, ...] = (*BUCKET_CHECKS, *SOURCE_CHECKS, *CLUSTER_CHECKS, *FLEET_CHECKS)
"""Every check the toolkit knows, in a stable order."""

DEFAULT_CHECKS = "restarts,not_running,cpu,oom_killed,argocd_app,http_5xx,cert_expiry,silent"
"""job_failed, memory and the checks of the Telegrafs outside the clusters are off by default
(README, Benchmarks: a task per application costs about as much however little it reads)."""

DEFAULT_SEVERITY: dict[str, str] = {
    "restarts": "warning",
    "not_running": "critical",
    "cpu": "warning",
    "memory": "warning",
    "silent": "critical",
    "disk": "warning",
    "site_down": "critical",
    "tls_expiry": "warning",
    "oom_killed": "warning",
    "job_failed": "warning",
    "argocd_app": "warning",
    "http_5xx": "critical",
    "cert_expiry": "warning",
}
"""The ``severity`` tag each check writes."""

MAX_THRESHOLD = 1000.0

HOST_BUCKET = "influxdb_"
"""Where the InfluxDB host's own Telegraf writes (``inputs.disk``, influxd's ``/metrics``)."""
PROBES_BUCKET = "probes_"
"""Where the probe Telegraf writes (``inputs.http_response``, ``inputs.x509_cert``), and each
cluster's Telegraf the certificate of its control plane (``inputs.x509_cert``)."""
CERT_MANAGER_BUCKET = "cert_manager"
"""The bucket of the cert-manager application, whose certificates ``cert_expiry`` reads."""


def check_scope(check: str) -> Scope:
    """The scope a check watches (a check of :data:`SOURCE_CHECKS` watches one bucket)."""
    if check in CLUSTER_CHECKS:
        return Scope.CLUSTER
    if check in FLEET_CHECKS:
        return Scope.FLEET
    return Scope.BUCKET


@dataclass(frozen=True)
class IgnoreRule:
    """Pods one check (or every application check, ``check`` None) never reports, in one
    application's bucket (or in every one, ``bucket`` None): a pod-name glob (``*``, ``?``)."""

    pattern: str
    check: str | None = None
    bucket: str | None = None

    def applies(self, check: str, bucket: str) -> bool:
        """Whether the rule concerns ``check`` over ``bucket``."""
        return self.check in (None, check) and self.bucket in (None, bucket)

    @property
    def regex(self) -> str:
        """The glob as an anchored regular expression (Flux regex literal body)."""
        body = "".join(
            ".*" if char == "*" else "." if char == "?" else "\\." if char == "." else char
            for char in self.pattern
        )
        return f"^{body}$"


@dataclass(frozen=True)
class CheckSettings:
    """Which checks run and how; validated once, by :mod:`rubin_monitoring.config`."""

    checks: tuple[str, ...] = tuple(DEFAULT_CHECKS.split(","))
    every: str = "5m"
    """Flux duration literal: how often each task runs."""
    window: str = "10m"
    """How far back each run looks."""
    cpu_threshold: float = 90.0
    """Percent of the container's CPU limit (mean usage over the window)."""
    memory_threshold: float = 90.0
    """Percent of the container's memory limit (mean working set over the window)."""
    pending_grace: str = "10m"
    """How long a container may be Pending or ContainerCreating before it is reported."""
    silent_after: str = "15m"
    """How long an enabled application may send no points from its cluster (``silent``)."""
    disk_threshold: float = 85.0
    """Percent of the InfluxDB host's disk in use above which ``disk`` alerts."""
    tls_expiry_warning: str = "30d"
    """How long before a site's certificate expires ``tls_expiry`` alerts."""
    argocd_sync_grace: str = "30m"
    """How long an Argo CD Application may be out of sync before ``argocd_app`` reports it."""
    http_5xx_threshold: float = 5.0
    """Percent of an ingress's requests answered 5xx above which ``http_5xx`` alerts."""
    http_5xx_min_rate: float = 0.2
    """Requests per second (over the window) below which an ingress is not judged."""
    cert_expiry_warning: str = "21d"
    """How long before a cluster's certificate expires ``cert_expiry`` alerts."""
    ignore: tuple[IgnoreRule, ...] = ()
    """Pods that never alert (``IGNORE_PODS``)."""

    def ignored_pods(self, check: str, bucket: str) -> list[str]:
        """The regular expressions of the pod names ``check`` over ``bucket`` ignores."""
        return [rule.regex for rule in self.ignore if rule.applies(check, bucket)]

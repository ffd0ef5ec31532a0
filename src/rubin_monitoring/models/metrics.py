"""The one source of truth for the names of what the collectors write and the checks and
dashboards read: measurements, fields and tags.

Two families of data reach the application buckets:

- Telegraf's Kubernetes inputs (``inputs.kube_inventory``, ``inputs.kubernetes``) write
  measurement :data:`KUBERNETES_POD_CONTAINER` with their own field and tag names;
- every Prometheus-format series, however it arrives (Telegraf's ``inputs.prometheus`` with
  ``metric_version = 2``, or a remote-write receiver renamed to it), lands in measurement
  :data:`PROMETHEUS`: one field per metric name (a histogram as ``<name>_bucket`` with tag
  ``le``, ``<name>_sum`` and ``<name>_count``), the series' own labels as tags, plus the
  global tag :data:`CLUSTER`.

Checks and dashboards may rely on the series' own labels and on :data:`CLUSTER`, never on the
tags only the scrape path adds (:data:`SCRAPE_ONLY_TAGS`): a remote-written series has none.

The metric names below are those of the pinned versions cited next to each group; the recorded
expositions under ``tests/integration/data/exposition/`` hold them, and tests compare the two,
so a renamed metric breaks a test, not a chart.
"""

from __future__ import annotations

from typing import Final

# Measurements.

PROMETHEUS: Final = "prometheus"
"""Every Prometheus-format series (``inputs.prometheus``, ``metric_version = 2``)."""
KUBERNETES_POD_CONTAINER: Final = "kubernetes_pod_container"
"""Per container: ``inputs.kubernetes`` (usage) and ``inputs.kube_inventory`` (state, limits)."""
DISK: Final = "disk"
"""``inputs.disk`` of the InfluxDB host's Telegraf."""
HTTP_RESPONSE: Final = "http_response"
"""``inputs.http_response`` of the probe Telegraf."""
X509_CERT: Final = "x509_cert"
"""``inputs.x509_cert`` of the probe Telegraf (and of each cluster's control-plane check)."""

# inputs.x509_cert (Telegraf v1.37.2 plugins/inputs/x509_cert): one point per certificate.

X509_EXPIRY: Final = "expiry"
"""Seconds until the certificate expires (negative once it has)."""
X509_SOURCE: Final = "source"
"""Where the certificate was read, as configured (``https://host:port``)."""
X509_COMMON_NAME: Final = "common_name"
CONTROL_PLANE_SOURCE: Final = "https://kubernetes.default.svc:443"
"""The ``source`` of each cluster's control-plane certificate, read by its own Telegraf."""

# inputs.http_response (Telegraf v1.37.2 plugins/inputs/http_response), of the probe Telegraf.

HTTP_RESULT_CODE: Final = "result_code"
"""0 for an answer; else why not (tag ``result``: ``connection_failed``, ``timeout``...)."""
HTTP_SERVER: Final = "server"
HTTP_RESULT: Final = "result"
HTTP_STATUS_CODE: Final = "status_code"

# Tags every point carries, set by the toolkit's configuration, never by the sender.

CLUSTER: Final = "cluster"
"""The environment's name (``[global_tags]``); a sender's own ``cluster`` label is replaced."""
NAMESPACE: Final = "namespace"
"""Kubernetes inputs: the pod's namespace. Prometheus series: the series' OWN ``namespace``
label, kept as the program wrote it (ingress-nginx: the request's namespace; cert-manager: the
Certificate's; kube-state-metrics: the object's)."""

# Tags the scrape path adds and a remote-written series lacks: no check may rely on them.

SCRAPE_POD: Final = "pod_name"
"""The scraped pod's name (pod discovery; kept for series routed by the scraped pod, where it
tells replicas apart, dropped for those routed by their label)."""
SCRAPE_POD_NAMESPACE: Final = "pod_namespace"
"""The scraped pod's namespace, which routes its series (``pod_namespace_label_name``);
dropped before writing."""
SCRAPE_ONLY_TAGS: Final = (SCRAPE_POD, SCRAPE_POD_NAMESPACE)
DROPPED_DISCOVERY_TAGS: Final = ("address", "url")
"""Tags Telegraf's discovery would add (the pod IP, the scraped URL) that only add
cardinality: never written."""

# Kubernetes inputs (Telegraf v1.37.2 plugins/inputs/kubernetes, plugins/inputs/kube_inventory).

POD_NAME: Final = "pod_name"
CONTAINER_NAME: Final = "container_name"
PHASE: Final = "phase"
STATE: Final = "state"
STATE_REASON: Final = "state_reason"
CPU_USAGE_NANOCORES: Final = "cpu_usage_nanocores"
MEMORY_WORKING_SET_BYTES: Final = "memory_working_set_bytes"
RESTARTS_TOTAL: Final = "restarts_total"
STATE_CODE: Final = "state_code"
RESOURCE_LIMITS_MILLICPU_UNITS: Final = "resource_limits_millicpu_units"
RESOURCE_LIMITS_MEMORY_BYTES: Final = "resource_limits_memory_bytes"

# inputs.disk (Telegraf v1.37.2 plugins/inputs/disk): tags host, path.

DISK_USED_PERCENT: Final = "used_percent"
HOST: Final = "host"
PATH: Final = "path"

# influxd's own /metrics (InfluxDB 2.7 / 2.10), scraped by the InfluxDB host's Telegraf.

INFLUXD_WRITER_OK_POINTS_SUM: Final = "storage_writer_ok_points_sum"
INFLUXD_WRITER_DROPPED_POINTS_SUM: Final = "storage_writer_dropped_points_sum"
INFLUXD_WRITER_ERR_POINTS_SUM: Final = "storage_writer_err_points_sum"
INFLUXD_SHARD_DISK_SIZE: Final = "storage_shard_disk_size"
"""Per shard: tags ``bucket`` (the bucket's ID) and ``id`` (the shard)."""
INFLUXD_BUCKET_ID: Final = "bucket"

# Argo CD v3.4.7, controller/metrics/metrics.go (application controller, port 8082).

ARGOCD_APP_INFO: Final = "argocd_app_info"
"""Gauge 1 per Application; labels ``namespace`` (the Application object's, ``argocd``),
``name``, ``project``, ``autosync_enabled``, ``repo``, ``dest_server``, ``dest_namespace``,
``sync_status`` (Synced, OutOfSync, Unknown), ``health_status`` (Healthy, Progressing,
Degraded, Suspended, Missing, Unknown), ``operation`` (``sync``, ``delete``, or empty: then no
tag)."""
ARGOCD_APP_SYNC_TOTAL: Final = "argocd_app_sync_total"
"""Counter; labels ``namespace``, ``name``, ``project``, ``dest_server``, ``phase``
(Succeeded, Failed, Error...), ``dry_run``."""
ARGOCD_APP_RECONCILE: Final = "argocd_app_reconcile"
"""Histogram (``_bucket``/``_sum``/``_count``); labels ``namespace``, ``dest_server``."""
ARGOCD_APP_NAME: Final = "name"
ARGOCD_HEALTH_STATUS: Final = "health_status"
ARGOCD_SYNC_STATUS: Final = "sync_status"
ARGOCD_DEST_NAMESPACE: Final = "dest_namespace"

# ingress-nginx controller-v1.15.1, internal/ingress/metric/collectors/socket.go (port 10254).

NGINX_REQUESTS: Final = "nginx_ingress_controller_requests"
"""Counter; labels ``status`` (the HTTP code, ``503``), ``method``, ``path``, ``namespace``
(the request's), ``ingress``, ``service``, ``canary`` (empty unless a canary Ingress, and an
empty label is no tag), ``host`` (``--metrics-per-host``, on by default), and the constant
``controller_namespace``, ``controller_class``, ``controller_pod``."""
NGINX_REQUEST_DURATION: Final = "nginx_ingress_controller_request_duration_seconds"
"""Histogram of the same labels (fields ``..._bucket`` with ``le``, ``..._sum``, ``..._count``)."""
NGINX_STATUS: Final = "status"
NGINX_INGRESS: Final = "ingress"
NGINX_SERVICE: Final = "service"
NGINX_HOST: Final = "host"

# JupyterHub 5.4.6, jupyterhub/metrics.py (Nublado's hub, port 8081).

JUPYTERHUB_RUNNING_SERVERS: Final = "jupyterhub_running_servers"
JUPYTERHUB_TOTAL_USERS: Final = "jupyterhub_total_users"
JUPYTERHUB_ACTIVE_USERS: Final = "jupyterhub_active_users"
"""Gauge; label ``period`` (24h, 7d, 30d)."""
JUPYTERHUB_SPAWN_DURATION: Final = "jupyterhub_server_spawn_duration_seconds"
"""Histogram; label ``status`` (success, failure, already-pending, throttled,
too-many-users)."""
JUPYTERHUB_REQUEST_DURATION: Final = "jupyterhub_request_duration_seconds"
"""Histogram; labels ``method``, ``handler``, ``code``."""

# cert-manager v1.19.6, internal/collectors/certificate_collector.go (controller, port 9402).

CERTMANAGER_EXPIRATION: Final = "certmanager_certificate_expiration_timestamp_seconds"
"""Gauge (Unix seconds, 0 before the first issuance); labels ``name``, ``namespace`` (the
Certificate's), ``issuer_name``, ``issuer_kind``, ``issuer_group``."""
CERTMANAGER_RENEWAL: Final = "certmanager_certificate_renewal_timestamp_seconds"
CERTMANAGER_NOT_AFTER: Final = "certmanager_certificate_not_after_timestamp_seconds"
CERTMANAGER_READY_STATUS: Final = "certmanager_certificate_ready_status"
"""Gauge 0/1, one series per ``condition`` (True, False, Unknown); labels ``name``,
``namespace``, ``condition``, ``issuer_name``, ``issuer_kind``, ``issuer_group``."""
CERTMANAGER_CERTIFICATE: Final = "name"
CERTMANAGER_CONDITION: Final = "condition"


# kube-state-metrics v2.16.0: the resources it watches, the metrics it may expose (each a field
# of measurement ``prometheus``, its labels as tags), and the least RBAC it needs. The generated
# manifests (its Deployment's ``--resources`` and ``--metric-allowlist``, its ClusterRole) and
# the lab test that runs the real kube-state-metrics take these same values.

# The API group of each resource kube-state-metrics watches ("" is the core group).
KSM_RESOURCE_API_GROUPS: Final[dict[str, str]] = {
    "pods": "",
    "jobs": "batch",
    "cronjobs": "batch",
}

#: ``--resources``: the only objects kube-state-metrics lists and watches.
KSM_RESOURCES: Final[tuple[str, ...]] = tuple(KSM_RESOURCE_API_GROUPS)

# One constant per metric and label (kube-state-metrics v2.16.0, internal/store/pod.go, job.go,
# cronjob.go), for the checks' templates. Every series has the label ``namespace`` (the
# object's), by which it is routed.

KSM_LAST_TERMINATED_REASON: Final = "kube_pod_container_status_last_terminated_reason"
"""Gauge 1 per container that terminated before; labels ``pod``, ``uid``, ``container``,
``reason`` (``OOMKilled``, ``Error``, ``Completed``...). It stays until the next termination:
:data:`KSM_LAST_TERMINATED_TIMESTAMP` says when."""
KSM_LAST_TERMINATED_TIMESTAMP: Final = "kube_pod_container_status_last_terminated_timestamp"
"""Unix seconds of that termination; labels ``pod``, ``uid``, ``container``."""
KSM_RESTARTS_TOTAL: Final = "kube_pod_container_status_restarts_total"
"""Counter; labels ``pod``, ``uid``, ``container``."""
KSM_WAITING_REASON: Final = "kube_pod_container_status_waiting_reason"
"""Gauge 1 per waiting container; labels ``pod``, ``uid``, ``container``, ``reason``
(``CrashLoopBackOff``, ``ImagePullBackOff``...)."""
KSM_POD_OWNER: Final = "kube_pod_owner"
"""Gauge 1 per pod; labels ``pod``, ``uid``, ``owner_kind`` (``Job``...), ``owner_name``,
``owner_is_controller``: ties a pod to its Job."""
KSM_JOB_COMPLETE: Final = "kube_job_complete"
"""The Job's Complete condition, as :data:`KSM_JOB_FAILED`."""
KSM_JOB_FAILED: Final = "kube_job_failed"
"""The Job's Failed condition: one series per ``condition`` (``true``, ``false``,
``unknown``), 1 for its status; none while the Job has no such condition."""
KSM_JOB_OWNER: Final = "kube_job_owner"
"""Gauge 1; labels ``job_name``, ``owner_kind`` (``CronJob``, or ``""`` for a Job of its own),
``owner_name``, ``owner_is_controller``."""
KSM_JOB_STATUS_ACTIVE: Final = "kube_job_status_active"
KSM_JOB_COMPLETION_TIME: Final = "kube_job_status_completion_time"
"""Unix seconds; only once the Job completed (a failed Job has none)."""
KSM_JOB_STATUS_FAILED: Final = "kube_job_status_failed"
"""Failed pods of a Job; label ``job_name``. No failed pod: one series, no ``reason``, 0. Once
the Job has a Failed condition with a known reason: one series per ``reason``
(``BackoffLimitExceeded``, ``DeadlineExceeded``, ``Evicted``), 1 for its reason, else 0.
Otherwise (still retrying, or another reason): ``reason=""`` with the count of failed pods."""
KSM_JOB_START_TIME: Final = "kube_job_status_start_time"
KSM_JOB_STATUS_SUCCEEDED: Final = "kube_job_status_succeeded"
KSM_CRONJOB_INFO: Final = "kube_cronjob_info"
"""Gauge 1; labels ``cronjob``, ``schedule``, ``concurrency_policy``."""
KSM_CRONJOB_NEXT_SCHEDULE_TIME: Final = "kube_cronjob_next_schedule_time"
KSM_CRONJOB_SUSPEND: Final = "kube_cronjob_spec_suspend"
KSM_CRONJOB_ACTIVE: Final = "kube_cronjob_status_active"
KSM_CRONJOB_LAST_SCHEDULE_TIME: Final = "kube_cronjob_status_last_schedule_time"
KSM_CRONJOB_LAST_SUCCESSFUL_TIME: Final = "kube_cronjob_status_last_successful_time"
KSM_POD: Final = "pod"
KSM_CONTAINER: Final = "container"
KSM_REASON: Final = "reason"
KSM_JOB_NAME: Final = "job_name"
KSM_CRONJOB: Final = "cronjob"
KSM_OWNER_KIND: Final = "owner_kind"
KSM_OWNER_NAME: Final = "owner_name"
KSM_CONDITION: Final = "condition"

#: Per container: OOM kills and other terminations, restarts, waiting reasons; per pod, its
#: owner, to tie a pod to its Job.
KSM_POD_METRICS: Final[tuple[str, ...]] = (
    KSM_LAST_TERMINATED_REASON,
    KSM_LAST_TERMINATED_TIMESTAMP,
    KSM_RESTARTS_TOTAL,
    KSM_WAITING_REASON,
    KSM_POD_OWNER,
)

#: Per Job: failed and succeeded pod counts, the Failed and Complete conditions, start and
#: completion times, and the owner (its CronJob).
KSM_JOB_METRICS: Final[tuple[str, ...]] = (
    KSM_JOB_COMPLETE,
    KSM_JOB_FAILED,
    KSM_JOB_OWNER,
    KSM_JOB_STATUS_ACTIVE,
    KSM_JOB_COMPLETION_TIME,
    KSM_JOB_STATUS_FAILED,
    KSM_JOB_START_TIME,
    KSM_JOB_STATUS_SUCCEEDED,
)

#: Per CronJob: schedule, suspension, running Jobs, and the last scheduled and last successful
#: times (a CronJob that stopped succeeding).
KSM_CRONJOB_METRICS: Final[tuple[str, ...]] = (
    KSM_CRONJOB_INFO,
    KSM_CRONJOB_NEXT_SCHEDULE_TIME,
    KSM_CRONJOB_SUSPEND,
    KSM_CRONJOB_ACTIVE,
    KSM_CRONJOB_LAST_SCHEDULE_TIME,
    KSM_CRONJOB_LAST_SUCCESSFUL_TIME,
)

#: Every metric kube-state-metrics exposes (each a field of measurement ``prometheus``).
KSM_METRICS: Final[tuple[str, ...]] = KSM_POD_METRICS + KSM_JOB_METRICS + KSM_CRONJOB_METRICS

#: ``--metric-allowlist``: kube-state-metrics matches each entry as an unanchored ECMAScript
#: regular expression, so each name is anchored: a bare name also lets in every longer name that
#: contains it (``kube_pod_container_status_terminated`` would let in ``..._terminated_reason``).
KSM_METRIC_ALLOWLIST: Final[tuple[str, ...]] = tuple(f"^{name}$" for name in KSM_METRICS)


def ksm_arguments() -> list[str]:
    """The ``--resources`` and ``--metric-allowlist`` arguments of kube-state-metrics."""
    return [
        f"--resources={','.join(KSM_RESOURCES)}",
        f"--metric-allowlist={','.join(KSM_METRIC_ALLOWLIST)}",
    ]


def ksm_rbac_rules() -> list[dict[str, list[str]]]:
    """The least ClusterRole rules for :data:`KSM_RESOURCES`: list and watch, nothing else.

    One rule per API group, in a stable order (a fresh list each call, safe to modify).
    """
    groups: dict[str, list[str]] = {}
    for resource, group in KSM_RESOURCE_API_GROUPS.items():
        groups.setdefault(group, []).append(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": ["list", "watch"]}
        for group, resources in sorted(groups.items())
    ]


def field_names() -> dict[str, str]:
    """Every name above by its constant's name (``{"ARGOCD_APP_INFO": "argocd_app_info"}``),
    for templates (the Flux checks' Jinja context) and tests."""
    return {
        name: value
        for name, value in globals().items()
        if name.isupper() and isinstance(value, str)
    }

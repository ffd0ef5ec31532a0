"""Names of the Prometheus-format metrics the toolkit reads, and how they are produced.

kube-state-metrics part: the resources kube-state-metrics (v2.16.0) watches, the metrics it is
allowed to expose, and the least RBAC it needs for that. The generated manifests (its Deployment's
``--resources`` and ``--metric-allowlist`` arguments, its ClusterRole) and the lab test that runs
the real kube-state-metrics take these same values, so what the checks read is what is deployed.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "KSM_CRONJOB_METRICS",
    "KSM_JOB_METRICS",
    "KSM_METRICS",
    "KSM_METRIC_ALLOWLIST",
    "KSM_POD_METRICS",
    "KSM_RESOURCES",
    "KSM_RESOURCE_API_GROUPS",
    "ksm_arguments",
    "ksm_rbac_rules",
]

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

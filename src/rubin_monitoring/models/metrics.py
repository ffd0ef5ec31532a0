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

#: Per container (labels ``namespace``, ``pod``, ``uid``, ``container``): OOM kills and other
#: terminations (``reason``: ``OOMKilled``, ``Error``...; the timestamp says when, as the reason
#: stays until the next termination), restarts, waiting reasons (``CrashLoopBackOff``...); per
#: pod, its owner (``owner_kind="Job"``, ``owner_name``) to tie a pod to its Job.
KSM_POD_METRICS: Final[tuple[str, ...]] = (
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_last_terminated_timestamp",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_waiting_reason",
    "kube_pod_owner",
)

#: Per Job (labels ``namespace``, ``job_name``): failed and succeeded pod counts
#: (``kube_job_status_failed`` has a ``reason`` label: ``BackoffLimitExceeded``,
#: ``DeadlineExceeded``, ``Evicted``, or ``""``), the Failed/Complete conditions (label
#: ``condition``: ``true``/``false``/``unknown``), start and completion times, and the owner
#: (``owner_kind="CronJob"``, ``owner_name``).
KSM_JOB_METRICS: Final[tuple[str, ...]] = (
    "kube_job_complete",
    "kube_job_failed",
    "kube_job_owner",
    "kube_job_status_active",
    "kube_job_status_completion_time",
    "kube_job_status_failed",
    "kube_job_status_start_time",
    "kube_job_status_succeeded",
)

#: Per CronJob (labels ``namespace``, ``cronjob``): schedule, suspension, running Jobs, and the
#: last scheduled and last successful times (a CronJob that stopped succeeding).
KSM_CRONJOB_METRICS: Final[tuple[str, ...]] = (
    "kube_cronjob_info",
    "kube_cronjob_next_schedule_time",
    "kube_cronjob_spec_suspend",
    "kube_cronjob_status_active",
    "kube_cronjob_status_last_schedule_time",
    "kube_cronjob_status_last_successful_time",
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

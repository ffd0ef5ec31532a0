"""The Kubernetes objects that run kube-state-metrics next to each cluster's Telegraf: a
ServiceAccount, a ClusterRole of exactly what it watches (``list`` and ``watch`` on
:data:`~rubin_monitoring.models.metrics.KSM_RESOURCES`), its binding, and a one-replica
Deployment with ``--resources`` and ``--metric-allowlist`` limited to what the checks and
dashboards read (:func:`~rubin_monitoring.models.metrics.ksm_arguments`). Pure rendering.

Telegraf finds its pod by the catalog's ``kube-state-metrics`` entry (label
``app.kubernetes.io/name=kube-state-metrics`` in Telegraf's namespace, port
:data:`KSM_PORT`), and routes each series by its own ``namespace`` label.
"""

from __future__ import annotations

from typing import Any

from ..models.metrics import ksm_arguments, ksm_rbac_rules

KSM_NAME = "kube-state-metrics"
KSM_VERSION = "2.16.0"
KSM_IMAGE = f"registry.k8s.io/kube-state-metrics/kube-state-metrics:v{KSM_VERSION}"
KSM_PORT = 8080
"""Where it serves the metrics (the catalog entry's port)."""
KSM_TELEMETRY_PORT = 8081
KSM_CLUSTER_ROLE = "rubin-monitoring-kube-state-metrics"
KSM_LABELS = {"app.kubernetes.io/name": KSM_NAME}
MANAGED_BY = {"app.kubernetes.io/managed-by": "rubin-monitoring"}
# The image's own user (nobody), so the pod passes the restricted Pod Security Standard.
KSM_USER = 65534


def ksm_container_arguments() -> list[str]:
    """Everything the container is started with: its ports, then :func:`ksm_arguments`."""
    return [f"--port={KSM_PORT}", f"--telemetry-port={KSM_TELEMETRY_PORT}", *ksm_arguments()]


def ksm_manifests(*, namespace: str, image: str = KSM_IMAGE) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole, ClusterRoleBinding and Deployment of kube-state-metrics
    in ``namespace``."""
    labels = {**KSM_LABELS, **MANAGED_BY}

    def meta(name: str, *, namespaced: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"name": name}
        if namespaced:
            data["namespace"] = namespace
        data["labels"] = dict(labels)
        return data

    def probe(path: str, port: str) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "initialDelaySeconds": 5,
            "timeoutSeconds": 5,
        }

    container = {
        "name": KSM_NAME,
        "image": image,
        "args": ksm_container_arguments(),
        "ports": [
            {"name": "http-metrics", "containerPort": KSM_PORT},
            {"name": "telemetry", "containerPort": KSM_TELEMETRY_PORT},
        ],
        "livenessProbe": probe("/livez", "http-metrics"),
        "readinessProbe": probe("/readyz", "telemetry"),
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(KSM_NAME)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(KSM_CLUSTER_ROLE, namespaced=False),
            "rules": ksm_rbac_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(KSM_CLUSTER_ROLE, namespaced=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": KSM_CLUSTER_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": KSM_NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(KSM_NAME),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(KSM_LABELS)},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": KSM_NAME,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": KSM_USER,
                            "runAsGroup": KSM_USER,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                    },
                },
            },
        },
    ]

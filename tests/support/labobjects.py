"""Kubernetes objects in the lab's API server, with the status a kubelet and the Job and CronJob
controllers would give them (written through ``/status``: nothing else runs in the lab), for
kube-state-metrics to report.

Typical use::

    from support.labobjects import LabObjects

    lab = LabObjects(kube)
    lab.namespace("noteburst")
    lab.pod("noteburst", "worker-0", terminated=Termination("OOMKilled", now - 2 minutes))
    nightly = lab.cronjob("noteburst", "nightly", last_success=now - 1 day)
    lab.job("noteburst", "nightly-1", owner=nightly, started=now - 1 hour, failed=True)
    ...
    lab.delete_all()  # the namespaced objects it made, for the session's other tests
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from support.kubeapi import KubeAPI

__all__ = ["LabObjects", "Termination", "timestamp"]

IMAGE = "example.org/lab:1.0"


def timestamp(moment: datetime) -> str:
    """A Kubernetes timestamp (RFC 3339, whole seconds, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Termination:
    """How a container last terminated: ``reason`` (``OOMKilled``, ``Error``...) and when."""

    reason: str
    finished: datetime
    exit_code: int = 137


def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    if response.status_code not in (codes or (200, 201)):
        raise AssertionError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    result: dict[str, Any] = response.json() if response.content else {}
    return result


@dataclass
class LabObjects:
    """Makes objects in ``kube`` and remembers them (``delete_all`` removes them)."""

    kube: KubeAPI
    made: list[str] = field(default_factory=list)

    def namespace(self, name: str) -> None:
        """The namespace ``name``, unless it exists (namespaces are kept: deleting one takes a
        namespace controller, which the lab has not)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        _ok(self.kube.client.post("/api/v1/namespaces", json=body), 201, 409)

    def _create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``body`` under ``path``; an object of that name left by another test is
        replaced."""
        name = body["metadata"]["name"]
        response = self.kube.client.post(path, json=body)
        if response.status_code == 409:
            _ok(self.kube.client.delete(f"{path}/{name}", params={"gracePeriodSeconds": 0}))
            response = self.kube.client.post(path, json=body)
        created = _ok(response, 201)
        self.made.append(f"{path}/{name}")
        return created

    def status(self, path: str, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the object at ``path`` (its ``/status`` subresource)."""
        _ok(
            self.kube.client.patch(
                f"{path}/status",
                json={"status": status},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        )

    def pod(
        self,
        namespace: str,
        name: str,
        *,
        node: str = "lab-node",
        container: str = "main",
        labels: Mapping[str, str] | None = None,
        ip: str = "",
        terminated: Termination | None = None,
        restarts: int = 0,
        owner: Mapping[str, Any] | None = None,
        phase: str = "Running",
        limits: Mapping[str, str] | None = None,
    ) -> str:
        """A pod on ``node`` whose one container runs (``terminated``: after that termination,
        its last state), with resource ``limits`` if given; returns its path."""
        path = f"/api/v1/namespaces/{namespace}/pods"
        metadata: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
        if owner is not None:
            metadata["ownerReferences"] = [_reference(owner)]
        self._create(
            path,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Always" if owner is None else "Never",
                    "containers": [
                        {
                            "name": container,
                            "image": IMAGE,
                            "resources": {"limits": dict(limits)} if limits else {},
                        }
                    ],
                },
            },
        )
        pod_path = f"{path}/{name}"
        self.set_container(pod_path, container, terminated=terminated, restarts=restarts,
                           ip=ip, phase=phase)  # fmt: skip
        return pod_path

    def set_container(
        self,
        pod_path: str,
        container: str = "main",
        *,
        terminated: Termination | None = None,
        restarts: int = 0,
        ip: str = "",
        phase: str = "Running",
    ) -> None:
        """The status of a pod whose one container runs again after ``terminated``."""
        status: dict[str, Any] = {
            "name": container,
            "image": IMAGE,
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": restarts,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        }
        if terminated is not None:
            status["lastState"] = {
                "terminated": {
                    "exitCode": terminated.exit_code,
                    "reason": terminated.reason,
                    "startedAt": timestamp(terminated.finished.replace(year=2025)),
                    "finishedAt": timestamp(terminated.finished),
                }
            }
        pod_status: dict[str, Any] = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [status],
        }
        if ip:
            pod_status.update(podIP=ip, podIPs=[{"ip": ip}])
        self.status(pod_path, pod_status)

    def cronjob(
        self,
        namespace: str,
        name: str,
        *,
        last_schedule: datetime,
        last_success: datetime | None,
    ) -> dict[str, Any]:
        """A CronJob that last started a Job at ``last_schedule`` and last succeeded at
        ``last_success`` (None: never); returns the object."""
        path = f"/apis/batch/v1/namespaces/{namespace}/cronjobs"
        made = self._create(
            path,
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": name},
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {"spec": {"backoffLimit": 0, "template": _pod_template()}},
                },
            },
        )
        status = {"lastScheduleTime": timestamp(last_schedule)}
        if last_success is not None:
            status["lastSuccessfulTime"] = timestamp(last_success)
        self.status(f"{path}/{name}", status)
        return made

    def job(
        self,
        namespace: str,
        name: str,
        *,
        started: datetime,
        owner: Mapping[str, Any] | None = None,
        failed: bool = False,
        failed_pods: int = 0,
        completed: datetime | None = None,
    ) -> dict[str, Any]:
        """A Job started at ``started``: ``failed`` (its Failed condition true, its backoff
        limit exceeded), or ``completed`` at that time, or still running with ``failed_pods``
        failed pods (retrying); returns the object."""
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        metadata: dict[str, Any] = {"name": name}
        if owner is not None:
            metadata["ownerReferences"] = [_reference(owner)]
        made = self._create(
            path,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": metadata,
                "spec": {"backoffLimit": 2, "template": _pod_template()},
            },
        )
        status: dict[str, Any] = {"startTime": timestamp(started)}
        if failed:
            condition = {
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastProbeTime": timestamp(started),
                "lastTransitionTime": timestamp(started),
            }
            status["failed"] = max(failed_pods, 3)
            status["conditions"] = [
                {"type": "FailureTarget", **condition},
                {"type": "Failed", **condition},
            ]
        elif completed is not None:
            condition = {
                "status": "True",
                "reason": "CompletionsReached",
                "lastProbeTime": timestamp(completed),
                "lastTransitionTime": timestamp(completed),
            }
            status.update(completionTime=timestamp(completed), succeeded=1)
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", **condition},
                {"type": "Complete", **condition},
            ]
        else:
            status.update(active=1, failed=failed_pods)
        self.status(f"{path}/{name}", status)
        return made

    def get(self, path: str) -> dict[str, Any]:
        """The object at ``path``, as the API server has it."""
        return _ok(self.kube.client.get(path))

    def delete_all(self) -> None:
        """Delete every object made here, newest first (already gone: fine)."""
        while self.made:
            path = self.made.pop()
            self.kube.client.delete(path, params={"gracePeriodSeconds": 0})


def _pod_template() -> dict[str, Any]:
    return {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": IMAGE}],
        }
    }


def _reference(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": item["apiVersion"],
        "kind": item["kind"],
        "name": item["metadata"]["name"],
        "uid": item["metadata"]["uid"],
        "controller": True,
    }

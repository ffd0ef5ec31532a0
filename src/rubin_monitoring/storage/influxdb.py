"""InfluxDB v2 resources the toolkit manages: orgs, buckets, DBRP mappings, tasks.

Knows the API's shapes, page sizes and quirks; knows nothing about applications.

Every create is idempotent: when its outcome is unknown (a lost answer, a timeout) the object
is looked up by its identity before it is created again (:func:`create_once`), and a create the
server refuses because the toolkit's own object already exists (a bucket or DBRP mapping: 422)
counts as done. A delete that finds nothing (404) counts as done: the object is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..exceptions import ConfigError, InfluxDBAuthError, InfluxDBError
from ..models.buckets import BucketSpec, DbrpSpec, ObservedBucket, ObservedDbrp
from ..models.ownership import is_marked
from ..models.tasks import ObservedTask, TaskSpec
from .http import InfluxHTTP, create_once

BUCKET_PAGE_SIZE = 100  # the largest the buckets API accepts
TASK_PAGE_SIZE = 500  # the largest the tasks API accepts


def shard_group_seconds(retention_seconds: int) -> int:
    """InfluxDB's own normalised shard-group duration, sent explicitly so PATCH never conflicts."""
    if retention_seconds == 0 or retention_seconds >= 180 * 86400:
        return 7 * 86400
    if retention_seconds >= 2 * 86400:
        return 86400
    return 3600


def _retention_seconds(bucket: dict[str, Any]) -> int:
    for rule in bucket.get("retentionRules") or []:
        if rule.get("type", "expire") == "expire":
            return int(rule.get("everySeconds", 0))
    return 0


def _shard_group_of(bucket: dict[str, Any]) -> int | None:
    for rule in bucket.get("retentionRules") or []:
        if rule.get("type", "expire") == "expire" and rule.get("shardGroupDurationSeconds"):
            return int(rule["shardGroupDurationSeconds"])
    return None


def _observed_bucket(item: dict[str, Any]) -> ObservedBucket:
    return ObservedBucket(
        id=item["id"],
        name=item["name"],
        retention_seconds=_retention_seconds(item),
        description=item.get("description"),
        system=item.get("type") == "system",
        shard_group_seconds=_shard_group_of(item),
    )


def _retention_rules(spec: BucketSpec) -> list[dict[str, object]]:
    shard_group = spec.shard_group_seconds or shard_group_seconds(spec.retention_seconds)
    return [
        {
            "type": "expire",
            "everySeconds": spec.retention_seconds,
            "shardGroupDurationSeconds": shard_group,
        }
    ]


def already_exists(error: InfluxDBError) -> bool:
    """InfluxDB's answer to creating a second bucket or DBRP mapping of the same identity."""
    return error.status == 422


def delete_done(send: Callable[[], object]) -> None:
    """Delete; a 404 means the object is gone already, which is what a delete wants."""
    try:
        send()
    except InfluxDBError as error:
        if error.status != 404:
            raise


def org_not_found(org: str) -> ConfigError:
    """The one-line error for an organization InfluxDB does not know (or hides from the token)."""
    return ConfigError(
        f"INFLUXDB_ORG: organization {org!r} not found (or not visible to the token)"
    )


class InfluxDBStore:
    """One organization's objects. List calls take the org by name, so the org ID comes free
    with the first bucket listing and a no-op run sends list calls only."""

    def __init__(self, http: InfluxHTTP, org: str) -> None:
        self.http = http
        self.org = org
        self._org_id: str | None = None
        self._user_id: str | None = None
        self._org_lock = threading.Lock()

    def _list(self, path: str, params: dict[str, str | int], key: str) -> list[dict[str, Any]]:
        try:
            return list(self.http.paginate(path, {"org": self.org, **params}, key))
        except InfluxDBError as error:
            if error.status == 404 and "org" in error.server_message.lower():
                raise org_not_found(self.org) from None
            raise

    @property
    def org_id(self) -> str:
        """The organization's ID, from the first bucket listing or one org look-up."""
        with self._org_lock:
            if self._org_id is None:
                body = self._list("/api/v2/orgs", {}, "orgs")
                if not body:
                    raise org_not_found(self.org)
                self._org_id = str(body[0]["id"])
            return self._org_id

    def current_user_id(self) -> str:
        """The ID of the user the token belongs to (``GET /api/v2/me``), cached. InfluxDB
        answers only a token that may read that user (tokenmaker's taskmaker token may)."""
        with self._org_lock:
            if self._user_id is None:
                try:
                    self._user_id = str(self.http.get_json("/api/v2/me")["id"])
                except InfluxDBAuthError as error:
                    raise InfluxDBAuthError(
                        error.method,
                        error.path,
                        error.status,
                        f"{error.server_message}; the token cannot read its own user, which "
                        "taskmaker needs to tell its tasks from others: re-issue it with "
                        "tokenmaker --rotate --role taskmaker",
                    ) from None
            return self._user_id

    # Buckets

    def list_buckets(self) -> list[ObservedBucket]:
        """Every bucket of the org, system buckets included, following ``links.next``."""
        items = self._list("/api/v2/buckets", {"limit": BUCKET_PAGE_SIZE}, "buckets")
        if items and self._org_id is None:
            self._org_id = str(items[0]["orgID"])
        return [_observed_bucket(item) for item in items]

    def find_bucket(self, name: str) -> ObservedBucket | None:
        """The org's bucket called ``name``, or None (the server answers 404 for none)."""
        try:
            items = self._list("/api/v2/buckets", {"name": name}, "buckets")
        except InfluxDBError as error:
            if error.status == 404:
                return None
            raise
        for item in items:
            if item.get("name") == name:
                return _observed_bucket(item)
        return None

    def _own_bucket_id(self, name: str) -> str | None:
        bucket = self.find_bucket(name)
        return bucket.id if bucket is not None and is_marked(bucket.description) else None

    def create_bucket(self, spec: BucketSpec) -> str:
        """Create the bucket (idempotent: an existing bucket of the toolkit's with this name
        counts as created; one of anybody else's is an error)."""
        body = {
            "orgID": self.org_id,
            "name": spec.name,
            "description": spec.description,
            "retentionRules": _retention_rules(spec),
        }

        def send() -> str:
            try:
                return str(self.http.request("POST", "/api/v2/buckets", json=body).json()["id"])
            except InfluxDBError as error:
                if already_exists(error):
                    found = self._own_bucket_id(spec.name)
                    if found is not None:
                        return found
                raise

        return create_once(
            send, lambda: self._own_bucket_id(spec.name), what=f"create bucket {spec.name}"
        )

    def update_bucket(self, bucket_id: str, spec: BucketSpec) -> None:
        """Set the bucket's description and retention in place (ID and data stay)."""
        body = {
            "description": spec.description,
            "retentionRules": _retention_rules(spec),
        }
        self.http.request("PATCH", f"/api/v2/buckets/{bucket_id}", json=body)

    def delete_bucket(self, bucket_id: str) -> None:
        """Delete the bucket and its data (idempotent: 404 counts as done)."""
        delete_done(lambda: self.http.request("DELETE", f"/api/v2/buckets/{bucket_id}"))

    # DBRP mappings

    def list_dbrps(self) -> list[ObservedDbrp]:
        """Physical mappings only: the server also lists a virtual one per bucket."""
        return [
            ObservedDbrp(
                id=item["id"],
                bucket_id=item["bucketID"],
                database=item["database"],
                retention_policy=item["retention_policy"],
                default=bool(item.get("default")),
            )
            for item in self._list("/api/v2/dbrps", {}, "content")
            if not item.get("virtual")
        ]

    def _find_dbrp(self, spec: DbrpSpec) -> str | None:
        for mapping in self.list_dbrps():
            if (mapping.bucket_id, mapping.database, mapping.retention_policy) == (
                spec.bucket_id,
                spec.database,
                spec.retention_policy,
            ):
                return mapping.id
        return None

    def create_dbrp(self, spec: DbrpSpec, *, default: bool = True) -> str:
        """Create the mapping (idempotent: the same mapping existing already counts)."""
        body = {
            "orgID": self.org_id,
            "bucketID": spec.bucket_id,
            "database": spec.database,
            "retention_policy": spec.retention_policy,
            "default": default,
        }

        def send() -> str:
            try:
                return str(self.http.request("POST", "/api/v2/dbrps", json=body).json()["id"])
            except InfluxDBError as error:
                if already_exists(error):
                    found = self._find_dbrp(spec)
                    if found is not None:
                        return found
                raise

        label = f"{spec.database}/{spec.retention_policy}"
        return create_once(send, lambda: self._find_dbrp(spec), what=f"create dbrp {label}")

    def update_dbrp(self, dbrp_id: str, spec: DbrpSpec) -> None:
        """Set the mapping's retention policy and make it the default."""
        body = {"retention_policy": spec.retention_policy, "default": True}
        params = {"orgID": self.org_id}
        self.http.request("PATCH", f"/api/v2/dbrps/{dbrp_id}", params=params, json=body)

    def delete_dbrp(self, dbrp_id: str) -> None:
        """Delete the mapping (idempotent)."""
        params = {"orgID": self.org_id}
        delete_done(lambda: self.http.request("DELETE", f"/api/v2/dbrps/{dbrp_id}", params=params))

    # Tasks

    def list_tasks(self, name: str | None = None) -> list[ObservedTask]:
        """Every task of the org (named ``name``, if given). Without ``orgID`` the server lists
        only the caller's tasks."""
        params: dict[str, str | int] = {"orgID": self.org_id, "limit": TASK_PAGE_SIZE}
        if name is not None:
            params["name"] = name
        return [
            ObservedTask(
                id=item["id"],
                name=item.get("name", ""),
                flux=item.get("flux", ""),
                every=item.get("every"),
                offset=item.get("offset"),
                status=item.get("status", "active"),
                description=item.get("description"),
                owner_id=str(item.get("ownerID") or ""),
                last_run_status=item.get("lastRunStatus"),
                last_run_error=item.get("lastRunError"),
                latest_completed=item.get("latestCompleted"),
            )
            for item in self.http.paginate("/api/v2/tasks", params, "tasks")
        ]

    def _find_task(self, spec: TaskSpec) -> str | None:
        owner = self.current_user_id()
        for task in self.list_tasks(spec.name):
            if task.identity == spec.identity and task.owned_by(owner):
                return task.id
        return None

    def create_task(self, spec: TaskSpec) -> str:
        """Create the task once: task names are not unique, so after a lost answer the task is
        looked up by its identity and owner before it is created again."""
        body = {
            "orgID": self.org_id,
            "flux": spec.flux,
            "description": spec.description,
            "status": "active",
        }

        def send() -> str:
            return str(self.http.request("POST", "/api/v2/tasks", json=body).json()["id"])

        return create_once(send, lambda: self._find_task(spec), what=f"create task {spec.name}")

    def update_task(self, task_id: str, spec: TaskSpec) -> None:
        """PATCH keeps the task's ID and run history; the server re-reads options from flux."""
        body = {"flux": spec.flux, "description": spec.description, "status": "active"}
        self.http.request("PATCH", f"/api/v2/tasks/{task_id}", json=body)

    def delete_task(self, task_id: str) -> None:
        """Delete the task (idempotent: 404 counts as done)."""
        delete_done(lambda: self.http.request("DELETE", f"/api/v2/tasks/{task_id}"))

"""Lease records in InfluxDB: labels, whose names the server keeps unique in an organization
(a second ``POST /api/v2/labels`` with the same name answers 422), so creating one is an atomic
test-and-set. The label's properties say who holds it, since when and until when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import InfluxDBError
from .http import InfluxHTTP, create_once
from .influxdb import InfluxDBStore, already_exists, delete_done


@dataclass(frozen=True)
class LeaseRecord:
    """A label as a lease: its ID, name and properties (all strings)."""

    id: str
    name: str
    properties: dict[str, str]


class LeaseTakenError(Exception):
    """A label of that name exists already."""


def _record(item: Mapping[str, Any]) -> LeaseRecord:
    properties = {str(k): str(v) for k, v in (item.get("properties") or {}).items()}
    return LeaseRecord(str(item["id"]), str(item["name"]), properties)


class LeaseStore:
    """Create, find, renew and delete lease labels of one organization."""

    def __init__(self, store: InfluxDBStore) -> None:
        self.store = store
        self.http: InfluxHTTP = store.http

    def find(self, name: str) -> LeaseRecord | None:
        """The label called ``name``, or None."""
        body = self.http.get_json("/api/v2/labels", {"orgID": self.store.org_id})
        for item in body.get("labels") or []:
            if item.get("name") == name:
                return _record(item)
        return None

    def create(self, name: str, properties: Mapping[str, str]) -> LeaseRecord:
        """Create the label, or raise :class:`LeaseTakenError` if one of that name exists. A
        label found after a lost answer is ours only if it carries our ``holder``."""
        body = {"orgID": self.store.org_id, "name": name, "properties": dict(properties)}

        def send() -> LeaseRecord:
            try:
                answer = self.http.request("POST", "/api/v2/labels", json=body).json()
            except InfluxDBError as error:
                if already_exists(error):
                    raise LeaseTakenError(name) from None
                raise
            return _record(answer["label"])

        def find() -> LeaseRecord | None:
            found = self.find(name)
            if found is None:
                return None
            if found.properties.get("holder") != properties.get("holder"):
                raise LeaseTakenError(name)
            return found

        return create_once(send, find, what=f"take lease {name}")

    def renew(self, lease_id: str, properties: Mapping[str, str]) -> bool:
        """Update the lease's properties; False if it is gone (taken over as expired)."""
        try:
            self.http.request(
                "PATCH", f"/api/v2/labels/{lease_id}", json={"properties": dict(properties)}
            )
        except InfluxDBError as error:
            if error.status == 404:
                return False
            raise
        return True

    def delete(self, lease_id: str) -> None:
        """Delete the lease label (idempotent)."""
        delete_done(lambda: self.http.request("DELETE", f"/api/v2/labels/{lease_id}"))

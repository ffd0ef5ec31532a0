"""InfluxDB v2 identities: users, org and bucket owners/members, authorizations (tokens).

Requests go through :class:`InfluxHTTP`, the one retry and error policy. Knows the API's shapes
and quirks (below); knows nothing about roles or applications.

Server facts (v2.7.12) this adapter relies on:

* ``GET /api/v2/users?name=X`` answers 404 (not an empty list) when X does not exist.
* A user has at most one mapping per org or bucket (the key is resource ID + user ID,
  ``tenant/storage_urm.go``): adding an owner who is already an owner *or a member* answers 500
  (``NonUniqueMappingError``), which the retry policy would retry. Callers check first, and
  remove a member mapping before adding the owner one. ``DELETE .../members/{userID}`` and
  ``.../owners/{userID}`` both delete whichever mapping the user has.
* ``GET /api/v2/authorizations?orgID=`` has no pagination, and in 2.7.12 returns every token
  value; the value is dropped here and never leaves this module, except from the create call.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import InfluxDBError
from ..models.tokens import CreatedToken, ObservedAuthorization, ObservedUser, Permission
from .http import InfluxHTTP

ORG_PAGE_SIZE = 100  # the largest the orgs API accepts

OWNER = "owners"
MEMBER = "members"


def _user(item: dict[str, Any]) -> ObservedUser:
    return ObservedUser(
        id=str(item["id"]),
        name=str(item["name"]),
        active=item.get("status", "active") == "active",
    )


def _authorization(item: dict[str, Any]) -> ObservedAuthorization:
    return ObservedAuthorization(
        id=str(item["id"]),
        description=item.get("description"),
        user_id=str(item.get("userID") or ""),
        user_name=item.get("user"),
        active=item.get("status", "active") == "active",
        permissions=frozenset(Permission.from_json(p) for p in item.get("permissions") or []),
        created_at=str(item.get("createdAt") or ""),
    )


class AuthorizationStore:
    """Users, user-resource mappings and authorizations; instance-wide objects, so every call
    names the org or bucket it is about."""

    def __init__(self, http: InfluxHTTP) -> None:
        self.http = http

    # Users (instance-wide)

    def find_user(self, name: str) -> ObservedUser | None:
        try:
            body = self.http.get_json("/api/v2/users", {"name": name})
        except InfluxDBError as error:
            if error.status == 404:
                return None
            raise
        for item in body.get("users") or []:
            if item.get("name") == name:
                return _user(item)
        return None

    def create_user(self, name: str) -> ObservedUser:
        """A user without a password: it cannot sign in, only own tokens and tasks."""
        body = {"name": name, "status": "active"}
        return _user(self.http.request("POST", "/api/v2/users", json=body).json())

    def user_orgs(self, user_id: str) -> list[tuple[str, str]]:
        """(id, name) of every org where the user is an owner or member."""
        params: dict[str, str | int] = {"userID": user_id, "limit": ORG_PAGE_SIZE}
        return [
            (str(item["id"]), str(item["name"]))
            for item in self.http.paginate("/api/v2/orgs", params, "orgs")
        ]

    # User-resource mappings: owners and members of orgs and buckets

    def _mapping_path(self, resource: str, resource_id: str, role: str) -> str:
        if resource not in ("orgs", "buckets") or role not in (OWNER, MEMBER):
            raise ValueError(f"unsupported mapping {resource}/{role}")
        return f"/api/v2/{resource}/{resource_id}/{role}"

    def mapped_user_ids(self, resource: str, resource_id: str, role: str) -> set[str]:
        body = self.http.get_json(self._mapping_path(resource, resource_id, role))
        return {str(item["id"]) for item in body.get("users") or []}

    def add_mapping(self, resource: str, resource_id: str, role: str, user_id: str) -> None:
        path = self._mapping_path(resource, resource_id, role)
        self.http.request("POST", path, json={"id": user_id})

    def remove_mapping(self, resource: str, resource_id: str, role: str, user_id: str) -> None:
        path = self._mapping_path(resource, resource_id, role)
        self.http.request("DELETE", f"{path}/{user_id}")

    def org_owner_ids(self, org_id: str) -> set[str]:
        return self.mapped_user_ids("orgs", org_id, OWNER)

    def org_member_ids(self, org_id: str) -> set[str]:
        return self.mapped_user_ids("orgs", org_id, MEMBER)

    def add_org_owner(self, org_id: str, user_id: str) -> None:
        self.add_mapping("orgs", org_id, OWNER, user_id)

    def add_org_member(self, org_id: str, user_id: str) -> None:
        self.add_mapping("orgs", org_id, MEMBER, user_id)

    def remove_org_member(self, org_id: str, user_id: str) -> None:
        self.remove_mapping("orgs", org_id, MEMBER, user_id)

    # Authorizations (tokens)

    def list_authorizations(self, org_id: str) -> list[ObservedAuthorization]:
        body = self.http.get_json("/api/v2/authorizations", {"orgID": org_id})
        return [_authorization(item) for item in body.get("authorizations") or []]

    def create_authorization(
        self,
        org_id: str,
        description: str,
        permissions: list[Permission],
        user_id: str | None = None,
    ) -> CreatedToken:
        """A new active token; ``user_id`` None gives it to the calling token's user."""
        body: dict[str, object] = {
            "orgID": org_id,
            "description": description,
            "status": "active",
            "permissions": [permission.to_json() for permission in permissions],
        }
        if user_id is not None:
            body["userID"] = user_id
        item = self.http.request("POST", "/api/v2/authorizations", json=body).json()
        return CreatedToken(id=str(item["id"]), token=str(item["token"]))

    def delete_authorization(self, authorization_id: str) -> None:
        self.http.request("DELETE", f"/api/v2/authorizations/{authorization_id}")

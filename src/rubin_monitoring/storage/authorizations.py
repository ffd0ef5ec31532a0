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
  value; the value is dropped here and never leaves this module, except from the create call,
  or from the look-up after a create whose answer was lost.
* Nothing is unique about a token but its ID, so a create whose answer was lost is followed by
  a look-up for a token with the same description and user that was not there before: on 2.7.12
  its value is in the listing and it is adopted; where values are hashed (2.9+), it is deleted
  and created again, since a token whose value nobody has is of no use.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..exceptions import InfluxDBError
from ..models.tokens import CreatedToken, ObservedAuthorization, ObservedUser, Permission
from .http import InfluxHTTP, create_once
from .influxdb import delete_done

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
        """The user called ``name``, or None."""
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
        """A user without a password: it cannot sign in, only own tokens and tasks. User names
        are unique, so after a lost answer the user is looked up by name."""
        body = {"name": name, "status": "active"}

        def send() -> ObservedUser:
            return _user(self.http.request("POST", "/api/v2/users", json=body).json())

        return create_once(send, lambda: self.find_user(name), what=f"create user {name}")

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
        """IDs of the owners or members (``role``) of an org or bucket."""
        body = self.http.get_json(self._mapping_path(resource, resource_id, role))
        return {str(item["id"]) for item in body.get("users") or []}

    def add_mapping(self, resource: str, resource_id: str, role: str, user_id: str) -> None:
        """Make the user an owner or member (idempotent: a lost answer is followed by a look)."""
        path = self._mapping_path(resource, resource_id, role)

        def send() -> bool:
            self.http.request("POST", path, json={"id": user_id})
            return True

        def find() -> bool | None:
            return True if user_id in self.mapped_user_ids(resource, resource_id, role) else None

        create_once(send, find, what=f"add {role} {user_id} of {resource}/{resource_id}")

    def remove_mapping(self, resource: str, resource_id: str, role: str, user_id: str) -> None:
        """Remove the user's owner or member mapping (idempotent: 404 counts as done)."""
        path = self._mapping_path(resource, resource_id, role)
        delete_done(lambda: self.http.request("DELETE", f"{path}/{user_id}"))

    def org_owner_ids(self, org_id: str) -> set[str]:
        """IDs of the org's owners."""
        return self.mapped_user_ids("orgs", org_id, OWNER)

    def org_member_ids(self, org_id: str) -> set[str]:
        """IDs of the org's members."""
        return self.mapped_user_ids("orgs", org_id, MEMBER)

    def add_org_owner(self, org_id: str, user_id: str) -> None:
        """Make the user an owner of the org."""
        self.add_mapping("orgs", org_id, OWNER, user_id)

    def remove_org_member(self, org_id: str, user_id: str) -> None:
        """Remove the user's member mapping of the org."""
        self.remove_mapping("orgs", org_id, MEMBER, user_id)

    # Authorizations (tokens)

    def _authorization_items(self, org_id: str) -> list[dict[str, Any]]:
        body = self.http.get_json("/api/v2/authorizations", {"orgID": org_id})
        return list(body.get("authorizations") or [])

    def list_authorizations(self, org_id: str) -> list[ObservedAuthorization]:
        """Every token of the org, without values."""
        return [_authorization(item) for item in self._authorization_items(org_id)]

    def create_authorization(
        self,
        org_id: str,
        description: str,
        permissions: list[Permission],
        user_id: str,
        known_ids: Collection[str] = (),
    ) -> CreatedToken:
        """A new active token of ``user_id``, made once. ``known_ids``: the tokens that existed
        before this run, which a look-up after a lost answer must not take for the new one."""
        body: dict[str, object] = {
            "orgID": org_id,
            "description": description,
            "status": "active",
            "userID": user_id,
            "permissions": [permission.to_json() for permission in permissions],
        }

        def send() -> CreatedToken:
            item = self.http.request("POST", "/api/v2/authorizations", json=body).json()
            return CreatedToken(id=str(item["id"]), token=str(item["token"]))

        def find() -> CreatedToken | None:
            made = [
                item
                for item in self._authorization_items(org_id)
                if item.get("description") == description
                and str(item.get("userID") or "") == user_id
                and str(item["id"]) not in known_ids
            ]
            adopted = next((item for item in made if item.get("token")), None)
            for item in made:
                if item is not adopted:
                    self.delete_authorization(str(item["id"]))
            if adopted is None:
                return None
            return CreatedToken(id=str(adopted["id"]), token=str(adopted["token"]))

        return create_once(send, find, what=f"create token {description!r}")

    def delete_authorization(self, authorization_id: str) -> None:
        """Delete the token (idempotent: 404 counts as done)."""
        path = f"/api/v2/authorizations/{authorization_id}"
        delete_done(lambda: self.http.request("DELETE", path))

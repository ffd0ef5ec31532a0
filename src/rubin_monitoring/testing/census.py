"""Count what an organization holds, as an independent witness for tests and benches.

Plain HTTP with the operator token, and its own reading of the ownership marker: nothing here
uses the toolkit's storage or model code, so a bug there cannot hide itself. Each census counts
the toolkit's objects of one kind by identity (a bucket's name, a mapping's database, a task's
``bucket check``, a token's role) against the identities that should exist exactly once::

    census = task_census(org, {"argocd cpu", "argocd restarts"})
    assert census.exact, census.problems()
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from .flux import InfluxOrg

__all__ = [
    "LEASE_PREFIX",
    "Census",
    "bucket_census",
    "bucket_ids",
    "dbrp_census",
    "lease_labels",
    "list_authorizations",
    "list_buckets",
    "list_dbrps",
    "list_labels",
    "list_tasks",
    "marker_fields",
    "task_census",
    "token_census",
]

LEASE_PREFIX = "rubin-monitoring-lease-"
_MARKER = re.compile(
    r"\(managed-by=rubin-monitoring((?: [a-z][a-z0-9_]*=[^\s=()]+)*)\)$",
)


def marker_fields(description: str | None) -> dict[str, str] | None:
    """The fields of the ownership marker closing ``description``, or None if it has none."""
    match = _MARKER.search(description or "")
    if match is None:
        return None
    return dict(part.split("=", 1) for part in match[1].split())


@dataclass(frozen=True)
class Census:
    """The toolkit's objects of one kind, counted by identity, against ``expected``."""

    kind: str
    expected: frozenset[str]
    found: Counter[str]
    ids: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def objects(self) -> int:
        return sum(self.found.values())

    @property
    def duplicates(self) -> dict[str, int]:
        """Identities held more than once, with their count."""
        return {key: count for key, count in sorted(self.found.items()) if count > 1}

    @property
    def duplicate_count(self) -> int:
        """Objects beyond the first of their identity."""
        return sum(count - 1 for count in self.duplicates.values())

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - set(self.found))

    @property
    def unexpected(self) -> list[str]:
        return sorted(set(self.found) - self.expected)

    @property
    def exact(self) -> bool:
        return not (self.duplicates or self.missing or self.unexpected)

    def problems(self) -> str:
        """One line saying what is wrong (empty when exact)."""
        parts = []
        if self.missing:
            parts.append(f"missing {self.missing}")
        if self.duplicates:
            parts.append(f"duplicated {self.duplicates}")
        if self.unexpected:
            parts.append(f"unexpected {self.unexpected}")
        return f"{self.kind}: " + "; ".join(parts) if parts else ""


def _census(kind: str, expected: Iterable[str], items: Iterable[tuple[str, str]]) -> Census:
    found: Counter[str] = Counter()
    ids: dict[str, list[str]] = {}
    for identity, object_id in items:
        found[identity] += 1
        ids.setdefault(identity, []).append(object_id)
    return Census(kind, frozenset(expected), found, {k: tuple(sorted(v)) for k, v in ids.items()})


@contextmanager
def _client(org: InfluxOrg) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {org.token}"}, timeout=30
    ) as client:
        yield client


def _get(client: httpx.Client, path: str, params: dict[str, str | int] | None = None) -> Any:
    response = client.get(path, params=params)
    if response.is_error:
        raise AssertionError(f"InfluxDB answered {response.status_code} to GET {path}")
    return response.json()


def _paged(
    client: httpx.Client, path: str, params: dict[str, str | int], key: str
) -> list[dict[str, Any]]:
    body = _get(client, path, params)
    items: list[dict[str, Any]] = list(body.get(key) or [])
    seen: set[str] = set()
    while (link := (body.get("links") or {}).get("next")) and link not in seen:
        seen.add(link)
        body = _get(client, link)
        items.extend(body.get(key) or [])
    return items


def list_buckets(org: InfluxOrg) -> list[dict[str, Any]]:
    """Every user bucket of the org (system buckets left out)."""
    with _client(org) as client:
        items = _paged(client, "/api/v2/buckets", {"orgID": org.id, "limit": 100}, "buckets")
    return [item for item in items if item.get("type") != "system"]


def list_dbrps(org: InfluxOrg) -> list[dict[str, Any]]:
    """Every physical DBRP mapping of the org (virtual ones left out)."""
    with _client(org) as client:
        body = _get(client, "/api/v2/dbrps", {"orgID": org.id})
    return [item for item in body.get("content") or [] if not item.get("virtual")]


def list_tasks(org: InfluxOrg) -> list[dict[str, Any]]:
    with _client(org) as client:
        return _paged(client, "/api/v2/tasks", {"orgID": org.id, "limit": 500}, "tasks")


def list_authorizations(org: InfluxOrg) -> list[dict[str, Any]]:
    with _client(org) as client:
        body = _get(client, "/api/v2/authorizations", {"orgID": org.id})
    return list(body.get("authorizations") or [])


def list_labels(org: InfluxOrg) -> list[dict[str, Any]]:
    with _client(org) as client:
        body = _get(client, "/api/v2/labels", {"orgID": org.id})
    return list(body.get("labels") or [])


def lease_labels(org: InfluxOrg) -> list[dict[str, Any]]:
    """Labels named like a lease (whoever made them)."""
    return [label for label in list_labels(org) if label["name"].startswith(LEASE_PREFIX)]


def bucket_ids(org: InfluxOrg) -> dict[str, str]:
    """Name -> ID of every user bucket."""
    return {item["name"]: item["id"] for item in list_buckets(org)}


def bucket_census(org: InfluxOrg, expected: Iterable[str]) -> Census:
    """The toolkit's buckets (marked) by name."""
    items = [
        (item["name"], item["id"])
        for item in list_buckets(org)
        if marker_fields(item.get("description")) is not None
    ]
    return _census("bucket", expected, items)


def dbrp_census(org: InfluxOrg, expected: Iterable[str]) -> Census:
    """Mappings by database. A mapping counts as its database only when it is the default one
    and points at the live bucket of that name; any other is named ``database (why)``, which is
    never expected."""
    live = bucket_ids(org)
    items = []
    for item in list_dbrps(org):
        database = item["database"]
        if live.get(database) != item["bucketID"]:
            database += " (bucket gone)"
        elif not item.get("default"):
            database += " (not default)"
        items.append((database, item["id"]))
    return _census("dbrp", expected, items)


def task_census(org: InfluxOrg, expected: Iterable[str]) -> Census:
    """The toolkit's tasks by ``bucket check``, from their marker (``app=`` read as
    ``bucket=``, as release 0.1.0 wrote it)."""
    items = []
    for task in list_tasks(org):
        fields = marker_fields(task.get("description"))
        if fields is None:
            continue
        bucket = fields.get("bucket", fields.get("app", "?"))
        items.append((f"{bucket} {fields.get('check', '?')}", task["id"]))
    return _census("task", expected, items)


def token_census(org: InfluxOrg, expected: Iterable[str]) -> Census:
    """The toolkit's tokens by role (``token=`` field of their marker)."""
    items = []
    for auth in list_authorizations(org):
        fields = marker_fields(auth.get("description"))
        if fields is not None and "token" in fields:
            items.append((fields["token"], auth["id"]))
    return _census("token", expected, items)


def stack_census(org: InfluxOrg, expected: Iterable[str]) -> Census:
    """The organization's template stacks by name, without their IDs: a stack is made once and
    kept (FORCE re-applies through it), so it takes no part in what a run replaced."""
    with _client(org) as client:
        body = _get(client, "/api/v2/stacks", {"orgID": org.id})
    names = Counter(str(item["name"]) for item in body.get("stacks") or [])
    return Census("stack", frozenset(expected), names)

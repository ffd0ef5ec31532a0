"""InfluxDB templates: the dashboard files under ``dashboards/``, and the one stack they are
applied with (``/api/v2/stacks``, ``/api/v2/templates/apply``, ``/api/v2/templates/export``).

A stack remembers which dashboards and variables a template made, so applying the template again
with the stack's ID updates them in place; applying without it would make a second set. The
stack is found again by its name, and created once (:func:`create_once`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from ..exceptions import ConfigError, InfluxDBError
from ..models.dashboards import (
    API_VERSION,
    KINDS,
    DiffEntry,
    ObservedStack,
    StackResource,
    TemplateObject,
)
from .http import InfluxHTTP, create_once

# The diff's keys for the kinds the toolkit applies.
_DIFF_KINDS = {"dashboards": "Dashboard", "variables": "Variable"}


def packaged_dashboards() -> Path:
    """The dashboards shipped with the toolkit (``dashboards/`` of the repository)."""
    return Path(str(files("rubin_monitoring") / "dashboards"))


def _object(path: Path, index: int, document: object) -> TemplateObject:
    where = f"{path.name}, document {index + 1}"
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: not a template object (a mapping)")
    kind = document.get("kind")
    if document.get("apiVersion") != API_VERSION or kind not in KINDS:
        raise ConfigError(
            f"{where}: only apiVersion {API_VERSION} kinds {', '.join(KINDS)} are applied "
            f"(found {document.get('apiVersion')!r} {kind!r})"
        )
    meta_name = (document.get("metadata") or {}).get("name")
    spec = document.get("spec")
    if not isinstance(meta_name, str) or not meta_name or not isinstance(spec, dict):
        raise ConfigError(f"{where}: needs metadata.name and a spec")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: needs spec.name")
    return TemplateObject(kind, meta_name, name, path.name, document)


def read_templates(directory: Path) -> list[TemplateObject]:
    """Every object of every ``*.yml``/``*.yaml`` file in ``directory`` (sorted by file name).

    Raises :class:`ConfigError` (exit 2) for unreadable YAML, another kind than Dashboard and
    Variable, or a ``metadata.name`` or variable name used twice."""
    if not directory.is_dir():
        raise ConfigError(f"DASHBOARDS_DIR (--dashboards-dir): {directory} is not a directory")
    paths = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    objects: list[TemplateObject] = []
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path.name}: {error}") from None
        objects.extend(
            _object(path, index, document)
            for index, document in enumerate(documents)
            if document is not None
        )
    seen: dict[tuple[str, str], str] = {}
    for obj in objects:
        for key in ((obj.kind, obj.meta_name), (obj.kind + " name", obj.name)):
            if key[0] == "Dashboard name":
                continue  # Dashboards may share a display name; variables may not.
            if key in seen:
                raise ConfigError(
                    f"{obj.source}: {key[0]} {key[1]!r} is also defined in {seen[key]}"
                )
            seen[key] = obj.source
    return objects


def _stack(body: dict[str, Any]) -> ObservedStack:
    resources = tuple(
        StackResource(str(item["kind"]), str(item["templateMetaName"]), str(item["resourceID"]))
        for item in body.get("resources") or []
    )
    return ObservedStack(str(body["id"]), str(body.get("name", "")), resources)


def diff_entries(response: dict[str, Any]) -> list[DiffEntry]:
    """The dashboards and variables of an apply's ``diff``, with their state (``new``,
    ``exists``, ``remove``)."""
    entries = []
    for key, kind in _DIFF_KINDS.items():
        for item in (response.get("diff") or {}).get(key) or []:
            status = str(item.get("stateStatus", ""))
            meta_name = str(item.get("templateMetaName", ""))
            # A removed object's "new" side has only its metadata.name; "old" has its name.
            sides = (item.get("old"), item.get("new"))
            if status != "remove":
                sides = sides[::-1]
            name = next((str(s["name"]) for s in sides if s and s.get("name")), meta_name)
            entries.append(DiffEntry(kind, meta_name, name, status, str(item.get("id", ""))))
    return entries


class TemplateError(InfluxDBError):
    """InfluxDB accepted the request but refused (some of) the template."""


class TemplateStore:
    """The organization's template stacks, and applying templates through one of them."""

    def __init__(self, http: InfluxHTTP, org_id: Callable[[], str]) -> None:
        self.http = http
        self._org_id = org_id

    @property
    def org_id(self) -> str:
        """The organization's ID (looked up once)."""
        return self._org_id()

    def find_stacks(self, name: str) -> list[ObservedStack]:
        """The stacks named ``name``, oldest first."""
        body = self.http.get_json("/api/v2/stacks", {"orgID": self.org_id, "name": name})
        stacks = [item for item in body.get("stacks") or [] if item.get("name") == name]
        stacks.sort(key=lambda item: (str(item.get("createdAt", "")), str(item["id"])))
        return [_stack(item) for item in stacks]

    def find_stack(self, name: str) -> ObservedStack | None:
        """The (oldest) stack named ``name``, if any."""
        stacks = self.find_stacks(name)
        return stacks[0] if stacks else None

    def create_stack(self, name: str, description: str) -> ObservedStack:
        """Create the stack ``name`` once: after a lost answer it is looked up before it is
        created again."""
        body = {"orgID": self.org_id, "name": name, "description": description}

        def send() -> ObservedStack:
            response = self.http.request("POST", "/api/v2/stacks", json=body, repeatable=False)
            return _stack(response.json())

        return create_once(send, lambda: self.find_stack(name), what=f"create stack {name}")

    def export_stack(self, stack_id: str) -> list[dict[str, Any]]:
        """The stack's resources as InfluxDB has them now, as template objects."""
        response = self.http.request(
            "POST", "/api/v2/templates/export", json={"stackID": stack_id}, repeatable=True
        )
        documents = response.json()
        return [doc for doc in documents if isinstance(doc, dict)] if documents else []

    def export_resource(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """One object (``kind`` ``Dashboard`` or ``Variable``) as a template object, without the
        stack's ``metadata.name`` (the export makes one up); None if the export has none."""
        response = self.http.request(
            "POST",
            "/api/v2/templates/export",
            json={"resources": [{"kind": kind, "id": resource_id}]},
            repeatable=True,
        )
        for document in response.json() or []:
            if isinstance(document, dict) and document.get("kind") == kind:
                return document
        return None

    def existing_dashboards(self, ids: Iterable[str]) -> set[str]:
        """Which of the dashboard IDs ``ids`` the organization has."""
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        query = urlencode([("orgID", self.org_id), *(("id", each) for each in wanted)])
        body = self.http.get_json(f"/api/v2/dashboards?{query}")
        return {str(item["id"]) for item in body.get("dashboards") or []} & set(wanted)

    def list_variables(self) -> dict[str, str]:
        """The organization's variables: name -> ID."""
        body = self.http.get_json("/api/v2/variables", {"orgID": self.org_id})
        return {str(item["name"]): str(item["id"]) for item in body.get("variables") or []}

    def apply(
        self,
        documents: Iterable[dict[str, Any]],
        *,
        stack_id: str | None,
        dry_run: bool,
        skip: Iterable[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Apply ``documents`` through the stack ``stack_id`` (or, dry-run only, none), leaving
        out the ``(kind, metadata.name)`` objects in ``skip``; the server's answer (with
        ``diff``). Re-applying the same documents to the same stack changes nothing, so the
        request may be repeated."""
        if stack_id is None and not dry_run:
            raise ValueError("a template is applied only through a stack")
        body: dict[str, Any] = {
            "orgID": self.org_id,
            "dryRun": dry_run,
            "template": {"contentType": "json", "contents": list(documents)},
            "actions": [
                {"action": "skipResource", "properties": {"kind": kind, "resourceTemplateName": n}}
                for kind, n in skip
            ],
        }
        if stack_id is not None:
            body["stackID"] = stack_id
        response = self.http.request(
            "POST", "/api/v2/templates/apply", json=body, repeatable=True
        ).json()
        errors = response.get("errors") or []
        if errors:
            raise TemplateError(
                "POST", "/api/v2/templates/apply", 422, "; ".join(str(e) for e in errors)
            )
        return dict(response)

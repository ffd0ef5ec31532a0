"""Read the Phalanx layout: defaults in environments/values.yaml, overrides per environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import InventoryError
from ..models.inventory import Environment, Inventory, InventoryProblem, bucket_name

ENVIRONMENTS_DIR = "environments"
DEFAULTS_FILE = "values.yaml"
_ENV_FILE = re.compile(r"^values-(?P<env>.+)\.yaml$")
_BUCKET_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_BUCKET_NAME = 255


def _load_yaml(path: Path, root: Path) -> dict[str, Any]:
    shown = str(path.relative_to(root))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise InventoryError(f"{shown}:{where}: invalid YAML: {problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        raise InventoryError(f"{shown}: cannot read: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"{shown}: expected a mapping at the top level")
    return data


def _applications(data: dict[str, Any], shown: str) -> dict[str, bool]:
    apps = data.get("applications")
    if apps is None:
        return {}
    if not isinstance(apps, dict):
        raise InventoryError(f"{shown}: field 'applications' must be a mapping of app: true/false")
    result: dict[str, bool] = {}
    for app, enabled in apps.items():
        if not isinstance(enabled, bool):
            raise InventoryError(
                f"{shown}: applications.{app}: expected true or false, got {enabled!r}"
            )
        result[str(app)] = enabled
    return result


def bucket_name_problem(application: str) -> str | None:
    """Why InfluxDB (or the toolkit's reserved names) would refuse this app's bucket."""
    name = bucket_name(application)
    if not name or len(name) > MAX_BUCKET_NAME:
        return f"bucket name {name!r} must be 1 to {MAX_BUCKET_NAME} characters"
    if not _BUCKET_CHARS.match(name):
        return f"bucket name {name!r} may only contain letters, digits, '_', '-' and '.'"
    if name.startswith("_") or name.endswith("_"):
        return (
            f"bucket name {name!r} starts or ends with '_', "
            "which is reserved for InfluxDB's and the toolkit's internal buckets"
        )
    return None


def read_inventory(root: Path) -> Inventory:
    env_dir = root / ENVIRONMENTS_DIR
    defaults_path = env_dir / DEFAULTS_FILE
    if not defaults_path.is_file():
        raise InventoryError(
            f"{ENVIRONMENTS_DIR}/{DEFAULTS_FILE}: not found; not a Phalanx-style repository"
        )
    defaults = _applications(_load_yaml(defaults_path, root), f"{ENVIRONMENTS_DIR}/{DEFAULTS_FILE}")
    environments: list[Environment] = []
    problems: list[InventoryProblem] = []
    for path in sorted(env_dir.iterdir()):
        match = _ENV_FILE.match(path.name)
        if not match or not path.is_file():
            continue
        shown = f"{ENVIRONMENTS_DIR}/{path.name}"
        data = _load_yaml(path, root)
        merged = {**defaults, **_applications(data, shown)}
        enabled = tuple(sorted(app for app, on in merged.items() if on))
        name = data.get("name", match["env"])
        fqdn = data.get("fqdn")
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{shown}: field 'name' must be a non-empty string")
        if fqdn is not None and not isinstance(fqdn, str):
            raise InventoryError(f"{shown}: field 'fqdn' must be a string")
        environments.append(Environment(name=name, fqdn=fqdn, file=shown, applications=enabled))
        known = {problem.application for problem in problems}
        for app in enabled:
            reason = bucket_name_problem(app)
            if reason and app not in known:
                problems.append(InventoryProblem(file=shown, application=app, reason=reason))
    if not environments:
        raise InventoryError(f"{ENVIRONMENTS_DIR}/: no values-<environment>.yaml files found")
    return Inventory(environments=tuple(environments), problems=tuple(problems))

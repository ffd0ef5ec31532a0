"""Read the Phalanx layout: defaults in environments/values.yaml, overrides per environment.

Every problem is an :class:`InventoryError` of one line naming the file (relative to the
repository) and the field. A value from the files is never quoted, only its YAML type ("got a
string"); an application name is shown in short. ``environments/`` and every file read from it
must resolve (symbolic links followed) inside the repository. A file larger than
``max_file_bytes`` is refused before it is parsed.
"""

from __future__ import annotations

import datetime
import os
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
DEFAULT_MAX_FILE_BYTES = 2**20
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (str, "a string"),
    (int, "an integer"),
    (float, "a number"),
    (list, "a list"),
    (dict, "a mapping"),
    (datetime.datetime, "a timestamp"),
    (datetime.date, "a date"),
    (bytes, "binary data"),
    (set, "a set"),
)


def yaml_type(value: object) -> str:
    """The YAML type of a value in words, to say what was found without quoting it."""
    if value is None:
        return "null"
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), "another type")


def shown_name(name: str, limit: int = 40) -> str:
    """A name from a file, made safe for a one-line message: as it is if plain, else quoted."""
    if _PLAIN_NAME.match(name):
        return name
    quoted = repr(name)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"


def _inside(path: Path, root: Path, shown: str, kind: str) -> Path:
    """``path`` with links resolved, refused if that is outside ``root`` (itself resolved)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise InventoryError(f"{shown}: resolves to a {kind} outside the repository; refused")
    return resolved


def _read_bounded(path: Path, shown: str, max_bytes: int) -> str:
    """The file's text, refused without reading it all if it is larger than ``max_bytes``."""

    def too_large(size: int) -> InventoryError:
        return InventoryError(
            f"{shown}: {size} bytes, more than the limit of {max_bytes} bytes; refused"
        )

    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            raise too_large(size)
        content = file.read(max_bytes + 1)  # it may have grown since
    if len(content) > max_bytes:
        raise too_large(len(content))
    return content.decode("utf-8")


def _load_yaml(path: Path, shown: str, max_bytes: int) -> dict[str, Any]:
    try:
        data = yaml.safe_load(_read_bounded(path, shown, max_bytes))
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
                f"{shown}: applications.{shown_name(str(app))}: "
                f"expected true or false, got {yaml_type(enabled)}"
            )
        result[str(app)] = enabled
    return result


def bucket_name_problem(application: str) -> str | None:
    """Why InfluxDB (or the toolkit's reserved names) would refuse this app's bucket."""
    name = bucket_name(application)
    if not name or len(name) > MAX_BUCKET_NAME:
        return f"bucket name {shown_name(name)} must be 1 to {MAX_BUCKET_NAME} characters"
    if not _BUCKET_CHARS.match(name):
        return f"bucket name {shown_name(name)} may only contain letters, digits, '_', '-' and '.'"
    if name.startswith("_") or name.endswith("_"):
        return (
            f"bucket name {name!r} starts or ends with '_', "
            "which is reserved for InfluxDB's and the toolkit's internal buckets"
        )
    return None


def read_inventory(root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Inventory:
    """The inventory of the repository checked out at ``root``.

    Each values file may hold at most ``max_file_bytes`` bytes.
    """
    root = root.resolve()
    env_dir = _inside(root / ENVIRONMENTS_DIR, root, ENVIRONMENTS_DIR, "directory")
    defaults_shown = f"{ENVIRONMENTS_DIR}/{DEFAULTS_FILE}"
    defaults_path = _inside(env_dir / DEFAULTS_FILE, root, defaults_shown, "file")
    if not defaults_path.is_file():
        raise InventoryError(f"{defaults_shown}: not found; not a Phalanx-style repository")
    defaults = _applications(
        _load_yaml(defaults_path, defaults_shown, max_file_bytes), defaults_shown
    )
    environments: list[Environment] = []
    problems: list[InventoryProblem] = []
    for path in sorted(env_dir.iterdir()):
        match = _ENV_FILE.match(path.name)
        if not match:
            continue
        shown = f"{ENVIRONMENTS_DIR}/{path.name}"
        path = _inside(path, root, shown, "file")
        if not path.is_file():
            continue
        data = _load_yaml(path, shown, max_file_bytes)
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

"""Read the Phalanx layout: defaults in environments/values.yaml, overrides per environment.

Every problem is an :class:`InventoryError` of one line naming the file (relative to the
repository) and the field. A value from the files is never quoted, only its YAML type ("got a
string"); an application name is shown in short. ``environments/`` and every file read from it
must resolve (symbolic links followed) inside the repository. A file larger than
``max_file_bytes`` is refused before it is parsed.

A duplicate key anywhere in a file is an error naming its line. Application names are the
keys of ``applications`` as written: a key YAML reads as something else than a string (``on``,
``yes``, ``~``, ``123``) is an error asking to quote it.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from ..exceptions import InventoryError
from ..models.inventory import Environment, Inventory, InventoryProblem, bucket_name
from ..models.names import hostname_problem, kubernetes_name_problem, one_line, quoted
from ..models.names import shown as shown_text
from ..yaml_files import YamlMapping, YamlProblem, load_mapping

ENVIRONMENTS_DIR = "environments"
DEFAULTS_FILE = "values.yaml"
_ENV_FILE = re.compile(r"^values-(?P<env>.+)\.yaml$")
_BUCKET_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_BUCKET_NAME = 255
DEFAULT_MAX_FILE_BYTES = 2**20
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
    return shown_text(name, limit)


def _inside(path: Path, root: Path, shown: str, kind: str) -> Path:
    """``path`` with links resolved, refused if that is outside ``root`` (itself resolved)."""
    try:
        resolved = path.resolve()
    except (RuntimeError, OSError):  # Python 3.13 raises OSError (ELOOP), 3.11 RuntimeError
        raise InventoryError(f"{shown}: cannot resolve: a loop of links") from None
    if not resolved.is_relative_to(root):
        raise InventoryError(f"{shown}: resolves to a {kind} outside the repository; refused")
    return resolved


def load_yaml(path: Path, shown: str, max_bytes: int) -> YamlMapping:
    """The YAML mapping in ``path`` (shown as ``shown`` in messages; at most ``max_bytes``),
    each mapping remembering its keys' lines; :class:`InventoryError` naming the file and line
    for invalid YAML or a duplicate key. An empty file is an empty mapping."""
    try:
        return load_mapping(path, shown, max_bytes)
    except YamlProblem as problem:
        raise InventoryError(problem.text) from None


def _applications(data: YamlMapping, shown: str) -> dict[str, bool]:
    apps = data.get("applications")
    if apps is None:
        return {}
    if not isinstance(apps, YamlMapping):
        raise InventoryError(
            f"{shown}: line {data.line('applications')}: "
            "field 'applications' must be a mapping of app: true/false"
        )
    result: dict[str, bool] = {}
    for app, enabled in apps.items():
        where = f"{shown}: line {apps.line(app)}: applications"
        if not isinstance(app, str):
            text = apps.key_texts.get(app, "")
            raise InventoryError(f"{where}: key {quoted(text)} is not a string (quote it)")
        if not isinstance(enabled, bool):
            raise InventoryError(
                f"{where}.{shown_name(app)}: expected true or false, got {yaml_type(enabled)}"
            )
        result[app] = enabled
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


def application_problem(application: str) -> str | None:
    """Why an application cannot be served: its name becomes a namespace (a Kubernetes name)
    and a bucket name."""
    problem = kubernetes_name_problem(application)
    if problem is not None:
        return f"the name {problem}"
    return bucket_name_problem(application)


def _environment(
    data: YamlMapping, file_env: str, shown: str, enabled: tuple[str, ...], seen: dict[str, str]
) -> tuple[Environment | None, list[InventoryProblem]]:
    """The environment a values file describes, and its problems: a bad name holds the
    environment back (None), a bad fqdn drops only the fqdn. Wrong types stop the run."""
    name = data.get("name", file_env)
    fqdn = data.get("fqdn")
    if not isinstance(name, str) or not name:
        raise InventoryError(f"{shown}: field 'name' must be a non-empty string")
    if fqdn is not None and not isinstance(fqdn, str):
        raise InventoryError(f"{shown}: field 'fqdn' must be a string")
    field = "field 'name'" if "name" in data else "the environment in the file name"
    problem = kubernetes_name_problem(name)
    if problem is None and name in seen:
        problem = f"is already the name of the environment of {seen[name]}"
    if problem is not None:
        reason = f"{field} {quoted(name)} {problem}; its applications are held as they are"
        return None, [InventoryProblem(shown, reason, environment=name, held=enabled)]
    seen[name] = shown
    problems = []
    if fqdn is not None:
        fqdn_problem = hostname_problem(fqdn)
        if fqdn_problem is not None:
            reason = f"field 'fqdn' {quoted(fqdn)} {fqdn_problem}; the site is not probed"
            problems.append(InventoryProblem(shown, reason, environment=name))
            fqdn = None
    return Environment(name=name, fqdn=fqdn, file=shown, applications=enabled), problems


def read_inventory(root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Inventory:
    """The inventory of the repository checked out at ``root``.

    Each values file may hold at most ``max_file_bytes`` bytes. Names are validated by the
    rules of what they become (:mod:`rubin_monitoring.models.names`): a bad one is a problem
    of the inventory, and the rest proceeds.
    """
    root = root.resolve()
    env_dir = _inside(root / ENVIRONMENTS_DIR, root, ENVIRONMENTS_DIR, "directory")
    defaults_shown = f"{ENVIRONMENTS_DIR}/{DEFAULTS_FILE}"
    defaults_path = _inside(env_dir / DEFAULTS_FILE, root, defaults_shown, "file")
    if not defaults_path.is_file():
        raise InventoryError(f"{defaults_shown}: not found; not a Phalanx-style repository")
    defaults = _applications(
        load_yaml(defaults_path, defaults_shown, max_file_bytes), defaults_shown
    )
    environments: list[Environment] = []
    problems: list[InventoryProblem] = []
    seen: dict[str, str] = {}
    found_files = False
    for path in sorted(env_dir.iterdir()):
        match = _ENV_FILE.match(path.name)
        if not match:
            continue
        shown = f"{ENVIRONMENTS_DIR}/{one_line(path.name)}"
        path = _inside(path, root, shown, "file")
        if not path.is_file():
            continue
        found_files = True
        data = load_yaml(path, shown, max_file_bytes)
        merged = {**defaults, **_applications(data, shown)}
        enabled = tuple(sorted(app for app, on in merged.items() if on))
        environment, env_problems = _environment(data, match["env"], shown, enabled, seen)
        problems.extend(env_problems)
        if environment is None:
            continue
        environments.append(environment)
        known = {problem.application for problem in problems}
        for app in enabled:
            reason = application_problem(app)
            if reason and app not in known:
                problems.append(
                    InventoryProblem(file=shown, reason=reason, application=app, held=(app,))
                )
    if not found_files:
        raise InventoryError(f"{ENVIRONMENTS_DIR}/: no values-<environment>.yaml files found")
    return Inventory(environments=tuple(environments), problems=tuple(problems))

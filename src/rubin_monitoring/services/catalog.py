"""Read the scrape catalog: the one shipped with the package (``catalog/scrape.yaml``) and,
optionally, a user's file (setting ``SCRAPE_CATALOG``) that adds entries or replaces shipped
ones by (application, component), or removes one with ``enabled: false``.

Both files have the same format (documented at the top of the shipped file and in the README).
Every problem is one :class:`ConfigError` line naming the file, the line and the field
(``catalog.yaml: line 7: entries[2].port: expected an integer from 1 to 65535, got a string``);
values are never quoted, only their YAML type. Nothing is read from the file but the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, InventoryError
from ..models.metrics import PROMETHEUS
from ..models.scrape import RouteBy, ScrapeEntry
from ..models.selectors import SelectorError, parse_selector
from ..yaml_files import YamlMapping
from .inventory import DEFAULT_MAX_FILE_BYTES, load_yaml, yaml_type

SHIPPED_NAME = "scrape.yaml"
FIELDS = (
    "application",
    "component",
    "selector",
    "port",
    "path",
    "scheme",
    "measurement",
    "route_by",
    "metrics",
    "tags",
    "with_telegraf",
    "enabled",
)
REQUIRED = ("application", "component", "selector", "port")
# A namespace name (DNS-1123 label): the application's pods are in the namespace of its name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$")
_MEASUREMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Telegraf globs of Prometheus metric names (fields): name characters, * ? and [ ].
_METRIC_GLOB = re.compile(r"^[A-Za-z0-9_:*?\[\]-]{1,200}$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def shipped_catalog_path() -> Any:
    """The packaged catalog file (an importlib.resources Traversable)."""
    return files("rubin_monitoring") / "catalog" / SHIPPED_NAME


class _Entry:
    """One entry's mapping, and how to name its fields in messages."""

    def __init__(self, data: YamlMapping, shown: str, index: int) -> None:
        self.data = data
        self.shown = shown
        self.index = index

    def error(self, field: str | None, problem: str) -> ConfigError:
        line = self.data.line(field) if field in self.data else self.data.first_line
        where = f"entries[{self.index}]" + (f".{field}" if field else "")
        return ConfigError(f"{self.shown}: line {line}: {where}: {problem}")

    def text(self, field: str, check: re.Pattern[str] | Callable[[str], bool], what: str) -> str:
        value = self.data[field]
        if not isinstance(value, str):
            raise self.error(field, f"expected {what}, got {yaml_type(value)}")
        valid = check.match(value) if isinstance(check, re.Pattern) else check(value)
        if not valid:
            raise self.error(field, f"expected {what}")
        return value

    def strings(self, field: str, check: re.Pattern[str], what: str) -> tuple[str, ...]:
        value = self.data[field]
        if not isinstance(value, list):
            raise self.error(field, f"expected a list of {what}, got {yaml_type(value)}")
        for item in value:
            if not isinstance(item, str) or not check.match(item):
                got = "" if isinstance(item, str) else f", got {yaml_type(item)}"
                raise self.error(field, f"every item must be {what}{got}")
        return tuple(dict.fromkeys(value))

    def boolean(self, field: str) -> bool:
        value = self.data[field]
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {yaml_type(value)}")
        return value


def _entry(data: Any, shown: str, index: int, line: int) -> ScrapeEntry | tuple[str, str]:
    """The entry at ``entries[index]``, or the (application, component) it removes."""
    if not isinstance(data, YamlMapping):
        raise ConfigError(
            f"{shown}: line {line}: entries[{index}]: expected a mapping, got {yaml_type(data)}"
        )
    entry = _Entry(data, shown, index)
    for key in data:
        if key not in FIELDS:
            name = key if isinstance(key, str) and _MEASUREMENT.match(key) else "a key"
            raise entry.error(key, f"unknown field {name} (fields: {', '.join(FIELDS)})")
    application = (
        entry.text("application", _DNS_LABEL, "an application name that is a namespace name")
        if "application" in data
        else None
    )
    component = (
        entry.text("component", _DNS_LABEL, "a name of lowercase letters, digits and '-'")
        if "component" in data
        else None
    )
    if application is None or component is None:
        raise entry.error(None, "fields application and component are required")
    enabled = entry.boolean("enabled") if "enabled" in data else True
    if not enabled:
        return (application, component)
    for field in REQUIRED:
        if field not in data:
            raise entry.error(None, f"field {field} is missing")
    selector_text = entry.text("selector", lambda _: True, "a label selector")
    try:
        selector = parse_selector(selector_text)
    except SelectorError as error:
        raise entry.error("selector", f"not a valid label selector: {error}") from None
    port = data["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        got = (
            ""
            if isinstance(port, int) and not isinstance(port, bool)
            else f", got {yaml_type(port)}"
        )
        raise entry.error("port", f"expected an integer from 1 to 65535{got}")
    options: dict[str, Any] = {}
    if "path" in data:
        options["path"] = entry.text("path", _PATH, "a URL path starting with /")
    if "scheme" in data:
        options["scheme"] = entry.text(
            "scheme", lambda value: value in ("http", "https"), "http or https"
        )
    if "measurement" in data:
        options["measurement"] = entry.text(
            "measurement", _MEASUREMENT, f"a measurement name (default {PROMETHEUS})"
        )
    if "route_by" in data:
        options["route_by"] = RouteBy(
            entry.text("route_by", lambda value: value in ("pod", "label"), "pod or label")
        )
    if "metrics" in data:
        options["metrics"] = entry.strings("metrics", _METRIC_GLOB, "a metric name or glob")
    if "tags" in data:
        options["tags"] = entry.strings("tags", _LABEL_KEY, "a pod label key")
    if "with_telegraf" in data:
        options["with_telegraf"] = entry.boolean("with_telegraf")
    source = f"{shown}:{data.first_line}"
    return ScrapeEntry(application, component, selector, port, source=source, **options)


@dataclass(frozen=True)
class CatalogFile:
    """What one catalog file says: its entries, and the (application, component) pairs it
    removes (``enabled: false``)."""

    entries: tuple[ScrapeEntry, ...] = ()
    removed: tuple[tuple[str, str], ...] = ()


def parse_catalog(data: YamlMapping, shown: str) -> CatalogFile:
    """The entries of one catalog document (``shown`` names its file in messages); a
    duplicate (application, component) is an error naming both lines."""
    for key in data:
        if key != "entries":
            raise ConfigError(
                f"{shown}: line {data.line(key)}: unknown top-level field "
                f"(the catalog has one field, entries)"
            )
    entries = data.get("entries")
    if entries is None:
        return CatalogFile()
    if not isinstance(entries, list):
        raise ConfigError(
            f"{shown}: line {data.line('entries')}: entries: expected a list of entries, "
            f"got {yaml_type(entries)}"
        )
    found: list[ScrapeEntry] = []
    removed: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    line = data.line("entries")
    for index, item in enumerate(entries):
        entry = _entry(item, shown, index, line)
        key = entry.key if isinstance(entry, ScrapeEntry) else entry
        where = item.first_line if isinstance(item, YamlMapping) else line
        if key in seen:
            raise ConfigError(
                f"{shown}: line {where}: entries[{index}]: application {key[0]} "
                f"component {key[1]} again (first on line {seen[key]})"
            )
        seen[key] = where
        if isinstance(entry, ScrapeEntry):
            found.append(entry)
        else:
            removed.append(entry)
    return CatalogFile(tuple(found), tuple(removed))


def _read(path: Path, shown: str, max_bytes: int) -> CatalogFile:
    try:
        data = load_yaml(path, shown, max_bytes)
    except InventoryError as error:
        raise ConfigError(str(error)) from None
    return parse_catalog(data, shown)


def merge_catalogs(shipped: CatalogFile, user: CatalogFile) -> list[ScrapeEntry]:
    """The shipped entries, each replaced by the user's entry of the same (application,
    component) or removed by a disabled one, then the user's new entries; in that order."""
    merged = {entry.key: entry for entry in shipped.entries}
    for key in user.removed:
        merged.pop(key, None)
    for entry in user.entries:
        merged[entry.key] = entry
    return list(merged.values())


def read_catalog(
    user_file: str | None = None, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> list[ScrapeEntry]:
    """The catalog: the shipped entries, merged with those of ``user_file`` if given.
    :class:`ConfigError` (exit 2) naming file, line and field for a bad file."""
    with as_file(shipped_catalog_path()) as shipped_path:
        shipped = _read(Path(shipped_path), f"(packaged) catalog/{SHIPPED_NAME}", max_file_bytes)
    user = CatalogFile()
    if user_file is not None:
        path = Path(user_file)
        if not path.is_file():
            raise ConfigError(f"SCRAPE_CATALOG: {user_file}: no such file")
        user = _read(path, user_file, max_file_bytes)
    return merge_catalogs(shipped, user)

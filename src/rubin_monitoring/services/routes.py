"""Slack routes: the default webhook (``SLACK_WEBHOOK_URL``) and an optional routes file.

The routes file (path in ``SLACK_ROUTES_FILE``) is YAML::

    routes:
      - name: summit                 # shown in output and logs, recorded in alerted_
        webhook: https://hooks.slack.com/services/T.../B.../...
        clusters: [summit, base]
      - name: usdf-critical
        webhook_env: SLACK_WEBHOOK_USDF_CRITICAL   # or: read the URL from this variable
        clusters: usdfprod
        severities: [critical]
      - name: nublado-team
        webhook_env: SLACK_WEBHOOK_NUBLADO
        applications: [nublado]

Each route has a ``name`` and exactly one of ``webhook`` / ``webhook_env``, and may list
``clusters``, ``applications`` and ``severities`` (a string or a list of strings). An alert goes
to the first route whose every given list contains the alert's value (a route with no lists takes
everything); an alert no route takes goes to the ``default`` route, ``SLACK_WEBHOOK_URL``.

Every problem is a :class:`ConfigError` naming the file, the line and the field, and the
offending value, except a webhook URL's, which is never shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..config import parse_url
from ..exceptions import ConfigError
from ..models.alerts import Alert, Route
from ..storage.slack import redact

DEFAULT_ROUTE = "default"
FIELDS = ("name", "webhook", "webhook_env", "clusters", "applications", "severities")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in mapping.key_lines:
            raise _Problem(line, f"duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class _Problem(Exception):
    def __init__(self, line: int | None, text: str) -> None:
        super().__init__(text)
        self.line = line
        self.text = text


def _strings(value: object, where: str, line: int) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _Problem(
            line, f"{where}: expected a string or a non-empty list of strings, got {value!r}"
        )
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _Problem(line, f"{where}: expected non-empty strings, got {item!r}")
    return frozenset(item.strip() for item in items)


def _route(item: object, index: int, environ: Mapping[str, str]) -> Route:
    where = f"routes[{index}]"
    if not isinstance(item, _Mapping):
        raise _Problem(None, f"{where}: expected a mapping with name and webhook, got {item!r}")

    def line(key: str) -> int:
        return item.key_lines.get(key, item.line)

    for key in item:
        if key not in FIELDS:
            raise _Problem(
                line(key), f"{where}: unknown field {key!r} (expected {', '.join(FIELDS)})"
            )
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Problem(
            line("name"),
            f"{where}.name: expected a name of letters, digits, '_', '.', '-' "
            f"(at most 63), got {name!r}",
        )
    if name == DEFAULT_ROUTE:
        raise _Problem(
            line("name"), f"{where}.name: {DEFAULT_ROUTE!r} is reserved for SLACK_WEBHOOK_URL"
        )
    if ("webhook" in item) == ("webhook_env" in item):
        raise _Problem(item.line, f"{where} ({name}): give exactly one of webhook, webhook_env")
    if "webhook" in item:
        raw = item["webhook"]
        origin = f"{where}.webhook"
        at = line("webhook")
    else:
        variable = item["webhook_env"]
        at = line("webhook_env")
        if not isinstance(variable, str) or not _ENV_NAME.match(variable):
            raise _Problem(
                at, f"{where}.webhook_env: expected an environment variable name, got {variable!r}"
            )
        if variable not in environ:
            raise _Problem(at, f"{where}.webhook_env: environment variable {variable} is not set")
        raw = environ[variable]
        origin = f"{where}.webhook_env ({variable})"
    try:
        if not isinstance(raw, str):
            raise ValueError
        url = parse_url(raw)
    except ValueError:
        raise _Problem(
            at, f"{origin}: not an http(s) URL (value not shown: webhook URLs are secrets)"
        ) from None
    criteria = {
        key: _strings(item[key], f"{where}.{key}", line(key))
        for key in ("clusters", "applications", "severities")
        if key in item
    }
    return Route(
        name=name,
        url=url,
        clusters=criteria.get("clusters", frozenset()),
        applications=criteria.get("applications", frozenset()),
        severities=frozenset(value.lower() for value in criteria.get("severities", ())),
    )


def parse_routes(text: str, source: str, environ: Mapping[str, str] | None = None) -> list[Route]:
    """Routes from the text of a routes file; ``source`` names the file in errors."""
    env = os.environ if environ is None else environ
    try:
        try:
            document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
        except yaml.MarkedYAMLError as error:
            # str(error) quotes the offending line, which may hold a URL: use the parts.
            mark = error.problem_mark or error.context_mark
            problem = error.problem or error.context or "cannot parse"
            raise _Problem(mark.line + 1 if mark else None, f"invalid YAML: {problem}") from None
        except yaml.YAMLError:
            raise _Problem(None, "invalid YAML") from None
        except RecursionError:
            raise _Problem(None, "invalid YAML: nested too deeply") from None
        if not isinstance(document, _Mapping) or not isinstance(document.get("routes"), list):
            raise _Problem(None, "expected a mapping with a 'routes' list")
        extra = sorted(str(key) for key in document if key != "routes")
        if extra:
            raise _Problem(document.key_lines.get(extra[0]), f"unknown top-level key {extra[0]!r}")
        routes = [_route(item, i, env) for i, item in enumerate(document["routes"])]
        seen: set[str] = set()
        for index, route in enumerate(routes):
            if route.name in seen:
                item = document["routes"][index]
                raise _Problem(item.line, f"routes[{index}].name: duplicate name {route.name!r}")
            seen.add(route.name)
    except _Problem as problem:
        where = source if problem.line is None else f"{source}, line {problem.line}"
        raise ConfigError(redact(f"SLACK_ROUTES_FILE {where}: {problem.text}")) from None
    return routes


def load_routes(
    default_url: str | None,
    routes_file: str | None,
    environ: Mapping[str, str] | None = None,
) -> list[Route]:
    """The routes file's routes in order, then ``default`` (``SLACK_WEBHOOK_URL``) if set."""
    routes: list[Route] = []
    if routes_file:
        try:
            text = Path(routes_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise ConfigError(f"SLACK_ROUTES_FILE {routes_file}: cannot read: {reason}") from None
        routes = parse_routes(text, routes_file, environ)
    if default_url:
        routes.append(Route(DEFAULT_ROUTE, default_url))
    if not routes:
        raise ConfigError(
            "SLACK_WEBHOOK_URL (--slack-webhook-url) is not set and SLACK_ROUTES_FILE gives "
            "no routes: nowhere to send alerts"
        )
    return routes


def route_for(alert: Alert, routes: Sequence[Route]) -> Route | None:
    """The first route that takes ``alert`` (the default route, last, takes everything)."""
    return next((route for route in routes if route.matches(alert)), None)

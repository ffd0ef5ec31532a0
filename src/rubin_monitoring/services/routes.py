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

A route may also set its own grouping and timing (without them, the global settings apply)::

      - name: summit-apps
        webhook_env: SLACK_WEBHOOK_SUMMIT
        clusters: summit
        group_by: [cluster, application]   # one message (or more) per group; ['...']: per alert
        repeat_interval: 4h                # at most alerted_'s retention, 7d
        send_resolved: true

Inhibition rules (Alertmanager's ``inhibit_rules``) mute target alerts while a source alert
fires with the same ``equal`` labels; matchers as in silences (``label=value``, ``!=``, ``=~``,
``!~``; labels ``cluster``, ``application``, ``check``, ``severity``, ``pod``)::

    inhibit_rules:
      - name: summit-maintenance
        source_matchers: [check=site_down, cluster=summit]
        target_matchers: [severity=warning]
        equal: [cluster]
    default_inhibit_rules: true   # the two built-in rules below; false turns them off

The built-in rules: a whole silent cluster (``check=silent``, ``application=all``), and
``site_down`` of an environment, each inhibit that cluster's application findings (checks
restarts, not_running, cpu, memory, and silent of single applications).

Every problem is a :class:`ConfigError` naming the file, the line and the field, and the
offending value, except a webhook URL's, which is never shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import parse_repeat_interval, parse_url
from ..exceptions import ConfigError
from ..models.alerts import GROUP_BY_LABELS, GROUP_EACH, Alert, InhibitRule, Route
from ..models.checks import BUCKET_CHECKS
from ..models.matchers import LABELS, Matcher, MatchOp, parse_matcher
from ..storage.slack import redact
from ..yaml_files import YamlMapping, YamlProblem, parse_yaml, read_bounded

DEFAULT_ROUTE = "default"
MAX_ROUTES_FILE_BYTES = 2**20
FIELDS = (
    "name",
    "webhook",
    "webhook_env",
    "clusters",
    "applications",
    "severities",
    "group_by",
    "repeat_interval",
    "send_resolved",
)
TOP_LEVEL = ("routes", "inhibit_rules", "default_inhibit_rules")
RULE_FIELDS = ("name", "source_matchers", "target_matchers", "equal")

# The application findings of a cluster: its application checks, and silent per application.
_APPLICATION_FINDINGS = Matcher("check", MatchOp.RE, "|".join((*BUCKET_CHECKS, "silent")))
DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        "silent-cluster",
        source=(Matcher("check", MatchOp.EQ, "silent"), Matcher("application", MatchOp.EQ, "all")),
        target=(_APPLICATION_FINDINGS, Matcher("application", MatchOp.NE, "all")),
        equal=("cluster",),
    ),
    InhibitRule(
        "site-down",
        source=(Matcher("check", MatchOp.EQ, "site_down"),),
        target=(_APPLICATION_FINDINGS,),
        equal=("cluster",),
    ),
)
"""A whole silent cluster, and ``site_down`` of an environment, inhibit that cluster's
application findings (``default_inhibit_rules: false`` turns them off)."""


@dataclass(frozen=True)
class Routing:
    """Where alerts go (routes in order, ``default`` last) and what inhibits them."""

    routes: tuple[Route, ...]
    inhibit_rules: tuple[InhibitRule, ...] = DEFAULT_INHIBIT_RULES


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    if not isinstance(item, YamlMapping):
        raise _Problem(None, f"{where}: expected a mapping with name and webhook, got {item!r}")

    def line(key: str) -> int:
        return item.line(key)

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
        raise _Problem(
            item.start_line, f"{where} ({name}): give exactly one of webhook, webhook_env"
        )
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
        group_by=_group_by(item, where, line("group_by")),
        repeat_seconds=_repeat(item, where, line("repeat_interval")),
        send_resolved=_flag(item, "send_resolved", where, line("send_resolved")),
    )


def _group_by(item: Mapping[str, Any], where: str, line: int) -> tuple[str, ...] | None:
    if "group_by" not in item:
        return None
    value = item["group_by"]
    labels = [value] if isinstance(value, str) else value
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise _Problem(line, f"{where}.group_by: expected a list of labels, got {value!r}")
    known = (*GROUP_BY_LABELS, GROUP_EACH)
    for label in labels:
        if label not in known:
            raise _Problem(
                line,
                f"{where}.group_by: unknown label {label!r} (use {', '.join(GROUP_BY_LABELS)}, "
                f"or {GROUP_EACH!r} for one message per alert)",
            )
    if GROUP_EACH in labels and len(labels) > 1:
        raise _Problem(line, f"{where}.group_by: {GROUP_EACH!r} stands alone")
    if len(set(labels)) != len(labels):
        raise _Problem(line, f"{where}.group_by: a label is listed twice in {labels!r}")
    return tuple(labels)


def _repeat(item: Mapping[str, Any], where: str, line: int) -> int | None:
    if "repeat_interval" not in item:
        return None
    value = item["repeat_interval"]
    try:
        if not isinstance(value, str):
            raise ValueError(f"expected a duration such as 4h, got {value!r}")
        return parse_repeat_interval(value)
    except ValueError as error:
        raise _Problem(line, f"{where}.repeat_interval: {error}") from None


def _flag(item: Mapping[str, Any], key: str, where: str, line: int) -> bool | None:
    if key not in item:
        return None
    value = item[key]
    if not isinstance(value, bool):
        raise _Problem(line, f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _matchers(value: object, where: str, line: int) -> tuple[Matcher, ...]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise _Problem(line, f"{where}: expected a non-empty list of matchers, got {value!r}")
    matchers = []
    for text in texts:
        if not isinstance(text, str):
            raise _Problem(
                line, f"{where}: expected a matcher such as cluster=summit, got {text!r}"
            )
        try:
            matchers.append(parse_matcher(text))
        except ValueError as error:
            raise _Problem(line, f"{where}: {error}") from None
    return tuple(matchers)


def _inhibit_rule(item: object, index: int, reserved: Sequence[str]) -> InhibitRule:
    where = f"inhibit_rules[{index}]"
    if not isinstance(item, YamlMapping):
        raise _Problem(
            None, f"{where}: expected a mapping with source_matchers and target_matchers"
        )

    def line(key: str) -> int:
        return item.line(key)

    for key in item:
        if key not in RULE_FIELDS:
            raise _Problem(
                line(key), f"{where}: unknown field {key!r} (expected {', '.join(RULE_FIELDS)})"
            )
    name = item.get("name", where)
    if not isinstance(name, str) or not (name == where or _NAME.match(name)):
        raise _Problem(
            line("name"),
            f"{where}.name: expected a name of letters, digits, '_', '.', '-', got {name!r}",
        )
    if name in reserved:
        raise _Problem(line("name"), f"{where}.name: {name!r} is a built-in rule's name")
    for key in ("source_matchers", "target_matchers"):
        if key not in item:
            raise _Problem(item.start_line, f"{where}: {key} is required")
    equal = item.get("equal", [])
    labels = [equal] if isinstance(equal, str) else equal
    if not isinstance(labels, list) or not all(label in LABELS for label in labels):
        raise _Problem(
            line("equal"),
            f"{where}.equal: expected labels among {', '.join(LABELS)}, got {equal!r}",
        )
    return InhibitRule(
        name,
        source=_matchers(
            item["source_matchers"], f"{where}.source_matchers", line("source_matchers")
        ),
        target=_matchers(
            item["target_matchers"], f"{where}.target_matchers", line("target_matchers")
        ),
        equal=tuple(labels),
    )


def parse_routing(text: str, source: str, environ: Mapping[str, str] | None = None) -> Routing:
    """Routes and inhibition rules from the text of a routes file; ``source`` names the file in
    errors. The built-in inhibition rules come first unless ``default_inhibit_rules: false``."""
    env = os.environ if environ is None else environ
    try:
        try:
            document = parse_yaml(text)
        except YamlProblem as problem:
            raise _Problem(problem.line, problem.text) from None
        if not isinstance(document, YamlMapping) or not isinstance(document.get("routes"), list):
            raise _Problem(None, "expected a mapping with a 'routes' list")
        extra = sorted(str(key) for key in document if key not in TOP_LEVEL)
        if extra:
            raise _Problem(document.key_lines.get(extra[0]), f"unknown top-level key {extra[0]!r}")
        routes = [_route(item, i, env) for i, item in enumerate(document["routes"])]
        seen: set[str] = set()
        for index, route in enumerate(routes):
            if route.name in seen:
                item = document["routes"][index]
                raise _Problem(
                    item.start_line, f"routes[{index}].name: duplicate name {route.name!r}"
                )
            seen.add(route.name)
        defaults = _flag(
            document,
            "default_inhibit_rules",
            "default_inhibit_rules",
            document.key_lines.get("default_inhibit_rules", document.start_line),
        )
        builtin = DEFAULT_INHIBIT_RULES if defaults is not False else ()
        raw_rules = document.get("inhibit_rules", [])
        if not isinstance(raw_rules, list):
            raise _Problem(
                document.key_lines.get("inhibit_rules"), "inhibit_rules: expected a list of rules"
            )
        reserved = [rule.name for rule in DEFAULT_INHIBIT_RULES]
        rules = [_inhibit_rule(item, i, reserved) for i, item in enumerate(raw_rules)]
        names = [rule.name for rule in rules]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _Problem(
                    raw_rules[index].start_line,
                    f"inhibit_rules[{index}].name: duplicate name {name!r}",
                )
    except _Problem as problem:
        where = source if problem.line is None else f"{source}, line {problem.line}"
        raise ConfigError(redact(f"SLACK_ROUTES_FILE {where}: {problem.text}")) from None
    return Routing(tuple(routes), (*builtin, *rules))


def parse_routes(text: str, source: str, environ: Mapping[str, str] | None = None) -> list[Route]:
    """Routes from the text of a routes file; ``source`` names the file in errors."""
    return list(parse_routing(text, source, environ).routes)


def load_routing(
    default_url: str | None,
    routes_file: str | None,
    environ: Mapping[str, str] | None = None,
) -> Routing:
    """The routes file's routes in order, then ``default`` (``SLACK_WEBHOOK_URL``) if set, and
    the inhibition rules (the built-in ones when there is no routes file)."""
    routing = Routing(())
    if routes_file:
        try:
            text = read_bounded(Path(routes_file), MAX_ROUTES_FILE_BYTES)
        except YamlProblem as problem:
            raise ConfigError(f"SLACK_ROUTES_FILE {routes_file}: {problem.text}") from None
        routing = parse_routing(text, routes_file, environ)
    routes = list(routing.routes)
    if default_url:
        routes.append(Route(DEFAULT_ROUTE, default_url))
    if not routes:
        raise ConfigError(
            "SLACK_WEBHOOK_URL (--slack-webhook-url) is not set and SLACK_ROUTES_FILE gives "
            "no routes: nowhere to send alerts"
        )
    return Routing(tuple(routes), routing.inhibit_rules)


def load_routes(
    default_url: str | None,
    routes_file: str | None,
    environ: Mapping[str, str] | None = None,
) -> list[Route]:
    """The routes file's routes in order, then ``default`` (``SLACK_WEBHOOK_URL``) if set."""
    return list(load_routing(default_url, routes_file, environ).routes)


def route_for(alert: Alert, routes: Sequence[Route]) -> Route | None:
    """The first route that takes ``alert`` (the default route, last, takes everything)."""
    return next((route for route in routes if route.matches(alert)), None)

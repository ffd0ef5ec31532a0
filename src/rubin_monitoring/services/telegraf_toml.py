"""The one writer of the Telegraf configuration files the toolkit generates.

Telegraf substitutes ``${NAME}`` (and ``$NAME``) references from its environment throughout
the file when it loads it, before it parses the TOML. A value from the repository that held
such a reference would make Telegraf put a secret (``${INFLUX_TOKEN}``) wherever that value
goes: into a tag written to InfluxDB, or into an output's URL; a line break in the header
comment would start a line of configuration. Names are validated where the inventory is read;
this writer makes sure anyway: the header's lines are made single lines, values are written
by tomli-w (which escapes them), and a ``$`` may appear only in the values the generator marked
as its own references (:class:`EnvReference`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import tomli_w

from ..exceptions import ConfigError
from ..models.names import one_line


class EnvReference(str):
    """A value the generator writes with a ``${NAME}`` reference that Telegraf substitutes
    from its environment (``"${INFLUX_TOKEN}"``, ``"https://${NODE_NAME}:10250"``). Equal to
    the plain string; only these may hold a ``$``."""

    __slots__ = ()


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def telegraf_toml(header: Iterable[str], config: Mapping[str, Any]) -> str:
    """``config`` as a Telegraf TOML file after ``header`` (comment lines, each made a single
    line). Raises :class:`ConfigError` if a ``$`` is anywhere but in an :class:`EnvReference`
    (it would come from the repository or a setting, and Telegraf would substitute there)."""
    lines = [one_line(line) for line in header]
    unmarked = [
        text
        for text in (*lines, *_strings(config))
        if "$" in text and not isinstance(text, EnvReference)
    ]
    if unmarked:
        raise ConfigError(
            "refusing to write a Telegraf configuration with a '$' in a value from the "
            "repository or a setting: Telegraf would substitute an environment variable (a "
            "token) there"
        )
    return "".join(f"# {line}\n" for line in lines) + _dumps(config)


# Telegraf reads a plugin's generic options (``tags``, ``tagpass``, ``tagdrop``...) only from
# sub-tables: in a plugin written as an inline table (``internal = [{..., tags = {...}}]``,
# which tomli-w writes for an array of short tables) they are silently ignored (Telegraf
# v1.37.2 config/config.go buildInput, buildFilter). So every plugin is written as its own
# ``[[section.name]]`` table.
PLUGIN_SECTIONS = ("inputs", "processors", "aggregators", "outputs")
_HEADER = re.compile(r"^(\[\[?)", re.MULTILINE)


def _plugin(prefix: str, table: Mapping[str, Any]) -> str:
    """One plugin's ``[[prefix]]`` table; its sub-tables' headers prefixed. tomli-w starts a
    header, and only a header, at the start of a line (without multi-line strings, a value
    never does)."""
    body = _HEADER.sub(lambda found: f"{found.group(1)}{prefix}.", tomli_w.dumps(dict(table)))
    return f"[[{prefix}]]\n{body}"


def _dumps(config: Mapping[str, Any]) -> str:
    """``config`` as TOML, each plugin a ``[[section.name]]`` table of its own."""
    plain = {key: value for key, value in config.items() if key not in PLUGIN_SECTIONS}
    parts = [tomli_w.dumps(plain)] if plain else []
    for section in PLUGIN_SECTIONS:
        for name, tables in dict(config.get(section) or {}).items():
            for table in tables if isinstance(tables, list | tuple) else [tables]:
                parts.append(_plugin(f"{section}.{name}", table))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)

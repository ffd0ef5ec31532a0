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
    return "".join(f"# {line}\n" for line in lines) + tomli_w.dumps(dict(config))

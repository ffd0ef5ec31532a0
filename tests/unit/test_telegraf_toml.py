"""The one writer of generated Telegraf files: plugins as tables of their own, '$' refused."""

from __future__ import annotations

import tomllib

import pytest

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.services.telegraf_toml import EnvReference, telegraf_toml

CONFIG = {
    "agent": {"interval": "10s"},
    "inputs": {
        # Short enough that tomli-w alone would write it inline, where Telegraf ignores its
        # tags (checked with Telegraf v1.37.2: `internal = [{..., tags = {...}}]` loses them).
        "internal": [{"collect_memstats": False, "tags": {"route": "x"}}],
        "http_listener_v2": [
            {"service_address": ":9201", "tags": {"cluster": "a"}},
            {"service_address": ":9202", "tags": {"cluster": "b"}},
        ],
    },
    "processors": {
        "enum": [
            {
                "tagpass": {"cluster": ["a"]},
                "mapping": [{"tags": ["namespace"], "value_mappings": {"mobu": "mobu"}}],
            }
        ],
    },
    "outputs": {"influxdb_v2": [{"token": EnvReference("${INFLUX_TOKEN}")}]},
}


def test_every_plugin_is_a_table_of_its_own_with_its_generic_options_as_sub_tables() -> None:
    text = telegraf_toml(["a header"], CONFIG)
    assert tomllib.loads(text) == CONFIG
    lines = text.splitlines()
    assert lines[0] == "# a header"
    for header in (
        "[[inputs.internal]]",
        "[inputs.internal.tags]",
        "[[inputs.http_listener_v2]]",
        "[inputs.http_listener_v2.tags]",
        "[[processors.enum]]",
        "[processors.enum.tagpass]",
        "[[outputs.influxdb_v2]]",
    ):
        assert header in lines, header
    assert lines.count("[[inputs.http_listener_v2]]") == 2
    assert not any(line.startswith("internal =") for line in lines)


def test_a_dollar_outside_the_generators_own_references_is_refused() -> None:
    bad = {"inputs": {"internal": [{"tags": {"route": "${INFLUX_TOKEN}"}}]}}
    with pytest.raises(ConfigError, match="refusing"):
        telegraf_toml([], bad)
    with pytest.raises(ConfigError, match="refusing"):
        telegraf_toml(["cluster $x"], {})

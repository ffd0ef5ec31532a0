"""Run the toolkit's commands in-process and check that no secret leaks into their output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from rubin_monitoring.cli import cli
from rubin_monitoring.config import SPECS

SETTING_VARIABLES = sorted({name for spec in SPECS for name in spec.env})


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def changes(self) -> list[dict[str, Any]]:
        return list(self.json()["changes"])


def run_cli(args: Sequence[str], env: dict[str, str], secrets: Sequence[str] = ()) -> Run:
    """Run ``rubin-monitoring ARGS`` with exactly ``env`` as the toolkit's settings."""
    isolated: dict[str, str | None] = {name: None for name in SETTING_VARIABLES}
    isolated.update(env)
    result = CliRunner().invoke(cli, list(args), env=isolated, catch_exceptions=False)
    run = Run(result.exit_code, result.stdout, result.stderr)
    for secret in (*secrets, env.get("INFLUXDB_TOKEN", "")):
        if secret:
            assert secret not in run.stdout and secret not in run.stderr, "secret leaked"
    return run

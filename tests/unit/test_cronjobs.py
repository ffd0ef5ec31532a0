"""The CronJob manifests run commands that exist, with settings the toolkit knows."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from rubin_monitoring.config import SPECS

ROOT = Path(__file__).resolve().parents[2]
CRONJOBS = sorted((ROOT / "cronjobs").glob("*.yaml"))
KNOWN_VARIABLES = {name for spec in SPECS for name in spec.env}
SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def container(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize(
    "path", [p for p in CRONJOBS if "kind: CronJob" in p.read_text()], ids=lambda p: p.name
)
def test_cronjob_runs_a_console_script_with_known_settings(path: Path) -> None:
    spec = container(path)
    assert spec["command"][0] in SCRIPTS
    names = [entry["name"] for entry in spec["env"]]
    assert set(names) <= KNOWN_VARIABLES, set(names) - KNOWN_VARIABLES
    token = next(entry for entry in spec["env"] if entry["name"] == "INFLUXDB_TOKEN")
    assert "secretKeyRef" in token["valueFrom"], "tokens come from a Secret, never inline"


def test_configmap_holds_only_known_non_secret_settings() -> None:
    data = yaml.safe_load((ROOT / "cronjobs" / "configmap.yaml").read_text())["data"]
    assert set(data) <= KNOWN_VARIABLES
    assert not {"INFLUXDB_TOKEN", "SLACK_WEBHOOK_URL"} & set(data)


def test_shipped_routes_file_parses(tmp_path: Path) -> None:
    from rubin_monitoring.services.routes import load_routes

    data = yaml.safe_load((ROOT / "cronjobs" / "routes-configmap.yaml").read_text())["data"]
    path = tmp_path / "routes.yaml"
    path.write_text(data["routes.yaml"])
    routes = load_routes("https://hooks.example.com/services/T/B/x", str(path))
    assert [route.name for route in routes] == ["default"]

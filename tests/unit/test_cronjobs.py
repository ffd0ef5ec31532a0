"""The Helm chart in ``cronjobs/`` runs commands that exist, with settings the toolkit knows,
tokens from the Secret tokenmaker writes, and every container locked down.

The values and the schema are checked as files; the rendered manifests with the real helm
(``helm_bin``: skipped without it, failed under ``RUBIN_MONITORING_REQUIRE_LAB=1``).
``tests/integration/test_manifests.py`` applies the rendered objects to a real API server.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from support.helm import CHART, FULL_VALUES, render_chart

from rubin_monitoring.cli import cli
from rubin_monitoring.config import SPECS
from rubin_monitoring.durations import parse_duration
from rubin_monitoring.models.tokens import Role
from rubin_monitoring.storage.secret_manifest import secret_key

ROOT = Path(__file__).resolve().parents[2]
KNOWN_VARIABLES = {name for spec in SPECS for name in spec.env}
SECRET_VARIABLES = {name for spec in SPECS if spec.secret for name in spec.env}
SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
ROUTES_FILE = "/etc/rubin-monitoring/routes.yaml"
# Set by the chart itself, never from values.
CHART_SETTINGS = {"SLACK_ROUTES_FILE"}
# Read only by commands the chart does not run (telegraf-config prints configurations).
NOT_CHART_SETTINGS = {"SCRAPE_CATALOG"}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def merged_values(*files: Path) -> dict[str, Any]:
    """values.yaml with ``files`` merged over it, as helm merges them (maps deeply)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}
        return over

    values: dict[str, Any] = VALUES
    for path in files:
        values = merge(values, yaml.safe_load(path.read_text()))
    return values


def command_of(script: str) -> click.Command:
    return cli.commands[script]


# -- values.yaml and values.schema.json, as files


def test_schema_allows_exactly_the_non_secret_settings() -> None:
    """A typo or a secret in `config` or a job's `env` fails `helm install`; every setting the
    toolkit reads from its primary variable can be given."""
    names = {spec.env[0] for spec in SPECS if spec.env and not spec.secret}
    names -= CHART_SETTINGS | NOT_CHART_SETTINGS
    config = SCHEMA["properties"]["config"]
    job_env = SCHEMA["properties"]["jobs"]["additionalProperties"]["properties"]["env"]
    for schema in (config, job_env):
        assert set(schema["propertyNames"]["enum"]) == names
        # Strings only: helm would render a large number as 1.048576e+06.
        assert schema["additionalProperties"] == {"type": "string"}


def test_schema_tokens_are_job_roles_and_routes_hold_no_url() -> None:
    job = SCHEMA["properties"]["jobs"]["additionalProperties"]
    assert set(job["properties"]["token"]["enum"]) <= {role.value for role in Role}
    assert job["additionalProperties"] is False
    route = SCHEMA["properties"]["notifier"]["properties"]["routes"]["items"]
    assert "webhook" not in route["properties"], "a webhook URL must never sit in a ConfigMap"
    assert route["additionalProperties"] is False
    assert {"webhook_env", "webhookSecretKey"} <= set(route["required"])


def test_default_values_hold_only_known_non_secret_settings() -> None:
    assert set(VALUES["config"]) <= KNOWN_VARIABLES
    assert not SECRET_VARIABLES & set(VALUES["config"])
    for job in VALUES["jobs"].values():
        assert set(job.get("env", {})) <= KNOWN_VARIABLES - SECRET_VARIABLES


@pytest.mark.parametrize("name", sorted(VALUES["jobs"]))
def test_default_job_runs_a_console_script_with_its_options(name: str) -> None:
    job = VALUES["jobs"][name]
    script, *args = job["command"]
    assert script in SCRIPTS
    options = {option for param in command_of(script).params for option in param.opts}
    assert set(args) <= options, set(args) - options
    assert job["token"] in {role.value for role in Role}
    assert not job["token"].endswith("-telegraf")  # a Telegraf's token runs no job
    assert {"requests", "limits"} <= set(job["resources"])


def test_every_reconciling_job_and_the_notifier_are_scheduled() -> None:
    commands = {tuple(job["command"]) for job in VALUES["jobs"].values() if job["enabled"]}
    expected = {("bucketmaker",), ("bucketmapper",), ("taskmaker",), ("taskmaker", "--health")}
    assert commands == expected | {("dashboardmaker",), ("notifier",)}
    assert ("tokenmaker",) not in commands  # one-off setup, run by hand


# -- the rendered manifests (real helm)

VALUE_SETS = {"default": (), "full": (FULL_VALUES,)}


@pytest.fixture(params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, helm_bin: Path) -> tuple[Any, list[dict[str, Any]]]:
    files = VALUE_SETS[request.param]
    return merged_values(*files), documents(render_chart(helm_bin, *files))


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def test_one_cronjob_per_enabled_job(rendered: tuple[Any, list[dict[str, Any]]]) -> None:
    values, docs = rendered
    enabled = {name for name, job in values["jobs"].items() if job.get("enabled", True)}
    assert set(by_kind(docs, "CronJob")) == enabled
    assert {doc["kind"] for doc in docs} == {"CronJob", "ConfigMap"}
    assert set(by_kind(docs, "ConfigMap")) == {"rubin-monitoring", "rubin-monitoring-routes"}


def test_cronjob_runs_a_console_script_with_known_settings(
    rendered: tuple[Any, list[dict[str, Any]]],
) -> None:
    values, docs = rendered
    route_variables = {route["webhook_env"] for route in values["notifier"]["routes"]}
    settings = by_kind(docs, "ConfigMap")["rubin-monitoring"]["data"]
    assert settings == values["config"]
    assert set(settings) <= KNOWN_VARIABLES and not SECRET_VARIABLES & set(settings)
    for name, cronjob in by_kind(docs, "CronJob").items():
        job = values["jobs"][name]
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == job["command"]
        script, *args = container["command"]
        assert script in SCRIPTS
        assert set(args) <= {opt for param in command_of(script).params for opt in param.opts}
        assert container["envFrom"] == [{"configMapRef": {"name": "rubin-monitoring"}}]
        env = {entry["name"]: entry for entry in container["env"]}
        assert len(env) == len(container["env"]), "a variable given twice"
        assert set(env) <= KNOWN_VARIABLES | route_variables, set(env) - KNOWN_VARIABLES
        for variable, value in job.get("env", {}).items():
            assert env[variable] == {"name": variable, "value": value}
        token = env["INFLUXDB_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": values["tokensSecret"], "key": secret_key(job["token"])}
        for variable in (*SECRET_VARIABLES, *route_variables):
            if variable in env:
                assert set(env[variable]) == {"name", "valueFrom"}, "secrets never inline"
                assert "secretKeyRef" in env[variable]["valueFrom"]
        if job.get("slack"):
            slack = values["notifier"]["slack"]
            webhook = env["SLACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]
            assert webhook == {"name": slack["secretName"], "key": slack["key"]}
            for route in values["notifier"]["routes"]:
                ref = env[route["webhook_env"]]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": slack["secretName"], "key": route["webhookSecretKey"]}
            assert env["SLACK_ROUTES_FILE"]["value"] == ROUTES_FILE
            heartbeat = values["notifier"]["heartbeat"]
            if heartbeat["secretName"]:
                ref = env["HEARTBEAT_URL"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": heartbeat["secretName"], "key": heartbeat["key"]}
            else:
                assert "HEARTBEAT_URL" not in env
            mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
            assert mounts["routes"]["mountPath"] == str(Path(ROUTES_FILE).parent)
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            assert volumes["routes"]["configMap"]["name"] == "rubin-monitoring-routes"
        else:
            assert not {"SLACK_WEBHOOK_URL", "SLACK_ROUTES_FILE", "HEARTBEAT_URL"} & set(env)


def test_every_container_is_locked_down(rendered: tuple[Any, list[dict[str, Any]]]) -> None:
    values, docs = rendered
    for name, cronjob in by_kind(docs, "CronJob").items():
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"] == values["jobs"][name]["resources"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert [m["mountPath"] for m in writable] == ["/tmp"]
        assert "emptyDir" in volumes[writable[0]["name"]]


def test_rendered_routes_file_parses(
    rendered: tuple[Any, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rubin_monitoring.services.routes import DEFAULT_INHIBIT_RULES, load_routing

    values, docs = rendered
    data = by_kind(docs, "ConfigMap")["rubin-monitoring-routes"]["data"]
    path = tmp_path / "routes.yaml"
    path.write_text(data["routes.yaml"])
    for index, route in enumerate(values["notifier"]["routes"]):
        monkeypatch.setenv(route["webhook_env"], f"https://hooks.example.com/services/T/B/{index}")
    routing = load_routing("https://hooks.example.com/services/T/B/x", str(path))
    expected = [route["name"] for route in values["notifier"]["routes"]]
    assert [route.name for route in routing.routes] == [*expected, "default"]
    for route, given in zip(routing.routes, values["notifier"]["routes"], strict=False):
        assert route.group_by == (tuple(given["group_by"]) if "group_by" in given else None)
    builtin = [rule.name for rule in DEFAULT_INHIBIT_RULES]
    if not values["notifier"]["defaultInhibitRules"]:
        builtin = []
    rules = [rule["name"] for rule in values["notifier"]["inhibitRules"]]
    assert [rule.name for rule in routing.inhibit_rules] == [*builtin, *rules]


def _default(variable: str) -> str:
    spec = next(spec for spec in SPECS if variable in spec.env)
    assert spec.default is not None
    return spec.default


def test_every_deadline_outlasts_a_hung_influxdb() -> None:
    """A hung InfluxDB ends a run (exit 3) within max(HTTP_TIMEOUT, HTTP_RETRY_BUDGET), plus
    start-up and the lease's release: every job's deadline leaves it that time, so a run gives
    its own one-line answer instead of being killed by Kubernetes (issue 15: the notifier used
    to take 125 s against a 50 s deadline)."""
    config = VALUES["config"]
    startup_and_release = 15
    for name, job in VALUES["jobs"].items():
        settings = {**config, **job.get("env", {})}
        timeout = int(settings.get("HTTP_TIMEOUT", _default("HTTP_TIMEOUT")))
        budget = parse_duration(settings.get("HTTP_RETRY_BUDGET", _default("HTTP_RETRY_BUDGET")))
        bound = max(timeout, budget) + startup_and_release
        assert job["activeDeadlineSeconds"] >= bound, (name, job["activeDeadlineSeconds"], bound)

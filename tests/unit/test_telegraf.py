"""telegraf-config: the Telegraf configuration and manifests rendered from the inventory."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_cli

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.inventory import Environment, Inventory, InventoryProblem
from rubin_monitoring.services.telegraf import (
    RBAC_RULES,
    config_text,
    enabled_namespaces,
    find_environment,
    render_telegraf,
    routed_buckets,
    telegraf_config,
    telegraf_secret_key,
)

URL = "https://influxdb.example.org"
INVENTORY = Inventory(
    environments=(
        Environment(
            "idfdev",
            "data-dev.lsst.cloud",
            "environments/values-idfdev.yaml",
            ("argocd", "times-square", "mobu", "bad_"),
        ),
        Environment("summit", None, "environments/values-summit.yaml", ("argocd", "sasquatch")),
    ),
    problems=(InventoryProblem("environments/values-idfdev.yaml", "bad_", "reserved name"),),
)


def rendered(environment: str = "idfdev", **options: Any) -> str:
    return render_telegraf(
        INVENTORY, environment, URL, "rubin", secret_name="rubin-monitoring-tokens", **options
    ).text


def test_config_tags_the_cluster_and_reads_both_kubernetes_inputs() -> None:
    config = tomllib.loads(rendered())
    assert config["global_tags"] == {"cluster": "idfdev"}
    (inventory,) = config["inputs"]["kube_inventory"]
    # Every namespace (the plugin's default is "default"), pods only, this node's pods only.
    assert inventory == {
        "namespace": "",
        "resource_include": ["pods"],
        "node_name": "${NODE_NAME}",
    }
    (kubelet,) = config["inputs"]["kubernetes"]
    assert kubelet["url"] == "https://${NODE_NAME}:10250"
    assert set(config["inputs"]) == {"kube_inventory", "kubernetes"}


def test_points_are_routed_to_their_applications_buckets_only() -> None:
    config = tomllib.loads(rendered())
    (strings,) = config["processors"]["strings"]
    assert strings == {"replace": [{"tag": "namespace", "dest": "bucket", "old": "-", "new": "_"}]}
    (output,) = config["outputs"]["influxdb_v2"]
    assert output == {
        "urls": [URL],
        "token": "${INFLUX_TOKEN}",
        "organization": "rubin",
        "bucket_tag": "bucket",
        "exclude_bucket_tag": True,
        # Only this environment's applications (not summit's sasquatch; not the rejected one),
        # and every point that passes has the namespace tag, hence the bucket tag: no default
        # bucket (the output has none) is ever written.
        "tagpass": {"namespace": ["argocd", "mobu", "times-square"]},
    }
    assert "bucket" not in output
    assert routed_buckets(["times-square", "mobu"]) == {
        "times-square": "times_square",
        "mobu": "mobu",
    }


def test_the_token_stays_an_environment_reference() -> None:
    text = rendered()
    assert 'token = "${INFLUX_TOKEN}"' in text
    assert tomllib.loads(text)["outputs"]["influxdb_v2"][0]["token"] == "${INFLUX_TOKEN}"


def test_environments_differ_only_in_what_they_enable() -> None:
    summit = tomllib.loads(rendered("summit"))
    assert summit["global_tags"] == {"cluster": "summit"}
    assert summit["outputs"]["influxdb_v2"][0]["tagpass"] == {"namespace": ["argocd", "sasquatch"]}


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no environment 'nope' .*idfdev, summit"):
        find_environment(INVENTORY, "nope")


def test_an_environment_without_applications_is_refused() -> None:
    with pytest.raises(ConfigError, match="enables no application"):
        telegraf_config("empty", [], URL, "rubin")
    assert enabled_namespaces(INVENTORY.environments[0], INVENTORY) == [
        "argocd",
        "mobu",
        "times-square",
    ]


def test_config_text_round_trips() -> None:
    config = telegraf_config("idfdev", ["mobu"], URL, "rubin", interval="10s")
    assert tomllib.loads(config_text(config)) == config


def by_kind(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def test_manifests_run_the_config_on_every_node() -> None:
    config = rendered()
    docs = by_kind(rendered(output_format="manifests", namespace="telemetry"))
    assert list(docs) == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ]
    assert docs["ConfigMap"]["data"] == {"telegraf.conf": config}
    assert docs["ConfigMap"]["metadata"]["namespace"] == "telemetry"
    assert "namespace" not in docs["ClusterRole"]["metadata"]
    assert docs["ClusterRole"]["rules"] == list(RBAC_RULES)
    assert docs["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes/stats", "nodes/proxy"], "verbs": ["get"]},
    ]
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "telegraf", "namespace": "telemetry"}
    ]
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["image"] == "telegraf:1.37.2"
    env = {item["name"]: item["valueFrom"] for item in container["env"]}
    assert env == {
        "INFLUX_TOKEN": {
            "secretKeyRef": {"name": "rubin-monitoring-tokens", "key": "telegraf-idfdev-token"}
        },
        "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
    }
    assert telegraf_secret_key("idfdev") == "telegraf-idfdev-token"
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "telegraf"}}]


def test_cli_prints_config_and_refuses_unknown_environments(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "phalanx"
    env = {"INFLUXDB_URL": URL, "INFLUXDB_ORG": "rubin", "PHALANX_REPO": str(root)}
    run = run_cli(["telegraf-config", "--environment", "idfdev"], env)
    assert run.exit_code == 0, run.stderr
    config = tomllib.loads(run.stdout)
    assert config["global_tags"] == {"cluster": "idfdev"}
    assert "times-square" in config["outputs"]["influxdb_v2"][0]["tagpass"]["namespace"]

    manifests = run_cli(
        ["telegraf-config", "--environment", "idfdev", "--format", "manifests"], env
    )
    assert manifests.exit_code == 0, manifests.stderr
    assert by_kind(manifests.stdout)["DaemonSet"]["metadata"]["namespace"] == "monitoring"

    bad = run_cli(["telegraf-config", "--environment", "nope"], env)
    assert bad.exit_code == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: no environment 'nope' in the repository (environments: idfdev, minikube, summit)"
    ]
    assert bad.stdout == ""

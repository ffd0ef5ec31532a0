"""receiver-config: the remote-write receiver's configuration and manifests."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from support.cli import run_cli

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.inventory import Environment, Inventory, InventoryProblem
from rubin_monitoring.services.receiver import (
    DEFAULT_MAX_BODY_SIZE,
    Listener,
    receiver_listeners,
    render_receiver,
)
from rubin_monitoring.testing.phalanx import PhalanxRepo

URL = "https://influxdb.example.org"
INVENTORY = Inventory(
    environments=(
        Environment("summit", None, "environments/values-summit.yaml", ("argocd", "sasquatch")),
        Environment(
            "idfdev",
            "data-dev.lsst.cloud",
            "environments/values-idfdev.yaml",
            ("argocd", "times-square", "mobu", "bad_"),
        ),
    ),
    problems=(
        InventoryProblem("environments/values-idfdev.yaml", "reserved name", application="bad_"),
    ),
)


def config(**options: Any) -> dict[str, Any]:
    text = render_receiver(
        INVENTORY, URL, "rubin", secret_name="rubin-monitoring-tokens", **options
    ).text
    return tomllib.loads(text)


def manifests(**options: Any) -> dict[str, dict[str, Any]]:
    text = render_receiver(
        INVENTORY,
        URL,
        "rubin",
        secret_name="rubin-monitoring-tokens",
        output_format="manifests",
        **options,
    ).text
    return {document["kind"]: document for document in yaml.safe_load_all(text)}


def test_one_listener_per_environment_in_name_order_on_consecutive_ports() -> None:
    listeners = receiver_listeners(["summit", "idfdev", "usdf-dev"], 9201)
    assert [(item.environment, item.port) for item in listeners] == [
        ("idfdev", 9201),
        ("summit", 9202),
        ("usdf-dev", 9203),
    ]
    usdf = listeners[2]
    assert usdf.path == "/usdf-dev/api/v1/write"
    assert usdf.username == "usdf-dev"
    assert usdf.password_variable == "RECEIVER_USDF_DEV_PASSWORD"
    assert usdf.secret_key == "receiver-usdf-dev-password"
    with pytest.raises(ConfigError, match="beyond 65535"):
        receiver_listeners(["a", "b"], 65535)
    with pytest.raises(ConfigError, match="no environment"):
        receiver_listeners([], 9201)


def test_each_listener_checks_its_environment_credential_and_sets_its_cluster() -> None:
    inputs = config()["inputs"]["http_listener_v2"]
    assert [item["alias"] for item in inputs] == ["remote-write:idfdev", "remote-write:summit"]
    idfdev = inputs[0]
    assert idfdev == {
        "alias": "remote-write:idfdev",
        "service_address": ":9201",
        "paths": ["/idfdev/api/v1/write"],
        "methods": ["POST"],
        "data_format": "prometheusremotewrite",
        "prometheus_metric_version": 2,
        "max_body_size": DEFAULT_MAX_BODY_SIZE,
        "read_timeout": "10s",
        "write_timeout": "10s",
        "basic_username": "idfdev",
        # Telegraf refuses to start without it: an empty password would switch auth off.
        "basic_password": "${RECEIVER_IDFDEV_PASSWORD:?is not set}",
        "name_override": "prometheus",
        "tagexclude": [
            "cluster",
            "rubin_monitoring_bucket",
            "instance",
            "prometheus",
            "prometheus_replica",
        ],
        "tagdrop": {"quantile": ["*"]},
        "tags": {"cluster": "idfdev"},
    }
    # The input's tags come back after tagexclude only with this.
    assert config()["agent"]["always_include_local_tags"] is True
    assert config()["agent"]["omit_hostname"] is True


def test_series_are_routed_per_environment_into_its_enabled_applications_buckets() -> None:
    document = config()
    enums = document["processors"]["enum"]
    assert [(e["alias"], e["order"], e["tagpass"]) for e in enums] == [
        ("route:idfdev", 1, {"cluster": ["idfdev"]}),
        ("route:summit", 2, {"cluster": ["summit"]}),
    ]
    (idfdev,) = enums[0]["mapping"]
    assert idfdev["tags"] == ["namespace"] and idfdev["dest"] == "rubin_monitoring_bucket"
    # bad_ has no bucket (the inventory refused it): nothing goes there.
    assert idfdev["value_mappings"] == {
        "argocd": "argocd",
        "mobu": "mobu",
        "times-square": "times_square",
    }
    assert enums[1]["mapping"][0]["value_mappings"] == {
        "argocd": "argocd",
        "sasquatch": "sasquatch",
    }
    # After routing, the series' own namespace label is its again.
    assert document["processors"]["rename"] == [
        {"order": 3, "replace": [{"tag": "exported_namespace", "dest": "namespace"}]}
    ]
    (output,) = document["outputs"]["influxdb_v2"]
    assert output["token"] == "${INFLUX_TOKEN}"
    assert output["concurrent_writes"] == 4
    assert output["bucket_tag"] == "rubin_monitoring_bucket" and output["exclude_bucket_tag"]
    assert output["tagpass"] == {
        "rubin_monitoring_bucket": [
            "argocd",
            "influxdb_",
            "mobu",
            "sasquatch",
            "times_square",
        ]
    }


def test_unrouted_points_are_counted_per_environment_and_the_counts_written() -> None:
    document = config()
    assert document["outputs"]["discard"] == [
        {
            "alias": f"unrouted:{env}",
            "tagpass": {"cluster": [env]},
            "tagdrop": {"rubin_monitoring_bucket": ["*"]},
        }
        for env in ("idfdev", "summit")
    ]
    (internal,) = document["inputs"]["internal"]
    assert internal["tags"] == {"rubin_monitoring_bucket": "influxdb_"}


def test_tls_listen_address_and_body_size_options() -> None:
    options = {
        "tls_cert": "/etc/tls/tls.crt",
        "tls_key": "/etc/tls/tls.key",
        "listen_address": "127.0.0.1",
        "max_body_size": 4096,
        "base_port": 19291,
    }
    first = config(**options)["inputs"]["http_listener_v2"][0]
    assert first["service_address"] == "127.0.0.1:19291"
    assert first["tls_cert"] == "/etc/tls/tls.crt" and first["tls_key"] == "/etc/tls/tls.key"
    assert first["max_body_size"] == 4096
    assert config(listen_address="::1")["inputs"]["http_listener_v2"][0]["service_address"] == (
        "[::1]:9201"
    )
    with pytest.raises(ConfigError, match="go together"):
        config(tls_cert="/etc/tls/tls.crt")
    with pytest.raises(ConfigError, match="not an IP address"):
        config(listen_address="0.0.0.0:80")
    # A '$' from a setting would make Telegraf substitute a variable (a token) there.
    with pytest.raises(ConfigError, match="refusing"):
        config(tls_cert="/etc/${INFLUX_TOKEN}", tls_key="/k")


def test_manifests_read_every_credential_from_tokenmakers_secret() -> None:
    objects = manifests()
    assert set(objects) == {"ConfigMap", "Deployment", "Service"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["--config", "/etc/telegraf/receiver.conf", "--strict-env-handling"]
    secrets = {item["name"]: item["valueFrom"]["secretKeyRef"]["key"] for item in container["env"]}
    assert secrets == {
        "INFLUX_TOKEN": "receiver-token",
        "RECEIVER_IDFDEV_PASSWORD": "receiver-idfdev-password",
        "RECEIVER_SUMMIT_PASSWORD": "receiver-summit-password",
    }
    assert all(
        item["valueFrom"]["secretKeyRef"]["name"] == "rubin-monitoring-tokens"
        and "optional" not in item["valueFrom"]["secretKeyRef"]
        for item in container["env"]
    )
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert objects["Service"]["spec"]["ports"] == [
        {"name": "idfdev", "port": 9201, "targetPort": 9201},
        {"name": "summit", "port": 9202, "targetPort": 9202},
    ]
    text = objects["ConfigMap"]["data"]["receiver.conf"]
    assert tomllib.loads(text) == config()
    # Memory for the buffer: 128 MiB and 1.5 KiB a point.
    assert container["resources"]["limits"] == {"memory": "861Mi"}
    smaller = manifests(buffer_limit=100_000)["Deployment"]["spec"]["template"]["spec"]
    assert smaller["containers"][0]["resources"]["limits"] == {"memory": "275Mi"}
    assert config(buffer_limit=100_000)["agent"]["metric_buffer_limit"] == 100_000
    with pytest.raises(ConfigError, match="at least 10000 points"):
        config(buffer_limit=100)


def test_the_ingress_routes_each_environments_path_to_its_listener() -> None:
    ingress = manifests(ingress_host="rw.example.org", ingress_tls_secret="rw-tls")["Ingress"]
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": str(DEFAULT_MAX_BODY_SIZE)
    }
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "rw.example.org"
    assert [
        (path["path"], path["pathType"], path["backend"]["service"]["port"]["number"])
        for path in rule["http"]["paths"]
    ] == [("/idfdev/api/v1/write", "Exact", 9201), ("/summit/api/v1/write", "Exact", 9202)]
    assert ingress["spec"]["tls"] == [{"hosts": ["rw.example.org"], "secretName": "rw-tls"}]


def test_receiver_config_command(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True, "mobu": True}, {"idfdev": {}, "summit": {}})
    env = {"INFLUXDB_URL": URL, "INFLUXDB_ORG": "rubin", "PHALANX_REPO": phalanx.url}
    run = run_cli(["receiver-config", "--listen-address", "127.0.0.1"], env)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("# Remote-write receiver, generated by rubin-monitoring")
    listeners = tomllib.loads(run.stdout)["inputs"]["http_listener_v2"]
    assert [item["service_address"] for item in listeners] == [
        "127.0.0.1:9201",
        "127.0.0.1:9202",
    ]
    described = run_cli(["receiver-config", "--output", "json"], env).json()
    assert described["listeners"][1] == {
        "environment": "summit",
        "port": 9202,
        "path": "/summit/api/v1/write",
        "username": "summit",
        "password_variable": "RECEIVER_SUMMIT_PASSWORD",
        "secret_key": "receiver-summit-password",
    }
    refused = run_cli(["receiver-config", "--tls-key", "/k"], env)
    assert refused.exit_code == 2
    assert refused.stderr == "error: --tls-cert and --tls-key go together\n"


def test_listener_is_plain_data() -> None:
    assert Listener("idfdev", 9201) == Listener("idfdev", 9201)

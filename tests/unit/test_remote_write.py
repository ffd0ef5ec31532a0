"""prometheus-config: the remote_write section of a cluster's own Prometheus."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_cli

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models import metrics
from rubin_monitoring.models.scrape import ScrapeEntry
from rubin_monitoring.models.selectors import parse_selector
from rubin_monitoring.services.catalog import read_catalog
from rubin_monitoring.services.remote_write import (
    DEFAULT_PASSWORD_FILE,
    DEFAULT_SECRET_NAME,
    check_options,
    forwarded_names,
    render_remote_write,
)
from rubin_monitoring.testing.phalanx import PhalanxRepo

ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = ["argocd", "mobu", "times-square"]


def rendered(output_format: str = "prometheus", **options: Any) -> dict[str, Any]:
    result = render_remote_write(
        "idfdev",
        NAMESPACES,
        "https://rw.example.org",
        catalog=read_catalog(None),
        output_format=output_format,
        **options,
    )
    assert result.url == "https://rw.example.org/idfdev/api/v1/write"
    document: dict[str, Any] = yaml.safe_load(result.text)
    return document


def keeps(relabel: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """Whether Prometheus's keep rules let a series with ``labels`` through (regular
    expressions anchored, as Prometheus anchors them)."""
    for rule in relabel:
        value = ";".join(labels.get(name, "") for name in rule["source_labels"])
        assert rule["action"] == "keep"
        if not re.fullmatch(rule["regex"], value):
            return False
    return True


def test_prometheus_fragment_writes_to_the_environments_listener_with_its_credential() -> None:
    (entry,) = rendered()["remote_write"]
    assert entry["url"] == "https://rw.example.org/idfdev/api/v1/write"
    assert entry["basic_auth"] == {
        "username": "idfdev",
        "password_file": "/etc/prometheus/secrets/rubin-monitoring-remote-write/password",
    }
    assert entry["queue_config"] == {
        "capacity": 10000,
        "max_samples_per_send": 2000,
        "batch_send_deadline": "5s",
        "min_shards": 1,
        "max_shards": 10,
        "min_backoff": "30ms",
        "max_backoff": "5s",
        "retry_on_http_429": True,
    }
    assert entry["metadata_config"] == {"send": False}


def test_only_enabled_namespaces_and_the_metrics_checks_and_dashboards_read_are_sent() -> None:
    relabel = rendered()["remote_write"][0]["write_relabel_configs"]
    oom = metrics.KSM_LAST_TERMINATED_REASON
    assert keeps(relabel, {"__name__": oom, "namespace": "mobu"})
    assert keeps(relabel, {"__name__": oom, "namespace": "times-square"})
    assert not keeps(relabel, {"__name__": oom, "namespace": "sasquatch"})
    assert not keeps(relabel, {"__name__": oom, "namespace": "mobu-dev"})  # anchored
    assert not keeps(relabel, {"__name__": oom})
    assert not keeps(relabel, {"__name__": "kube_pod_info", "namespace": "mobu"})
    assert not keeps(relabel, {"__name__": "up", "namespace": "mobu"})
    request = metrics.NGINX_REQUEST_DURATION
    for suffix in ("_bucket", "_sum", "_count"):
        assert keeps(relabel, {"__name__": request + suffix, "namespace": "argocd"})
    assert not keeps(relabel, {"__name__": request, "namespace": "argocd"})
    for name in metrics.forwarded_metrics():
        assert keeps(relabel, {"__name__": name, "namespace": "argocd"})


def test_kube_prometheus_stack_values_read_the_credential_from_a_secret() -> None:
    (entry,) = rendered("kube-prometheus-stack", secret_name="rw")["prometheus"]["prometheusSpec"][
        "remoteWrite"
    ]
    assert entry["basicAuth"] == {
        "username": {"name": "rw", "key": "username"},
        "password": {"name": "rw", "key": "password"},
    }
    plain = rendered()["remote_write"][0]
    assert [rule["regex"] for rule in entry["writeRelabelConfigs"]] == [
        rule["regex"] for rule in plain["write_relabel_configs"]
    ]
    assert entry["queueConfig"]["maxSamplesPerSend"] == 2000
    assert entry["queueConfig"]["maxShards"] == 10
    assert entry["queueConfig"]["retryOnRateLimit"] is True
    assert entry["metadataConfig"] == {"send": False}


def test_catalog_allowlists_of_enabled_applications_are_forwarded_too() -> None:
    entries = [
        ScrapeEntry("mobu", "api", parse_selector("app=mobu"), 9100, metrics=("mobu_*", "x?")),
        ScrapeEntry("sasquatch", "kafka", parse_selector("app=k"), 9308, metrics=("kafka_*",)),
    ]
    names = forwarded_names(entries, ["mobu"])
    assert names[-2:] == ["mobu_.*", "x."]
    assert "kafka_.*" not in names


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"receiver_url": "ftp://rw"}, "expected http(s)://host[:port]"),
        ({"receiver_url": "https://user:pw@rw"}, "no credentials"),
        ({"receiver_url": "https://rw/receive"}, "no path"),
        ({"receiver_url": "https://rw:99999"}, "bad port"),
        ({"receiver_url": "https://rw\n#"}, "expected http(s)://host[:port]"),
        ({"password_file": "secrets/pw"}, "expected an absolute path"),
        ({"secret_name": "Bad_Name"}, "is not a Kubernetes name"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], message: str) -> None:
    given: dict[str, str] = {"receiver_url": "https://rw.example.org", **options}
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_options(**given)
    with pytest.raises(ConfigError, match=re.escape(message)):
        render_remote_write(
            "idfdev",
            NAMESPACES,
            given["receiver_url"],
            password_file=given.get("password_file", DEFAULT_PASSWORD_FILE),
            secret_name=given.get("secret_name", DEFAULT_SECRET_NAME),
        )


def test_every_prometheus_metric_a_check_or_dashboard_reads_is_forwarded() -> None:
    """A dashboard cell or check template reading a Prometheus-format metric that the sending
    Prometheus does not forward would be empty on the remote-write path."""
    names = metrics.field_names()
    families = ("kube_", "argocd_", "nginx_", "jupyterhub_", "certmanager_")
    read: set[str] = set()
    for path in sorted((ROOT / "templates" / "flux").glob("*.flux")):
        for constant in re.findall(r"\bm\.([A-Z][A-Z0-9_]*)", path.read_text()):
            read.add(names[constant])
    for path in sorted((ROOT / "dashboards").glob("*.yml")):
        read.update(re.findall(r'_field == \\?"([a-z0-9_]+)', path.read_text()))
    wanted = {name for name in read if name.startswith(families)}
    forwarded = set(metrics.forwarded_metrics())
    missing = sorted(
        name
        for name in wanted
        if name not in forwarded
        and not any(name + suffix in forwarded for suffix in metrics.HISTOGRAM_SUFFIXES)
    )
    assert missing == []


def test_prometheus_config_command(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True, "mobu": True, "sasquatch": False}, {"idfdev": {}})
    env = {"PHALANX_REPO": phalanx.url}
    args = ["prometheus-config", "--environment", "idfdev", "--receiver-url", "https://rw:9201"]
    run = run_cli(args, env)
    assert run.exit_code == 0, run.stderr
    (entry,) = yaml.safe_load(run.stdout)["remote_write"]
    assert entry["url"] == "https://rw:9201/idfdev/api/v1/write"
    assert entry["write_relabel_configs"][0]["regex"] == "(argocd|mobu)"
    unknown = run_cli([*args[:2], "nowhere", *args[3:]], env)
    assert unknown.exit_code == 2
    assert "error: no environment 'nowhere' in the repository (environments: idfdev)" in (
        unknown.stderr
    )
    refused = run_cli([*args[:4], "https://rw/x"], env)
    assert refused.exit_code == 2 and refused.stderr.startswith("error: --receiver-url")

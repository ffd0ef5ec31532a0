"""The inputs.prometheus tables telegraf-config renders from the scrape catalog."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.models.scrape import RouteBy, ScrapeEntry
from rubin_monitoring.models.selectors import parse_selector
from rubin_monitoring.services.catalog import read_catalog
from rubin_monitoring.services.scrape import scrape_inputs
from rubin_monitoring.services.telegraf import render_telegraf

CATALOG = read_catalog()


def tables(namespaces: list[str], **options: Any) -> dict[str, dict[str, Any]]:
    rendered = scrape_inputs(CATALOG, namespaces, telegraf_namespace="monitoring", **options)
    by_alias = {table["alias"]: table for table in rendered}
    assert len(by_alias) == len(rendered), "aliases are unique"
    return by_alias


def test_only_enabled_applications_and_kube_state_metrics_are_scraped() -> None:
    found = tables(["mobu", "nublado", "times-square"])
    assert sorted(alias for alias in found if alias.startswith("scrape:")) == [
        "scrape:kube-state-metrics/kube-state-metrics",
        "scrape:nublado/hub",
    ]
    # Annotation discovery in each enabled namespace; none in disabled ones.
    assert sorted(alias for alias in found if alias.startswith("annotations:")) == [
        "annotations:mobu",
        "annotations:nublado/1",  # outside the hub's pods: two disjoint selectors
        "annotations:nublado/2",
        "annotations:times-square",
    ]
    assert not any("argocd" in alias or "ingress" in alias for alias in found)


def test_a_catalog_entry_is_scraped_by_the_telegraf_of_its_pods_node() -> None:
    hub = tables(["nublado"])["scrape:nublado/hub"]
    assert hub == {
        "alias": "scrape:nublado/hub",
        "metric_version": 2,
        "url_tag": "",
        "monitor_kubernetes_pods": True,
        "pod_scrape_scope": "cluster",
        "monitor_kubernetes_pods_namespace": "nublado",
        "kubernetes_field_selector": "spec.nodeName=${NODE_NAME}",
        "pod_namespace_label_name": "pod_namespace",
        "pod_annotation_exclude": ["*"],
        "monitor_kubernetes_pods_method": "settings",
        "monitor_kubernetes_pods_scheme": "http",
        "monitor_kubernetes_pods_port": 8081,
        "monitor_kubernetes_pods_path": "/nb/hub/metrics",
        "kubernetes_label_selector": "app=jupyterhub,component=hub",
        "pod_label_exclude": ["*"],
        "tagexclude": ["address", "cluster", "rubin_monitoring_bucket"],
        "tagdrop": {"quantile": ["*"]},
    }


def test_kube_state_metrics_is_found_next_to_telegraf_and_routed_by_label() -> None:
    ksm = tables(["mobu"])["scrape:kube-state-metrics/kube-state-metrics"]
    assert ksm["monitor_kubernetes_pods_namespace"] == "monitoring"
    assert ksm["monitor_kubernetes_pods_port"] == 8080
    # Its series keep their own namespace (which routes them); the exporter pod's name and
    # namespace describe nothing the checks read.
    assert ksm["tagexclude"] == [
        "address",
        "cluster",
        "rubin_monitoring_bucket",
        "pod_name",
        "pod_namespace",
    ]


def test_annotation_discovery_skips_the_pods_the_catalog_scrapes() -> None:
    found = tables(["ingress-nginx", "argocd", "mobu"])
    assert "kubernetes_label_selector" not in found["annotations:mobu"]
    assert found["annotations:mobu"]["monitor_kubernetes_pods_method"] == "annotations"
    assert found["annotations:mobu"]["pod_label_exclude"] == ["*"]
    argocd = found["annotations:argocd"]["kubernetes_label_selector"]
    assert argocd == (
        "app.kubernetes.io/name!=argocd-application-controller,"
        "app.kubernetes.io/name!=argocd-notifications-controller,"
        "app.kubernetes.io/name!=argocd-repo-server,app.kubernetes.io/name!=argocd-server"
    )
    # ingress-nginx's two-requirement selector: two disjoint annotation inputs.
    rendered = scrape_inputs(CATALOG, ["ingress-nginx"], telegraf_namespace="monitoring")
    selectors = [
        (table["alias"], table.get("kubernetes_label_selector"))
        for table in rendered
        if table["alias"].startswith("annotations:ingress-nginx")
    ]
    assert selectors == [
        ("annotations:ingress-nginx/1", "app.kubernetes.io/component!=controller"),
        (
            "annotations:ingress-nginx/2",
            "app.kubernetes.io/component=controller,app.kubernetes.io/name!=ingress-nginx",
        ),
    ]
    assert tables(["mobu"], annotations=False).keys() == {
        "scrape:kube-state-metrics/kube-state-metrics"
    }


def test_listed_pod_labels_metrics_and_measurement_are_honoured() -> None:
    entry = ScrapeEntry(
        "sasquatch",
        "exporter",
        parse_selector("app=exporter"),
        9308,
        scheme="https",
        measurement="kafka",
        route_by=RouteBy.LABEL,
        metrics=("kafka_topic_*",),
        tags=("app.kubernetes.io/version",),
    )
    (table, annotations) = scrape_inputs([entry], ["sasquatch"], telegraf_namespace="m")
    assert table["pod_label_include"] == ["app.kubernetes.io/version"]
    assert "pod_label_exclude" not in table
    assert (table["name_override"], table["fieldinclude"]) == ("kafka", ["kafka_topic_*"])
    assert table["monitor_kubernetes_pods_scheme"] == "https"
    assert annotations["kubernetes_label_selector"] == "app!=exporter"


def test_an_application_that_is_no_namespace_name_gets_no_annotation_discovery() -> None:
    assert "annotations:Bad.App" not in tables(["Bad.App", "mobu"])


def test_a_catalog_too_large_to_complement_is_a_config_error() -> None:
    wide = [
        ScrapeEntry("mobu", f"c{i}", parse_selector(",".join(f"k{i}{j}=v" for j in range(4))), 80)
        for i in range(4)
    ]
    with pytest.raises(ConfigError, match="namespace mobu: the complement"):
        scrape_inputs(wide, ["mobu"], telegraf_namespace="monitoring")


def test_the_whole_configuration_parses_as_telegraf_toml() -> None:
    inventory = Inventory(
        environments=(Environment("idfdev", None, "f", ("argocd", "ingress-nginx", "mobu")),)
    )
    text = render_telegraf(
        inventory, "idfdev", "https://influxdb", "rubin", secret_name="s", catalog=CATALOG
    ).text
    config = tomllib.loads(text)
    aliases = [table["alias"] for table in config["inputs"]["prometheus"]]
    assert aliases[:5] == [
        "scrape:argocd/application-controller",
        "scrape:argocd/repo-server",
        "scrape:argocd/server",
        "scrape:argocd/notifications",
        "scrape:ingress-nginx/controller",
    ]

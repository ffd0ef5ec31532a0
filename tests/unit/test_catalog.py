"""The scrape catalog: the shipped file, and a user's file that adds, replaces or removes
entries, with one-line errors naming file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.cli import run_cli

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.scrape import RouteBy
from rubin_monitoring.services.catalog import read_catalog

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "phalanx"


def by_key(user_file: str | None = None) -> dict[tuple[str, str], object]:
    return {entry.key: entry for entry in read_catalog(user_file)}


def test_the_shipped_catalog_covers_the_known_exporters() -> None:
    entries = read_catalog()
    ports = {entry.key: entry.port for entry in entries}
    assert ports == {
        ("argocd", "application-controller"): 8082,
        ("argocd", "repo-server"): 8084,
        ("argocd", "server"): 8083,
        ("argocd", "notifications"): 9001,
        ("ingress-nginx", "controller"): 10254,
        ("nublado", "hub"): 8081,
        ("cert-manager", "controller"): 9402,
        ("kube-state-metrics", "kube-state-metrics"): 8080,
    }
    routed_by_label = [entry.key for entry in entries if entry.route_by is RouteBy.LABEL]
    assert routed_by_label == [("kube-state-metrics", "kube-state-metrics")]
    assert [entry.key for entry in entries if entry.with_telegraf] == routed_by_label
    assert all(entry.measurement == "prometheus" and not entry.tags for entry in entries)
    hub = next(entry for entry in entries if entry.application == "nublado")
    assert (hub.path, str(hub.selector)) == ("/nb/hub/metrics", "app=jupyterhub,component=hub")
    assert hub.source.endswith("catalog/scrape.yaml:48")


def test_a_user_file_adds_replaces_and_removes_entries(tmp_path: Path) -> None:
    user = tmp_path / "catalog.yaml"
    user.write_text(
        "entries:\n"
        "  - application: nublado\n"  # replaces the shipped hub entry
        "    component: hub\n"
        "    selector: app.kubernetes.io/name=hub\n"
        "    port: 8081\n"
        "    path: /hub/metrics\n"
        "    tags: [app.kubernetes.io/version]\n"
        "  - application: argocd\n"
        "    component: notifications\n"
        "    enabled: false\n"
        "  - application: sasquatch\n"  # a new one
        "    component: kafka-exporter\n"
        "    selector: app.kubernetes.io/name in (kafka-exporter)\n"
        "    port: 9308\n"
        "    scheme: https\n"
        "    metrics: [kafka_consumergroup_lag, kafka_topic_*]\n"
    )
    entries = by_key(str(user))
    assert ("argocd", "notifications") not in entries
    assert ("argocd", "server") in entries
    hub = read_catalog(str(user))
    replaced = next(entry for entry in hub if entry.key == ("nublado", "hub"))
    assert (replaced.path, replaced.tags) == ("/hub/metrics", ("app.kubernetes.io/version",))
    assert replaced.source == f"{user}:2"
    added = next(entry for entry in hub if entry.application == "sasquatch")
    assert (added.scheme, added.metrics) == ("https", ("kafka_consumergroup_lag", "kafka_topic_*"))
    # Shipped order first (the replaced entry in its place), then the new ones.
    assert [entry.key for entry in hub][-1] == ("sasquatch", "kafka-exporter")


ENTRY = "  - application: mobu\n    component: api\n    selector: app=mobu\n    port: 8080\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ENTRY + "    port: 1\n",
            r"line 6, column 5: invalid YAML: duplicate key 'port' \(first on line 5\)",
        ),
        (
            ENTRY.replace("port: 8080", 'port: "8080"'),
            r"line 5: entries\[0\]\.port: expected an integer from 1 to 65535, got a string",
        ),
        (
            ENTRY.replace("port: 8080", "port: 70000"),
            r"line 5: entries\[0\]\.port: expected an integer from 1 to 65535$",
        ),
        (
            ENTRY.replace("app=mobu", "'app=mobu,'"),
            r"line 4: entries\[0\]\.selector: not a valid label selector: an empty requirement",
        ),
        (ENTRY + "    color: red\n", r"line 6: entries\[0\]\.color: unknown field color"),
        (ENTRY + "    route_by: node\n", r"line 6: entries\[0\]\.route_by: expected pod or label"),
        (ENTRY + "    tags: [ok, -bad]\n", r"entries\[0\]\.tags: every item must be a pod label"),
        (ENTRY + "    path: metrics\n", r"entries\[0\]\.path: expected a URL path starting"),
        (
            ENTRY.replace("application: mobu", "application: Mobu"),
            r"line 2: entries\[0\]\.application: expected an application name",
        ),
        (
            ENTRY.replace("    port: 8080\n", ""),
            r"line 2: entries\[0\]: field port is missing",
        ),
        (ENTRY + ENTRY, r"line 6: entries\[1\]: application mobu component api again \(first"),
        ("entries: {}\n", r"line 1: entries: expected a list of entries, got a mapping"),
        ("entries:\n  - 3\n", r"line 1: entries\[0\]: expected a mapping, got an integer"),
        ("scrape: []\n", r"line 1: unknown top-level field"),
    ],
)
def test_bad_user_files_are_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("entries:\n" + text if not text.startswith(("entries", "scrape")) else text)
    with pytest.raises(ConfigError) as raised:
        read_catalog(str(user))
    shown = str(raised.value)
    assert "\n" not in shown
    assert shown.startswith(f"{user}: line ")
    assert re.search(message, shown), shown


def test_a_missing_user_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"SCRAPE_CATALOG: /nonexistent.yaml: no such file"):
        read_catalog("/nonexistent.yaml")


def test_cli_reads_scrape_catalog_and_exits_2_on_a_bad_one(tmp_path: Path) -> None:
    env = {
        "INFLUXDB_URL": "https://influxdb.example.org",
        "INFLUXDB_ORG": "rubin",
        "PHALANX_REPO": str(EXAMPLES),
    }
    good = tmp_path / "good.yaml"
    good.write_text(
        "entries:\n  - {application: mobu, component: api, selector: app=mobu, port: 8080}\n"
    )
    run = run_cli(
        ["telegraf-config", "--environment", "idfdev"], {**env, "SCRAPE_CATALOG": str(good)}
    )
    assert run.exit_code == 0, run.stderr
    assert 'alias = "scrape:mobu/api"' in run.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - {application: mobu, component: api, selector: app=mobu}\n")
    run = run_cli(["telegraf-config", "--environment", "idfdev", "--scrape-catalog", str(bad)], env)
    assert run.exit_code == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bad}: line 2: entries[0]: field port is missing"]
    assert run.stdout == ""

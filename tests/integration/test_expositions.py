"""The recorded expositions (``data/exposition/``) read by the real Telegraf exactly as a scrape
of the real program would be: ``inputs.prometheus`` with ``metric_version = 2`` turns each into
measurement ``prometheus`` with the fields and tags that :mod:`rubin_monitoring.models.metrics`
names, so the checks and dashboards built on those names read what the programs export."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from support.exposition import EXPOSITIONS, defaults, exposition_server, render
from support.telegraf import run_telegraf_once

from rubin_monitoring.models import metrics

pytestmark = pytest.mark.integration

# What each recording must give, by the names of models.metrics: field -> its series' tags.
EXPECTED = {
    "argocd-application-controller": {
        metrics.ARGOCD_APP_INFO: {
            "namespace", "name", "project", "autosync_enabled", "repo", "dest_server",
            "dest_namespace", "sync_status", "health_status", "operation",
        },
        metrics.ARGOCD_APP_SYNC_TOTAL: {
            "namespace", "name", "project", "dest_server", "phase", "dry_run",
        },
        f"{metrics.ARGOCD_APP_RECONCILE}_bucket": {"namespace", "dest_server", "le"},
    },
    "ingress-nginx-controller": {
        metrics.NGINX_REQUESTS: {
            # canary="" is no tag: line protocol has no empty tag values.
            "status", "method", "path", "namespace", "ingress", "service", "host",
            "controller_namespace", "controller_class", "controller_pod",
        },
        f"{metrics.NGINX_REQUEST_DURATION}_bucket": {
            "status", "method", "path", "namespace", "ingress", "service", "host",
            "controller_namespace", "controller_class", "controller_pod", "le",
        },
    },
    "jupyterhub-hub": {
        metrics.JUPYTERHUB_RUNNING_SERVERS: set(),
        metrics.JUPYTERHUB_TOTAL_USERS: set(),
        metrics.JUPYTERHUB_ACTIVE_USERS: {"period"},
        f"{metrics.JUPYTERHUB_SPAWN_DURATION}_count": {"status"},
    },
    "cert-manager-controller": {
        metrics.CERTMANAGER_EXPIRATION: {
            "name", "namespace", "issuer_name", "issuer_kind", "issuer_group",
        },
        metrics.CERTMANAGER_READY_STATUS: {
            "name", "namespace", "condition", "issuer_name", "issuer_kind", "issuer_group",
        },
    },
}  # fmt: skip


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """A line of Telegraf's influx output (no escapes occur in these recordings)."""
    series, field_set, _ = line.rsplit(" ", 2)
    measurement, *pairs = series.split(",")
    tags = dict(pair.split("=", 1) for pair in pairs)
    fields = dict(pair.split("=", 1) for pair in field_set.split(","))
    return measurement, tags, fields


def test_every_recording_is_read_by_telegraf_into_the_shared_names(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    assert {path.stem for path in EXPOSITIONS.glob("*.prom")} == set(EXPECTED)
    output = tmp_path / "points.out"
    with (
        exposition_server("argocd-application-controller") as argocd,
        exposition_server("ingress-nginx-controller") as ingress,
        exposition_server("jupyterhub-hub", path="/nb/hub/metrics") as hub,
        exposition_server("cert-manager-controller") as certs,
    ):
        config = {
            "agent": {"omit_hostname": True},
            "inputs": {
                "prometheus": [
                    {"urls": [server.url], "metric_version": 2, "url_tag": "", "tags": {"r": name}}
                    for name, server in (
                        ("argocd-application-controller", argocd),
                        ("ingress-nginx-controller", ingress),
                        ("jupyterhub-hub", hub),
                        ("cert-manager-controller", certs),
                    )
                ]
            },
            "outputs": {"file": [{"files": [str(output)], "data_format": "influx"}]},
        }
        done = run_telegraf_once(tomli_w.dumps(config))
        assert done.returncode == 0, done.stderr
        assert " E! " not in done.stderr, done.stderr
        assert (argocd.scrapes, ingress.scrapes, hub.scrapes, certs.scrapes) == (1, 1, 1, 1)

    found: dict[str, dict[str, set[str]]] = {name: {} for name in EXPECTED}
    for line in output.read_text().splitlines():
        measurement, tags, fields = parse_line(line)
        assert measurement == metrics.PROMETHEUS
        recording = tags.pop("r")
        for field in fields:
            found[recording].setdefault(field, set()).update(tags)
    for recording, expected in EXPECTED.items():
        for field, names in expected.items():
            assert field in found[recording], (recording, field, sorted(found[recording]))
            assert found[recording][field] == names, (recording, field)


def test_values_are_chosen_by_the_test_and_relative_times_resolved() -> None:
    text = render(
        "cert-manager-controller",
        {"times_square_expiry": "now+2d", "nublado_ready_false": 0},
        now=1_700_000_000,
    )
    assert 'name="times-square-tls",namespace="times-square"} 1.7001728e+09' in text
    assert "${" not in text
    assert defaults("ingress-nginx-controller")["times_square_5xx"] == "250"
    with pytest.raises(KeyError, match="no value named"):
        render("argocd-application-controller", {"mobu_helth": "Degraded"})

"""Every measurement and field a check template or a dashboard query names is one that
models.metrics declares (so a renamed metric breaks this test, not a chart), the templates name
none of their own, and the dashboards read the buckets the collectors write."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rubin_monitoring.models import metrics
from rubin_monitoring.models.checks import (
    BUCKET_CHECKS,
    CERT_MANAGER_BUCKET,
    FLEET_CHECKS,
    SOURCE_CHECKS,
    CheckSettings,
)
from rubin_monitoring.models.inventory import bucket_name
from rubin_monitoring.services.catalog import read_catalog
from rubin_monitoring.services.checks import (
    render_check,
    render_fleet_check,
    render_silent_check,
)
from rubin_monitoring.storage.alerts import MEASUREMENT as ALERT_MEASUREMENT

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "flux"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.yml"))
COMPARED = re.compile(r'r\._(measurement|field) == "([^"]*)"')
HISTOGRAMS = (
    metrics.ARGOCD_APP_RECONCILE,
    metrics.NGINX_REQUEST_DURATION,
    metrics.JUPYTERHUB_SPAWN_DURATION,
    metrics.JUPYTERHUB_REQUEST_DURATION,
)
# The alert contract (README, "Alert checks"): the findings the checks write and the alerts
# dashboard reads.
ALERT_NAMES = {ALERT_MEASUREMENT, "message", "value"}


def declared() -> set[str]:
    """Every name models.metrics declares, and the series a declared histogram is written as."""
    names = set(metrics.field_names().values()) | set(metrics.KSM_METRICS)
    names |= {f"{name}_{part}" for name in HISTOGRAMS for part in ("bucket", "sum", "count")}
    return names


def rendered_checks() -> dict[str, str]:
    """Every check as taskmaker renders it (cert_expiry with the cert-manager bucket)."""
    settings = CheckSettings()
    scripts = {
        check: render_check(check, bucket="mobu", task_name="t", offset="0s", settings=settings)
        for check in (*BUCKET_CHECKS, *SOURCE_CHECKS)
    }
    for check in FLEET_CHECKS:
        scripts[check] = render_fleet_check(
            check, task_name="t", offset="0s", settings=settings, applications=["cert-manager"]
        )
    scripts["silent"] = render_silent_check(
        cluster="idfdev", buckets=["mobu"], task_name="t", offset="0s", settings=settings
    )
    return scripts


def dashboard_queries() -> dict[str, str]:
    """Every cell's and variable's query, by file and name."""
    queries = {}
    for path in DASHBOARDS:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            spec: dict[str, Any] = doc["spec"]
            if doc["kind"] == "Variable" and spec["type"] == "query":
                queries[f"{path.name}: variable {spec['name']}"] = spec["query"]
            for chart in spec.get("charts", []):
                for index, query in enumerate(chart["queries"]):
                    queries[f"{path.name}: {chart['name']} #{index}"] = query["query"]
    return queries


def names_compared(text: str) -> set[str]:
    return {name for _, name in COMPARED.findall(text)}


def test_every_check_reads_only_declared_measurements_and_fields() -> None:
    known = declared()
    for check, script in rendered_checks().items():
        named = names_compared(script)
        # The pattern does find what a check reads (silent reads any point of a cluster).
        assert named or check == "silent", check
        assert named <= known, (check, named - known)


def test_check_templates_name_no_measurement_or_field_of_their_own() -> None:
    """Templates take every measurement and field from the Jinja context ``m``."""
    for template in sorted(TEMPLATES.glob("*.flux")):
        literal = names_compared(template.read_text())
        assert literal == set(), (template.name, literal)


def test_a_renamed_metric_changes_what_the_checks_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered checks follow models.metrics (through the context), not a copy."""
    monkeypatch.setattr(metrics, "KSM_JOB_FAILED", "kube_job_failed_renamed")
    script = render_check(
        "job_failed", bucket="mobu", task_name="t", offset="0s", settings=CheckSettings()
    )
    assert '"kube_job_failed_renamed"' in script
    assert '"kube_job_failed"' not in script


def test_every_dashboard_query_reads_only_declared_measurements_and_fields() -> None:
    known = declared() | ALERT_NAMES
    queries = dashboard_queries()
    assert len(queries) > 20
    for where, query in queries.items():
        named = names_compared(query)
        assert named <= known, (where, named - known)


def test_dashboards_read_the_buckets_their_applications_get() -> None:
    """A constant bucket variable names the bucket bucketmaker makes for the application the
    scrape catalog scrapes those metrics from (ingress-nginx's is ingress_nginx)."""
    constants = {}
    for path in DASHBOARDS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Variable" and doc["spec"]["type"] == "constant":
                constants[doc["spec"]["name"]] = doc["spec"]["values"]
    scraped = {entry.application for entry in read_catalog()}
    for variable, application in (
        ("ingress_bucket", "ingress-nginx"),
        ("argocd_bucket", "argocd"),
        ("nublado_bucket", "nublado"),
    ):
        assert application in scraped
        assert constants[variable] == [bucket_name(application)], variable
    assert constants["ingress_bucket"] == ["ingress_nginx"]
    assert constants["influxdb_bucket"] == ["influxdb_"]
    # The checks that read those applications' metrics read the same buckets.
    assert {
        "argocd_app": bucket_name("argocd"),
        "http_5xx": bucket_name("ingress-nginx"),
    } == SOURCE_CHECKS
    assert bucket_name("cert-manager") == CERT_MANAGER_BUCKET

"""The checks of the Prometheus half (oom_killed, job_failed, argocd_app, http_5xx,
cert_expiry): their settings, scopes, tasks and what their scripts are rendered with."""

from __future__ import annotations

import re

import pytest

from rubin_monitoring.config import TASKS, load_settings, parse_ignore_rules
from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.checks import (
    DEFAULT_CHECKS,
    DEFAULT_SEVERITY,
    CheckSettings,
    check_scope,
)
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.models.tasks import Scope
from rubin_monitoring.services.checks import bucket_aliases, render_check, render_fleet_check
from rubin_monitoring.services.tasks import desired_tasks

NEW_CHECKS = ("oom_killed", "job_failed", "argocd_app", "http_5xx", "cert_expiry")


def settings_from(environ: dict[str, str]) -> CheckSettings:
    return load_settings({}, TASKS, environ=environ).checks


def fleet(*environments: tuple[str, list[str]]) -> Inventory:
    return Inventory(
        tuple(
            Environment(name, f"{name}.example", f"values-{name}.yaml", tuple(apps))
            for name, apps in environments
        )
    )


# Settings


def test_new_settings_and_their_defaults() -> None:
    defaults = settings_from({})
    assert (defaults.argocd_sync_grace, defaults.cert_expiry_warning) == ("30m", "21d")
    assert (defaults.http_5xx_threshold, defaults.http_5xx_min_rate) == (5.0, 0.2)
    given = settings_from(
        {
            "ARGOCD_SYNC_GRACE": "1h",
            "HTTP_5XX_THRESHOLD": "12.5",
            "HTTP_5XX_MIN_RATE": "0",
            "CERT_EXPIRY_WARNING": "7d",
        }
    )
    assert (given.argocd_sync_grace, given.http_5xx_threshold) == ("1h", 12.5)
    assert (given.http_5xx_min_rate, given.cert_expiry_warning) == (0.0, "7d")
    # The defaults: every new check but job_failed, which costs a task per application.
    assert set(DEFAULT_CHECKS.split(",")) & set(NEW_CHECKS) == set(NEW_CHECKS) - {"job_failed"}
    assert defaults.checks == tuple(DEFAULT_CHECKS.split(","))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HTTP_5XX_THRESHOLD": "0"}, "HTTP_5XX_THRESHOLD (--http-5xx-threshold): percentage '0'"),
        ({"HTTP_5XX_THRESHOLD": "101"}, "at most 100"),
        ({"HTTP_5XX_THRESHOLD": "nan"}, "percentage 'nan'"),
        ({"HTTP_5XX_MIN_RATE": "-1"}, "HTTP_5XX_MIN_RATE (--http-5xx-min-rate): rate '-1'"),
        ({"HTTP_5XX_MIN_RATE": "inf"}, "rate 'inf'"),
        ({"HTTP_5XX_MIN_RATE": "fast"}, "rate 'fast' is not a number"),
        ({"ARGOCD_SYNC_GRACE": "0s"}, "ARGOCD_SYNC_GRACE (--argocd-sync-grace): '0s'"),
        ({"CERT_EXPIRY_WARNING": "3 weeks"}, "CERT_EXPIRY_WARNING (--cert-expiry-warning)"),
    ],
)
def test_bad_new_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        settings_from(env)
    assert caught.value.exit_code == 2


def test_ignore_pods_applies_to_oom_killed_but_not_to_checks_without_pods() -> None:
    (rule,) = parse_ignore_rules("oom_killed:nublado/prepull-*")
    script = render_check(
        "oom_killed", bucket="nublado", task_name="t", offset="0s",
        settings=CheckSettings(ignore=(rule,)),
    )  # fmt: skip
    assert "r.pod_name =~ /^prepull-.*$/" in script
    for check in ("job_failed", "argocd_app", "cert_expiry"):
        with pytest.raises(ValueError, match="not a check of containers"):
            parse_ignore_rules(f"{check}:nublado/x-*")


# Scopes and tasks


def test_scopes_severities_and_tasks_from_the_inventory() -> None:
    assert [check_scope(check) for check in NEW_CHECKS] == [
        Scope.BUCKET, Scope.BUCKET, Scope.BUCKET, Scope.BUCKET, Scope.FLEET,
    ]  # fmt: skip
    assert [DEFAULT_SEVERITY[check] for check in NEW_CHECKS] == [
        "warning", "warning", "warning", "critical", "warning",
    ]  # fmt: skip
    inventory = fleet(
        ("idfdev", ["argocd", "ingress-nginx", "times-square"]), ("summit", ["argocd", "mobu"])
    )
    specs = desired_tasks(inventory, CheckSettings(checks=NEW_CHECKS))
    assert sorted((s.kind.value, s.scope, s.check) for s in specs) == sorted(
        [
            *(("bucket", b, c) for b in ("argocd", "ingress_nginx", "mobu", "times_square")
              for c in ("oom_killed", "job_failed")),
            ("bucket", "argocd", "argocd_app"),
            ("bucket", "ingress_nginx", "http_5xx"),
            ("fleet", "certificates", "cert_expiry"),
        ]
    )  # fmt: skip
    by_name = {spec.name: spec for spec in specs}
    assert by_name["certificates cert_expiry"].description.endswith(
        "(managed-by=rubin-monitoring fleet=certificates check=cert_expiry)"
    )
    # times-square's findings are tagged with its bucket: the names that differ are rendered.
    http = by_name["ingress_nginx http_5xx"].flux
    assert 'if name == "times-square" then\n        "times_square"' in http
    assert "ingress-nginx" in http  # its bucket differs from its name, too
    # No cert-manager in the inventory: cert_expiry reads the control planes only.
    cert = by_name["certificates cert_expiry"].flux
    assert 'from(bucket: "cert_manager")' not in cert
    assert 'from(bucket: "probes_")' in cert


def test_source_checks_need_their_application() -> None:
    """No Argo CD, no ingress-nginx enabled anywhere: no argocd_app, no http_5xx task."""
    specs = desired_tasks(fleet(("idfdev", ["mobu"])), CheckSettings(checks=NEW_CHECKS))
    assert sorted(spec.check for spec in specs) == ["cert_expiry", "job_failed", "oom_killed"]
    # Bucket names alone (no inventory) work too.
    names = desired_tasks(["argocd", "cert_manager"], CheckSettings(checks=NEW_CHECKS))
    assert {(s.scope, s.check) for s in names} >= {("argocd", "argocd_app")}
    (cert,) = [s for s in names if s.check == "cert_expiry"]
    assert 'from(bucket: "cert_manager")' in cert.flux


def test_bucket_aliases_are_the_names_that_differ() -> None:
    assert bucket_aliases(["mobu", "times-square", "cert-manager", "times-square"]) == [
        ("cert-manager", "cert_manager"),
        ("times-square", "times_square"),
    ]
    plain = render_check(
        "argocd_app", bucket="argocd", task_name="t", offset="0s", settings=CheckSettings()
    )
    assert "bucketOf = (name) => name\n" in plain


# What the scripts are rendered with


def test_settings_reach_the_scripts() -> None:
    settings = CheckSettings(
        window="20m",
        argocd_sync_grace="45m",
        http_5xx_threshold=12.5,
        http_5xx_min_rate=0.05,
        cert_expiry_warning="14d",
    )

    def render(check: str, bucket: str) -> str:
        return render_check(check, bucket=bucket, task_name="t", offset="0s", settings=settings)

    argocd = render("argocd_app", "argocd")
    # The sync grace, and a look back to a grace before the window.
    assert "range(start: -1h5m, stop: -45m)" in argocd and "range(start: -45m)" in argocd
    assert 'graceText = "45m"' in argocd
    http = render("http_5xx", "ingress_nginx")
    assert "threshold = 12.5\n" in http and "minimumRate = 0.05\n" in http
    assert "windowSeconds = 1200.0\n" in http
    oom = render("oom_killed", "mobu")
    assert "windowSeconds = 1200.0\n" in oom and "range(start: -20m)" in oom
    cert = render_fleet_check(
        "cert_expiry", task_name="t", offset="0s", settings=settings,
        applications=["cert-manager"],
    )  # fmt: skip
    assert "warningSeconds = 1209600\n" in cert
    assert 'from(bucket: "cert_manager")' in cert and 'from(bucket: "probes_")' in cert
    assert 'r.source == "https://kubernetes.default.svc:443"' in cert
    # tls_expiry leaves the control planes to cert_expiry.
    tls = render_fleet_check("tls_expiry", task_name="t", offset="0s", settings=settings)
    assert 'r.source != "https://kubernetes.default.svc:443"' in tls


@pytest.mark.parametrize("check", NEW_CHECKS)
def test_scripts_write_the_alert_contract(check: str) -> None:
    if check == "cert_expiry":
        script = render_fleet_check(
            check, task_name="x", offset="1m", settings=CheckSettings(),
            applications=["cert-manager"],
        )  # fmt: skip
    else:
        script = render_check(
            check, bucket="b", task_name="x", offset="1m", settings=CheckSettings()
        )
    assert script.splitlines()[0] == 'option task = {name: "x", every: 5m, offset: 1m}'
    assert script.count("option task") == 1
    assert f'checkName = "{check}"' in script
    assert f'severity = "{DEFAULT_SEVERITY[check]}"' in script
    assert 'tagColumns: ["check", "application", "cluster", "severity", "dedup_key"]' in script
    assert "fieldFn: (r) => ({message: r.message, value: r.value})" in script
    assert "org:" not in script and "orgID" not in script
    assert not re.search(r"^\s*import\b", script, re.MULTILINE)
    # No tag only the scrape path adds (a remote-written series lacks it): the scraped pod's
    # name is pod_name, which oom_killed writes into the alert itself, from kube-state-metrics'
    # own pod label.
    read = script.split("findings\n    |> map(")[0]
    assert "r.pod_namespace" not in read
    if check != "oom_killed":
        assert "pod_name" not in read

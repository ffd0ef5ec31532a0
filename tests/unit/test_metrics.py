"""models.metrics: the names the generator, the checks and the dashboards share."""

from __future__ import annotations

from rubin_monitoring.models import metrics


def test_field_names_lists_every_name_once() -> None:
    names = metrics.field_names()
    assert names["PROMETHEUS"] == "prometheus"
    assert names["ARGOCD_APP_INFO"] == "argocd_app_info"
    assert names["KUBERNETES_POD_CONTAINER"] == "kubernetes_pod_container"
    assert "field_names" not in names
    assert all(isinstance(value, str) for value in names.values())


def test_checks_may_not_rely_on_scrape_only_tags() -> None:
    assert metrics.SCRAPE_ONLY_TAGS == ("pod_name", "pod_namespace")
    assert metrics.CLUSTER not in metrics.SCRAPE_ONLY_TAGS
    assert metrics.NAMESPACE not in metrics.SCRAPE_ONLY_TAGS

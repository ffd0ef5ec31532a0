"""The kube-state-metrics arguments and RBAC rules in ``models.metrics``."""

from __future__ import annotations

import re

from support.kubestate import parse_exposition

from rubin_monitoring.models.metrics import (
    KSM_METRIC_ALLOWLIST,
    KSM_METRICS,
    KSM_RESOURCES,
    ksm_arguments,
    ksm_rbac_rules,
)


def test_arguments_name_the_resources_and_the_anchored_allowlist() -> None:
    resources, allowlist = ksm_arguments()
    assert resources == "--resources=pods,jobs,cronjobs"
    assert allowlist.startswith("--metric-allowlist=^kube_pod_container_status_last_terminated_")
    patterns = allowlist.removeprefix("--metric-allowlist=").split(",")
    assert tuple(patterns) == KSM_METRIC_ALLOWLIST
    assert len(set(KSM_METRICS)) == len(KSM_METRICS)
    # Each pattern (kube-state-metrics matches them unanchored) lets in its own name only.
    longer = [f"{name}_reason" for name in KSM_METRICS] + [f"x{name}" for name in KSM_METRICS]
    for pattern, name in zip(patterns, KSM_METRICS, strict=True):
        assert re.search(pattern, name)
        assert not any(re.search(pattern, other) for other in longer), pattern


def test_rbac_rules_list_and_watch_exactly_the_resources() -> None:
    rules = ksm_rbac_rules()
    assert rules == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": ["list", "watch"]},
    ]
    assert {r for rule in rules for r in rule["resources"]} == set(KSM_RESOURCES)
    rules[0]["verbs"].append("get")  # a fresh copy each call
    assert ksm_rbac_rules()[0]["verbs"] == ["list", "watch"]


def test_parse_exposition_reads_labels_values_and_escapes() -> None:
    text = (
        "# HELP kube_job_status_failed The number of pods which reached Phase Failed.\n"
        "# TYPE kube_job_status_failed gauge\n"
        'kube_job_status_failed{namespace="a",job_name="j",reason="BackoffLimitExceeded"} 1\n'
        'kube_cronjob_info{namespace="a",cronjob="c",schedule="0 3 * * *",x="q\\"\\\\"} 1\n'
        "kube_job_status_active 0 1700000000000\n"
    )
    samples = parse_exposition(text)
    assert [(s.name, dict(s.labels), s.value) for s in samples] == [
        (
            "kube_job_status_failed",
            {"namespace": "a", "job_name": "j", "reason": "BackoffLimitExceeded"},
            1.0,
        ),
        (
            "kube_cronjob_info",
            {"namespace": "a", "cronjob": "c", "schedule": "0 3 * * *", "x": 'q"\\'},
            1.0,
        ),
        ("kube_job_status_active", {}, 0.0),
    ]

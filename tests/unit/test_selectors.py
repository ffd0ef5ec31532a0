"""Kubernetes label selectors: parsing, printing, and complements that never scrape a pod twice."""

from __future__ import annotations

import itertools

import pytest

from rubin_monitoring.models.selectors import (
    Selector,
    SelectorError,
    complement,
    parse_selector,
)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("app=hub", "app=hub"),
        ("app==hub", "app=hub"),
        (" tier in (b, a,b) , app!=x ", "app!=x,tier in (a,b)"),
        ("app.kubernetes.io/name=argocd-server", "app.kubernetes.io/name=argocd-server"),
        ("canary,!legacy", "canary,!legacy"),
        ("env notin (dev)", "env notin (dev)"),
        ("app=", "app="),
    ],
)
def test_parse_and_print_canonically(text: str, printed: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == printed
    assert parse_selector(printed) == selector


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("app=hub,", "empty requirement"),
        ("replicas>1", "gt/lt"),
        ("tier in (a", "without its"),
        ("tier in ()", "empty set"),
        ("-bad=x", "not a valid label key"),
        ("app=bad value", "not a requirement"),
        ("app=" + "x" * 64, "not a valid label value"),
        ("Example.COM/app=x", "not a valid label key"),
    ],
)
def test_invalid_selectors_say_why(text: str, problem: str) -> None:
    with pytest.raises(SelectorError, match=problem):
        parse_selector(text)


# Every label set over two keys with values from {absent, "1", "2"}: small enough to try all.
KEYS = ("a", "b")
LABEL_SETS = [
    {key: value for key, value in zip(KEYS, values, strict=True) if value is not None}
    for values in itertools.product([None, "1", "2"], repeat=len(KEYS))
]


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["a=1"],
        ["a=1,b=2"],
        ["a in (1,2),!b"],
        ["a=1", "b notin (1)"],
        ["a", "b=2,a!=2"],
        ["a=1,b", "a=2,b=1", "!a"],
    ],
)
def test_complement_selects_each_other_pod_exactly_once(texts: list[str]) -> None:
    selectors = [parse_selector(text) for text in texts]
    parts = complement(selectors)
    for labels in LABEL_SETS:
        covered = any(selector.matches(labels) for selector in selectors)
        matching = [part for part in parts if part.matches(labels)]
        assert len(matching) == (0 if covered else 1), (labels, [str(p) for p in parts])


def test_complement_of_nothing_is_everything_and_of_everything_nothing() -> None:
    assert complement([]) == [Selector(())]
    assert complement([parse_selector("a"), parse_selector("!a")]) == []


def test_complement_of_the_catalogs_selectors_is_short() -> None:
    ingress = parse_selector(
        "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller"
    )
    assert [str(part) for part in complement([ingress])] == [
        "app.kubernetes.io/component!=controller",
        "app.kubernetes.io/component=controller,app.kubernetes.io/name!=ingress-nginx",
    ]
    argocd = [parse_selector(f"app.kubernetes.io/name=argocd-{name}") for name in "abcd"]
    (single,) = complement(argocd)
    assert len(single.requirements) == 4


def test_too_large_a_complement_is_refused() -> None:
    wide = [parse_selector(",".join(f"k{i}{j}=v" for j in range(4))) for i in range(4)]
    with pytest.raises(SelectorError, match="more than 64 selectors"):
        complement(wide)

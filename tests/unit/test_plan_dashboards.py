from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.models.changes import Action
from rubin_monitoring.models.dashboards import (
    DiffEntry,
    ObservedDashboards,
    ObservedStack,
    StackResource,
    TemplateObject,
)
from rubin_monitoring.services.dashboards import normalized, plan_dashboards
from rubin_monitoring.storage.templates import diff_entries, packaged_dashboards, read_templates


def dashboard(meta: str, title: str = "Title", **spec: Any) -> TemplateObject:
    document = {
        "apiVersion": "influxdata.com/v2alpha1",
        "kind": "Dashboard",
        "metadata": {"name": meta},
        "spec": {"name": title, "charts": [{"kind": "Xy", "name": "a", "width": 4}], **spec},
    }
    return TemplateObject("Dashboard", meta, title, f"{meta}.yml", document)


def variable(meta: str, name: str) -> TemplateObject:
    document = {
        "apiVersion": "influxdata.com/v2alpha1",
        "kind": "Variable",
        "metadata": {"name": meta},
        "spec": {"name": name, "type": "constant", "values": ["x"]},
    }
    return TemplateObject("Variable", meta, name, f"{meta}.yml", document)


def observed(
    stack: ObservedStack | None,
    diff: list[DiffEntry],
    exported: list[TemplateObject] = (),  # type: ignore[assignment]
    variables: dict[str, str] | None = None,
) -> ObservedDashboards:
    docs = {obj.key: obj.document for obj in exported}
    return ObservedDashboards(stack, (), docs, tuple(diff), variables or {})


def test_no_stack_everything_is_created_by_one_apply() -> None:
    desired = [dashboard("d1"), variable("v1", "cluster")]
    diff = [
        DiffEntry("Dashboard", "d1", "Title", "new", "0"),
        DiffEntry("Variable", "v1", "cluster", "new", "0"),
    ]
    plan = plan_dashboards(desired, observed(None, diff))
    assert [(c.action, c.kind) for c in plan.changes] == [
        (Action.CREATE, "dashboard"),
        (Action.CREATE, "variable"),
    ]
    [apply] = {id(c.spec): c.spec for c in plan.changes}.values()
    assert apply is not None and apply.stack is None and len(apply.documents) == 2


def test_exported_object_equal_but_for_defaults_is_unchanged_and_a_change_updates() -> None:
    desired = [dashboard("d1")]
    stack = ObservedStack(
        "s", "rubin-monitoring-dashboards", (StackResource("Dashboard", "d1", "1"),)
    )
    diff = [DiffEntry("Dashboard", "d1", "Title", "exists", "1")]
    export = dashboard(
        "d1", description="", charts=[{"kind": "Xy", "name": "a", "width": 4, "xPos": 0}]
    )
    plan = plan_dashboards(desired, observed(stack, diff, [export]))
    assert plan.changes == [] and plan.unchanged == 1
    assert [
        c.action
        for c in plan_dashboards(desired, observed(stack, diff, [export]), force=True).changes
    ] == [Action.UPDATE]
    changed = dashboard("d1", charts=[{"kind": "Xy", "name": "b", "width": 4}])
    plan = plan_dashboards(desired, observed(stack, diff, [changed]))
    assert [(c.action, c.reason) for c in plan.changes] == [(Action.UPDATE, "differs from d1.yml")]


def test_removed_object_is_kept_in_the_apply_unless_prune() -> None:
    stack = ObservedStack("s", "n", (StackResource("Dashboard", "old", "9"),))
    diff = [DiffEntry("Dashboard", "old", "Old", "remove", "9")]
    old = dashboard("old", "Old")
    plan = plan_dashboards([], observed(stack, diff, [old]))
    assert plan.changes == [] and [n.name for n in plan.orphans] == ["Old"]
    plan = plan_dashboards(
        [dashboard("d1")],
        observed(stack, [*diff, DiffEntry("Dashboard", "d1", "T", "new", "0")], [old]),
    )
    assert plan.changes[0].spec is not None and old.document in plan.changes[0].spec.documents
    pruned = plan_dashboards([], observed(stack, diff, [old]), prune=True)
    assert [(c.action, c.name) for c in pruned.changes] == [(Action.DELETE, "Old")]
    assert pruned.changes[0].spec is not None and pruned.changes[0].spec.documents == ()


def test_variable_name_taken_outside_the_stack_is_a_conflict_and_skipped() -> None:
    desired = [variable("v1", "cluster"), dashboard("d1")]
    diff = [
        DiffEntry("Variable", "v1", "cluster", "exists", "7"),
        DiffEntry("Dashboard", "d1", "T", "new", "0"),
    ]
    plan = plan_dashboards(desired, observed(None, diff, variables={"cluster": "7"}))
    assert [(n.kind, n.name) for n in plan.conflicts] == [("variable", "cluster")]
    assert [c.kind for c in plan.changes] == ["dashboard"]
    assert plan.changes[0].spec is not None and plan.changes[0].spec.skip == (("Variable", "v1"),)


def test_normalized_drops_empty_values_and_sorts_lists_of_mappings() -> None:
    assert normalized({"a": [{"x": 2}, {"x": 1, "y": ""}], "b": 0, "c": ["z", "y"]}) == {
        "a": [{"x": 1}, {"x": 2}],
        "c": ["z", "y"],
    }


def test_diff_entries_name_removed_objects_by_their_old_name() -> None:
    response = {
        "diff": {
            "dashboards": [
                {
                    "templateMetaName": "m",
                    "stateStatus": "remove",
                    "id": 5,
                    "old": {"name": "Old"},
                    "new": {"name": "m"},
                },
            ],
            "variables": [
                {"templateMetaName": "v", "stateStatus": "new", "id": 0, "new": {"name": "cluster"}}
            ],
        }
    }
    assert diff_entries(response) == [
        DiffEntry("Dashboard", "m", "Old", "remove", "5"),
        DiffEntry("Variable", "v", "cluster", "new", "0"),
    ]


def test_packaged_dashboards_are_read() -> None:
    kinds = {(obj.kind, obj.name) for obj in read_templates(packaged_dashboards())}
    assert ("Dashboard", "Rubin K8s applications") in kinds and ("Variable", "cluster") in kinds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Bucket\napiVersion: influxdata.com/v2alpha1\n", "only apiVersion"),
        ("a: [", r"bad\.yml"),
        (
            "apiVersion: influxdata.com/v2alpha1\nkind: Dashboard\nmetadata: {name: x}\nspec: {}\n",
            "spec.name",
        ),
    ],
)
def test_bad_template_files_stop_the_job(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_templates(tmp_path)


def test_a_variable_defined_twice_stops_the_job(tmp_path: Path) -> None:
    text = (
        "apiVersion: influxdata.com/v2alpha1\nkind: Variable\nmetadata: {name: %s}\n"
        "spec: {name: cluster}\n"
    )
    (tmp_path / "a.yml").write_text(text % "one")
    (tmp_path / "b.yml").write_text(text % "two")
    with pytest.raises(ConfigError, match=r"also defined in a\.yml"):
        read_templates(tmp_path)

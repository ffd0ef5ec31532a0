from __future__ import annotations

from rubin_monitoring.models.buckets import BucketSpec, ObservedBucket, auto_shard_group_seconds
from rubin_monitoring.models.changes import Action
from rubin_monitoring.services.buckets import plan_buckets

OWNED = "Telegraf metrics (managed-by=rubin-monitoring)"
WEEK = 7 * 86400


def observed(
    name: str, retention: int = WEEK, description: str | None = OWNED, system: bool = False
) -> ObservedBucket:
    return ObservedBucket(f"id-{name}", name, retention, description, system)


def spec(name: str, retention: int = WEEK) -> BucketSpec:
    return BucketSpec(name, retention, "Telegraf metrics")


def summary(plan: object) -> list[tuple[str, str]]:
    return [(c.action.value, c.name) for c in plan.changes]  # type: ignore[attr-defined]


def test_missing_buckets_are_created_and_converged_ones_untouched() -> None:
    plan = plan_buckets([spec("a"), spec("b")], [observed("a")])
    assert summary(plan) == [("create", "b")]
    assert plan.unchanged == 1


def test_retention_drift_is_an_update_with_reason() -> None:
    plan = plan_buckets([spec("a", 30 * 86400)], [observed("a")])
    assert summary(plan) == [("update", "a")]
    assert plan.changes[0].reason == "retention 1w -> 4w2d"


def test_unowned_bucket_of_a_desired_name_is_a_conflict_never_a_change() -> None:
    for force in (False, True):
        plan = plan_buckets([spec("a")], [observed("a", description="hand made")], force=force)
        assert plan.changes == []
        assert [c.name for c in plan.conflicts] == ["a"]


def test_force_reapplies_owned_desired_buckets_in_place_and_recreate_needs_its_flag() -> None:
    buckets = [observed("a"), observed("a-copy", description=None), observed("gone")]
    plan = plan_buckets([spec("a")], buckets, force=True)
    assert summary(plan) == [("update", "a")]
    assert plan.changes[0].reason.startswith("FORCE")
    assert [o.name for o in plan.orphans] == ["gone"]
    recreated = plan_buckets([spec("a")], buckets, force=True, recreate=True)
    assert summary(recreated) == [("recreate", "a")]
    assert summary(plan_buckets([spec("a")], buckets, recreate=True)) == [("recreate", "a")]


def test_orphans_are_reported_and_deleted_only_with_prune() -> None:
    buckets = [
        observed("gone"),
        observed("theirs", description="x"),
        observed("_tasks", description=OWNED, system=True),
    ]
    assert summary(plan_buckets([], buckets)) == []
    assert [o.name for o in plan_buckets([], buckets).orphans] == ["gone"]
    pruned = plan_buckets([], buckets, prune=True)
    assert summary(pruned) == [("delete", "gone")]
    assert all(c.action is Action.DELETE for c in pruned.changes)


def test_only_an_exact_marker_makes_a_bucket_ours() -> None:
    """Issue 8: ``NOT managed-by=rubin-monitoring`` must not be read as the marker."""
    hand_made = [
        ObservedBucket("1", "gafaelfawr", 604800, "NOT managed-by=rubin-monitoring"),
        ObservedBucket("2", "mobu", 604800, "data (managed-by=rubin-monitoring) keep out"),
        ObservedBucket("3", "sasquatch", 604800, "(managed-by=rubin-monitoring-copy)"),
    ]
    plan = plan_buckets([], hand_made, prune=True, force=True)
    assert plan.changes == [] and plan.orphans == []
    ours = ObservedBucket("4", "gone", 604800, "Telegraf metrics (managed-by=rubin-monitoring)")
    assert ours.owned and not any(bucket.owned for bucket in hand_made)


def test_a_pruned_orphan_is_a_change_not_also_a_kept_orphan() -> None:
    """Issue 8: a pruned object was also printed as 'orphan ... kept, use --prune'."""
    from rubin_monitoring.models.changes import ChangeResult, Report, Status
    from rubin_monitoring.render import render_text

    pruned = plan_buckets([], [observed("gone")], prune=True)
    assert pruned.orphans == [] and summary(pruned) == [("delete", "gone")]
    report = Report("bucketmaker", False, [ChangeResult(pruned.changes[0], Status.DONE)])
    text = render_text(report)
    assert "delete   bucket gone (--prune: " in text and "kept" not in text
    kept = plan_buckets([], [observed("gone")])
    assert (
        "orphan   bucket gone (owned, but no environment enables its application; kept, "
        "use --prune to delete)" in render_text(Report("bucketmaker", False, [], kept.notes))
    )


def test_prune_of_more_than_the_allowed_share_deletes_nothing() -> None:
    """An inventory that suddenly enables nothing must not empty the database: a prune that
    would delete more than PRUNE_MAX_SHARE of the owned buckets deletes none."""
    buckets = [observed(f"app{i}") for i in range(10)]
    desired = [spec("app0")]
    plan = plan_buckets(desired, buckets, prune=True, prune_max_share=50)
    assert [change.action for change in plan.changes] == []
    assert len(plan.orphans) == 9
    (conflict,) = plan.conflicts
    assert "PRUNE would delete 9 of the 10 owned buckets" in conflict.reason
    allowed = plan_buckets(desired, buckets, prune=True, prune_max_share=100)
    assert len(allowed.changes) == 9


def test_buckets_of_held_applications_are_never_pruned() -> None:
    plan = plan_buckets([], [observed("held_app")], prune=True, held=frozenset({"held_app"}))
    assert plan.changes == [] and plan.orphans == []
    assert "kept as it is" in plan.notes[0].reason


def test_auto_shard_groups_are_half_the_retention_in_whole_hours() -> None:
    assert auto_shard_group_seconds(7 * 86400) == 84 * 3600  # 3d12h: at most 3 shard groups
    assert auto_shard_group_seconds(3600) == 3600
    assert auto_shard_group_seconds(5400) == 3600
    assert auto_shard_group_seconds(3 * 3600) == 2 * 3600  # 1.5h rounded up
    assert auto_shard_group_seconds(400 * 86400) == 30 * 86400
    assert auto_shard_group_seconds(0) == 30 * 86400  # infinite retention


def test_a_bucket_whose_shard_groups_differ_is_updated_in_place() -> None:
    current = ObservedBucket("id-a", "a", WEEK, OWNED, shard_group_seconds=86400)
    wanted = BucketSpec("a", WEEK, "Telegraf metrics", 84 * 3600)
    (change,) = plan_buckets([wanted], [current]).changes
    assert change.action is Action.UPDATE
    assert change.reason == "shard groups 1d -> 3d12h"
    same = ObservedBucket("id-a", "a", WEEK, OWNED, shard_group_seconds=84 * 3600)
    assert plan_buckets([wanted], [same]).changes == []

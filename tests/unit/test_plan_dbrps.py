from __future__ import annotations

from rubin_monitoring.models.buckets import ObservedBucket, ObservedDbrp
from rubin_monitoring.services.dbrps import plan_dbrps

OWNED = "x (managed-by=rubin-monitoring)"


def bucket(name: str, retention: int = 604800, owned: bool = True) -> ObservedBucket:
    return ObservedBucket(f"b-{name}", name, retention, OWNED if owned else None)


def mapping(db: str, rp: str, bucket_id: str, default: bool = True, id: str = "") -> ObservedDbrp:
    return ObservedDbrp(id or f"m-{db}-{rp}", bucket_id, db, rp, default)


def actions(plan: object) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.name, c.reason) for c in plan.changes]  # type: ignore[attr-defined]


def test_each_owned_bucket_gets_one_default_mapping_named_after_its_retention() -> None:
    plan = plan_dbrps([bucket("a"), bucket("inf", 0), bucket("theirs", owned=False)], [])
    assert [(a, n) for a, n, _ in actions(plan)] == [("create", "a/1w"), ("create", "inf/inf")]


def test_converged_mapping_is_unchanged() -> None:
    plan = plan_dbrps([bucket("a")], [mapping("a", "1w", "b-a")])
    assert plan.changes == [] and plan.unchanged == 1


def test_wrong_retention_policy_or_not_default_is_updated_in_place() -> None:
    plan = plan_dbrps([bucket("a")], [mapping("a", "2w", "b-a")])
    assert actions(plan) == [("update", "a/1w", "retention policy 2w -> 1w")]
    plan = plan_dbrps([bucket("a")], [mapping("a", "1w", "b-a", default=False)])
    assert actions(plan) == [("update", "a/1w", "not the default mapping")]


def test_mappings_the_toolkit_does_not_own_are_never_touched() -> None:
    theirs = [mapping("other-db", "x", "b-a"), mapping("a", "1w", "b-theirs")]
    buckets = [bucket("a"), bucket("theirs", owned=False)]
    plan = plan_dbrps(buckets, theirs, force=True, prune=True)
    assert plan.changes == []
    assert [c.name for c in plan.conflicts] == ["a/1w"]


def test_force_recreates_and_dangling_mappings_are_orphans() -> None:
    existing = [mapping("a", "1w", "b-a"), mapping("a", "1w", "deleted-bucket", id="old")]
    plan = plan_dbrps([bucket("a")], existing, force=True)
    assert [(a, n) for a, n, _ in actions(plan)] == [("recreate", "a/1w")]
    assert [(o.name, o.reason) for o in plan.orphans] == [("a/1w", "its bucket no longer exists")]
    pruned = plan_dbrps([bucket("a")], existing, prune=True)
    assert [(a, n) for a, n, _ in actions(pruned)] == [("delete", "a/1w")]
    current = pruned.changes[0].current
    assert current is not None and current.id == "old"

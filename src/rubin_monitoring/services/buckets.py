"""bucketmaker: one bucket per enabled application, plus the toolkit's internal buckets."""

from __future__ import annotations

from ..config import ALERT_BUCKET, ALERTED_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS
from ..durations import format_duration
from ..models.buckets import BucketSpec, ObservedBucket
from ..models.changes import (
    Action,
    Change,
    ChangeResult,
    NoteKind,
    Plan,
    ReconcileOptions,
    Status,
)
from ..models.inventory import Inventory, InventoryProblem
from ..storage.influxdb import InfluxDBStore
from .reconcile import ObjectJob

KIND = "bucket"

BucketPlan = Plan[BucketSpec, ObservedBucket]


def desired_buckets(inventory: Inventory, retention_seconds: int) -> list[BucketSpec]:
    """One bucket per application bucket name the inventory enables (with
    ``retention_seconds``), then ``multiapp_`` and ``alerted_``."""
    specs = [
        BucketSpec(name, retention_seconds, f"Telegraf metrics of application {name}")
        for name in inventory.buckets
    ]
    specs.append(BucketSpec(ALERT_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS, "Alert findings"))
    specs.append(BucketSpec(ALERTED_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS, "Alerts sent"))
    return specs


def _retention(seconds: int) -> str:
    return "infinite" if seconds == 0 else format_duration(seconds)


def _problem_result(problem: InventoryProblem) -> ChangeResult:
    change: Change[BucketSpec, ObservedBucket] = Change(
        Action.CREATE, KIND, problem.bucket, f"enabled in {problem.file}"
    )
    return ChangeResult(change, Status.FAILED, problem.reason)


def plan_buckets(
    desired: list[BucketSpec],
    observed: list[ObservedBucket],
    *,
    force: bool = False,
    prune: bool = False,
    problems: tuple[InventoryProblem, ...] = (),
) -> BucketPlan:
    """Create missing buckets, fix owned buckets' retention (recreate every owned desired one
    with ``force``), report unowned buckets in the way as conflicts and owned undesired ones as
    orphans (deleted with ``prune``). ``problems`` (applications that cannot get a bucket) are
    failures of the plan. Pure; never names a bucket the toolkit does not own in a change."""
    by_name = {bucket.name: bucket for bucket in observed}
    wanted = {spec.name for spec in desired}
    plan: BucketPlan = Plan(failures=[_problem_result(problem) for problem in problems])
    for spec in desired:
        current = by_name.get(spec.name)
        if current is None:
            plan.changes.append(Change(Action.CREATE, KIND, spec.name, "missing", spec))
        elif not current.owned:
            plan.note(
                NoteKind.CONFLICT,
                KIND,
                spec.name,
                "a bucket of this name exists without the ownership marker; left untouched",
            )
        elif force:
            plan.changes.append(Change(Action.RECREATE, KIND, spec.name, "FORCE", spec, current))
        elif current.retention_seconds != spec.retention_seconds:
            reason = (
                f"retention {_retention(current.retention_seconds)} -> "
                f"{_retention(spec.retention_seconds)}"
            )
            plan.changes.append(Change(Action.UPDATE, KIND, spec.name, reason, spec, current))
        else:
            plan.unchanged += 1
    for bucket in observed:
        if bucket.owned and bucket.name not in wanted:
            reason = "owned, but no environment enables its application"
            plan.orphan(KIND, bucket.name, reason, bucket, prune=prune)
    return plan


class BucketMaker(ObjectJob[list[ObservedBucket], BucketSpec, ObservedBucket]):
    """bucketmaker: the inventory's buckets, with ``retention_seconds`` each."""

    name = "bucketmaker"

    def __init__(self, store: InfluxDBStore, inventory: Inventory, retention_seconds: int) -> None:
        self.store = store
        self.inventory = inventory
        self.desired = desired_buckets(inventory, retention_seconds)

    def observe(self) -> list[ObservedBucket]:
        return self.store.list_buckets()

    def plan(self, observed: list[ObservedBucket], options: ReconcileOptions) -> BucketPlan:
        return plan_buckets(
            self.desired,
            observed,
            force=options.force,
            prune=options.prune,
            problems=self.inventory.problems,
        )

    def create(self, spec: BucketSpec) -> None:
        self.store.create_bucket(spec)

    def update(self, current: ObservedBucket, spec: BucketSpec) -> None:
        self.store.update_bucket(current.id, spec)

    def delete(self, current: ObservedBucket) -> None:
        self.store.delete_bucket(current.id)

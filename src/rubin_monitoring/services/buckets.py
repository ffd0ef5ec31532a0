"""bucketmaker: one bucket per enabled application, plus the toolkit's internal buckets."""

from __future__ import annotations

from ..config import ALERT_BUCKET, ALERTED_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS
from ..durations import format_duration
from ..models.buckets import BucketSpec, ObservedBucket
from ..models.changes import (
    Action,
    Change,
    ChangeResult,
    Conflict,
    Orphan,
    Plan,
    ReconcileOptions,
    Report,
    Status,
    Target,
)
from ..models.inventory import Inventory, bucket_name
from ..storage.influxdb import InfluxDBStore
from .reconcile import ObjectHandlers, apply_plan

KIND = "bucket"


def desired_buckets(inventory: Inventory, retention_seconds: int) -> list[BucketSpec]:
    specs = [
        BucketSpec(name, retention_seconds, f"Telegraf metrics of application {name}")
        for name in inventory.buckets
    ]
    specs.append(BucketSpec(ALERT_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS, "Alert findings"))
    specs.append(BucketSpec(ALERTED_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS, "Alerts sent"))
    return specs


def _retention(seconds: int) -> str:
    return "infinite" if seconds == 0 else format_duration(seconds)


def plan_buckets(
    desired: list[BucketSpec],
    observed: list[ObservedBucket],
    *,
    force: bool = False,
    prune: bool = False,
) -> Plan:
    by_name = {bucket.name: bucket for bucket in observed}
    wanted = {spec.name for spec in desired}
    changes: list[Change] = []
    conflicts: list[Conflict] = []
    unchanged = 0
    for spec in desired:
        current = by_name.get(spec.name)
        if current is None:
            changes.append(Change(Action.CREATE, KIND, spec.name, "missing", Target(spec, None)))
        elif not current.owned:
            conflicts.append(
                Conflict(
                    KIND,
                    spec.name,
                    "a bucket of this name exists without the ownership marker; left untouched",
                )
            )
        elif force:
            changes.append(Change(Action.RECREATE, KIND, spec.name, "FORCE", Target(spec, current)))
        elif current.retention_seconds != spec.retention_seconds:
            reason = (
                f"retention {_retention(current.retention_seconds)} -> "
                f"{_retention(spec.retention_seconds)}"
            )
            changes.append(Change(Action.UPDATE, KIND, spec.name, reason, Target(spec, current)))
        else:
            unchanged += 1
    orphans: list[Orphan] = []
    for bucket in observed:
        if bucket.owned and bucket.name not in wanted:
            reason = "owned, but no environment enables its application"
            orphans.append(Orphan(KIND, bucket.name, reason))
            if prune:
                changes.append(
                    Change(
                        Action.DELETE, KIND, bucket.name, "--prune: " + reason, Target(None, bucket)
                    )
                )
    return Plan(changes=changes, orphans=orphans, unchanged=unchanged, conflicts=conflicts)


def run_bucketmaker(
    store: InfluxDBStore,
    inventory: Inventory,
    *,
    retention_seconds: int,
    options: ReconcileOptions,
) -> Report:
    desired = desired_buckets(inventory, retention_seconds)
    plan = plan_buckets(desired, store.list_buckets(), force=options.force, prune=options.prune)

    handlers = ObjectHandlers(
        create=store.create_bucket,
        update=lambda current, spec: store.update_bucket(current.id, spec),
        delete=lambda current: store.delete_bucket(current.id),
    )
    report = apply_plan("bucketmaker", plan, handlers.execute, options)
    report.results[:0] = [
        ChangeResult(
            Change(
                Action.CREATE, KIND, bucket_name(problem.application), f"enabled in {problem.file}"
            ),
            Status.FAILED,
            problem.reason,
        )
        for problem in inventory.problems
    ]
    return report

"""bucketmapper: one explicit, default DBRP mapping per owned bucket, for InfluxQL readers.

A mapping is the toolkit's when it maps database = bucket name onto an owned bucket (or onto a
bucket that no longer exists, under an owned bucket's name). Any other mapping is left alone.
"""

from __future__ import annotations

from ..durations import retention_policy_name
from ..models.buckets import DbrpSpec, ObservedBucket, ObservedDbrp
from ..models.changes import (
    Action,
    Change,
    Conflict,
    Orphan,
    Plan,
    ReconcileOptions,
    Report,
    Target,
)
from ..storage.influxdb import InfluxDBStore
from .reconcile import ObjectHandlers, apply_plan

KIND = "dbrp"


def desired_dbrps(buckets: list[ObservedBucket]) -> list[DbrpSpec]:
    return [
        DbrpSpec(bucket.id, bucket.name, retention_policy_name(bucket.retention_seconds))
        for bucket in sorted(buckets, key=lambda b: b.name)
        if bucket.owned
    ]


def _label(database: str, retention_policy: str) -> str:
    return f"{database}/{retention_policy}"


def plan_dbrps(
    buckets: list[ObservedBucket],
    mappings: list[ObservedDbrp],
    *,
    force: bool = False,
    prune: bool = False,
) -> Plan:
    existing_ids = {bucket.id for bucket in buckets}
    owned_names = {bucket.name for bucket in buckets if bucket.owned}
    changes: list[Change] = []
    conflicts: list[Conflict] = []
    orphans: list[Orphan] = []
    claimed: set[str] = set()
    unchanged = 0
    for spec in desired_dbrps(buckets):
        label = _label(spec.database, spec.retention_policy)
        mine = [
            m for m in mappings if m.bucket_id == spec.bucket_id and m.database == spec.database
        ]
        mine.sort(key=lambda m: (m.retention_policy != spec.retention_policy, not m.default, m.id))
        if not mine:
            blocker = next(
                (
                    m
                    for m in mappings
                    if m.database == spec.database
                    and m.retention_policy == spec.retention_policy
                    and m.bucket_id in existing_ids
                ),
                None,
            )
            if blocker is not None:
                conflicts.append(
                    Conflict(
                        KIND, label, "mapped to a bucket the toolkit does not own; left untouched"
                    )
                )
                continue
            changes.append(
                Change(
                    Action.CREATE,
                    KIND,
                    label,
                    f"bucket {spec.database} has no mapping",
                    Target(spec, None),
                )
            )
            continue
        current = mine[0]
        claimed.update(m.id for m in mine)
        target = Target(spec, current)
        if force:
            changes.append(Change(Action.RECREATE, KIND, label, "FORCE", target))
        elif current.retention_policy != spec.retention_policy:
            reason = f"retention policy {current.retention_policy} -> {spec.retention_policy}"
            changes.append(Change(Action.UPDATE, KIND, label, reason, target))
        elif not current.default:
            changes.append(Change(Action.UPDATE, KIND, label, "not the default mapping", target))
        else:
            unchanged += 1
        for extra in mine[1:]:
            _orphan(
                extra,
                "a second mapping of the same database on the bucket",
                orphans,
                changes,
                prune,
            )
    for mapping in mappings:
        dangling = mapping.bucket_id not in existing_ids and mapping.database in owned_names
        if dangling and mapping.id not in claimed:
            _orphan(mapping, "its bucket no longer exists", orphans, changes, prune)
    return Plan(changes=changes, orphans=orphans, unchanged=unchanged, conflicts=conflicts)


def _orphan(
    mapping: ObservedDbrp, reason: str, orphans: list[Orphan], changes: list[Change], prune: bool
) -> None:
    label = _label(mapping.database, mapping.retention_policy)
    orphans.append(Orphan(KIND, label, reason))
    if prune:
        changes.append(
            Change(Action.DELETE, KIND, label, "--prune: " + reason, Target(None, mapping))
        )


def run_bucketmapper(store: InfluxDBStore, options: ReconcileOptions) -> Report:
    plan = plan_dbrps(
        store.list_buckets(), store.list_dbrps(), force=options.force, prune=options.prune
    )

    handlers = ObjectHandlers(
        create=store.create_dbrp,
        update=lambda current, spec: store.update_dbrp(current.id, spec),
        delete=lambda current: store.delete_dbrp(current.id),
    )
    return apply_plan("bucketmapper", plan, handlers.execute, options)

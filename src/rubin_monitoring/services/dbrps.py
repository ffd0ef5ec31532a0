"""bucketmapper: one explicit, default DBRP mapping per owned bucket, for InfluxQL readers.

A mapping is the toolkit's when it maps database = bucket name onto an owned bucket (or onto a
bucket that no longer exists, under an owned bucket's name). Any other mapping is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..durations import retention_policy_name
from ..models.buckets import DbrpSpec, ObservedBucket, ObservedDbrp
from ..models.changes import Action, Change, NoteKind, Plan, ReconcileOptions
from ..storage.influxdb import InfluxDBStore
from .reconcile import ObjectJob

KIND = "dbrp"

DbrpPlan = Plan[DbrpSpec, ObservedDbrp]


@dataclass(frozen=True)
class ObservedMappings:
    """The org's buckets and its physical DBRP mappings."""

    buckets: list[ObservedBucket]
    mappings: list[ObservedDbrp]


def desired_dbrps(buckets: list[ObservedBucket]) -> list[DbrpSpec]:
    """One default mapping per owned bucket: database = bucket name, retention policy = the
    bucket's retention as a duration literal."""
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
) -> DbrpPlan:
    """Create each owned bucket's missing mapping, fix its retention policy and default flag
    (recreate it with ``force``), report a mapping of another bucket in the way as a conflict,
    and second mappings and mappings of deleted owned buckets as orphans (deleted with
    ``prune``). Pure."""
    existing_ids = {bucket.id for bucket in buckets}
    owned_names = {bucket.name for bucket in buckets if bucket.owned}
    plan: DbrpPlan = Plan()
    claimed: set[str] = set()

    def orphan(mapping: ObservedDbrp, reason: str) -> None:
        label = _label(mapping.database, mapping.retention_policy)
        plan.orphan(KIND, label, reason, mapping, prune=prune)

    for spec in desired_dbrps(buckets):
        label = _label(spec.database, spec.retention_policy)
        mine = [
            m for m in mappings if m.bucket_id == spec.bucket_id and m.database == spec.database
        ]
        mine.sort(key=lambda m: (m.retention_policy != spec.retention_policy, not m.default, m.id))
        if not mine:
            blocked = any(
                m.database == spec.database
                and m.retention_policy == spec.retention_policy
                and m.bucket_id in existing_ids
                for m in mappings
            )
            if blocked:
                reason = "mapped to a bucket the toolkit does not own; left untouched"
                plan.note(NoteKind.CONFLICT, KIND, label, reason)
            else:
                reason = f"bucket {spec.database} has no mapping"
                plan.changes.append(Change(Action.CREATE, KIND, label, reason, spec))
            continue
        current = mine[0]
        claimed.update(m.id for m in mine)
        if force:
            plan.changes.append(Change(Action.RECREATE, KIND, label, "FORCE", spec, current))
        elif current.retention_policy != spec.retention_policy:
            reason = f"retention policy {current.retention_policy} -> {spec.retention_policy}"
            plan.changes.append(Change(Action.UPDATE, KIND, label, reason, spec, current))
        elif not current.default:
            reason = "not the default mapping"
            plan.changes.append(Change(Action.UPDATE, KIND, label, reason, spec, current))
        else:
            plan.unchanged += 1
        for extra in mine[1:]:
            orphan(extra, "a second mapping of the same database on the bucket")
    for mapping in mappings:
        dangling = mapping.bucket_id not in existing_ids and mapping.database in owned_names
        if dangling and mapping.id not in claimed:
            orphan(mapping, "its bucket no longer exists")
    return plan


class BucketMapper(ObjectJob[ObservedMappings, DbrpSpec, ObservedDbrp]):
    """bucketmapper: desired mappings follow the owned buckets InfluxDB has now."""

    name = "bucketmapper"

    def __init__(self, store: InfluxDBStore) -> None:
        self.store = store

    def observe(self) -> ObservedMappings:
        return ObservedMappings(self.store.list_buckets(), self.store.list_dbrps())

    def plan(self, observed: ObservedMappings, options: ReconcileOptions) -> DbrpPlan:
        return plan_dbrps(
            observed.buckets, observed.mappings, force=options.force, prune=options.prune
        )

    def create(self, spec: DbrpSpec) -> None:
        self.store.create_dbrp(spec)

    def update(self, current: ObservedDbrp, spec: DbrpSpec) -> None:
        self.store.update_dbrp(current.id, spec)

    def delete(self, current: ObservedDbrp) -> None:
        self.store.delete_dbrp(current.id)

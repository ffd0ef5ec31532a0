"""bucketmaker: one bucket per enabled application, plus the toolkit's internal buckets.

FORCE re-applies every owned, desired bucket's description and retention in place: its ID,
data, the tokens that name it and its DBRP mappings all survive. Recreating buckets (new IDs,
data dropped) takes its own flag, ``RECREATE_BUCKETS``: then every DBRP mapping of a recreated
bucket (a hand-made one included, which InfluxDB drops with the bucket) is made again for the new
bucket, and since tokens name buckets by ID, the run ends with a conflict (exit 1) saying which
tokens to re-issue.
"""

from __future__ import annotations

from ..config import (
    ALERT_BUCKET,
    ALERTED_BUCKET,
    ALERTED_RETENTION_SECONDS,
    INTERNAL_BUCKET_RETENTION_SECONDS,
    SILENCES_BUCKET,
    SILENCES_RETENTION_SECONDS,
)
from ..durations import format_duration
from ..models.buckets import BucketSpec, DbrpSpec, ObservedBucket, auto_shard_group_seconds
from ..models.changes import (
    Action,
    Change,
    ChangeResult,
    Note,
    NoteKind,
    Plan,
    ReconcileOptions,
    Report,
    Status,
)
from ..models.checks import HOST_BUCKET, PROBES_BUCKET
from ..models.inventory import Inventory, InventoryProblem, bucket_name
from ..models.tokens import Role
from ..storage.influxdb import InfluxDBStore
from .reconcile import HELD_REASON, ObjectJob, problem_result

KIND = "bucket"

BucketPlan = Plan[BucketSpec, ObservedBucket]


def desired_buckets(
    inventory: Inventory, retention_seconds: int, shard_group_seconds: int | None = None
) -> list[BucketSpec]:
    """One bucket per application bucket name the inventory enables (with
    ``retention_seconds``), then ``multiapp_`` (1h), ``alerted_`` (7d, the longest repeat
    interval allowed), ``silences_`` (31d, longer than a silence may last), and the fleet
    checks' ``influxdb_`` and ``probes_`` (``retention_seconds``). Every bucket's shard groups
    span ``shard_group_seconds`` (None: :func:`auto_shard_group_seconds` of its retention)."""

    def bucket(name: str, retention: int, purpose: str) -> BucketSpec:
        shard = shard_group_seconds or auto_shard_group_seconds(retention)
        if retention and shard > retention:  # InfluxDB refuses it: 1h buckets stay 1h
            shard = auto_shard_group_seconds(retention)
        return BucketSpec(name, retention, purpose, shard)

    specs = [
        bucket(name, retention_seconds, f"Telegraf metrics of application {name}")
        for name in inventory.buckets
    ]
    specs.append(bucket(ALERT_BUCKET, INTERNAL_BUCKET_RETENTION_SECONDS, "Alert findings"))
    specs.append(bucket(ALERTED_BUCKET, ALERTED_RETENTION_SECONDS, "Alerts sent"))
    specs.append(
        bucket(SILENCES_BUCKET, SILENCES_RETENTION_SECONDS, "Alert silences (silence add)")
    )
    specs.append(
        bucket(HOST_BUCKET, retention_seconds, "Metrics of the InfluxDB host (check disk)")
    )
    specs.append(
        bucket(PROBES_BUCKET, retention_seconds, "Site probes (checks site_down, tls_expiry)")
    )
    return specs


def _shard_drift(spec: BucketSpec, current: ObservedBucket) -> bool:
    """Whether the bucket's shard-group duration differs from the desired one (when both are
    known)."""
    wanted, found = spec.shard_group_seconds, current.shard_group_seconds
    return wanted is not None and found is not None and wanted != found


def _retention(seconds: int) -> str:
    return "infinite" if seconds == 0 else format_duration(seconds)


def _problem_result(problem: InventoryProblem) -> ChangeResult:
    return problem_result(problem, KIND, problem.bucket)


def plan_buckets(
    desired: list[BucketSpec],
    observed: list[ObservedBucket],
    *,
    force: bool = False,
    prune: bool = False,
    recreate: bool = False,
    problems: tuple[InventoryProblem, ...] = (),
    held: frozenset[str] = frozenset(),
    prune_max_share: int = 100,
) -> BucketPlan:
    """Create missing buckets, fix owned buckets' retention (re-apply every owned desired one
    in place with ``force``; drop and recreate it with ``recreate``), report unowned buckets in
    the way as conflicts and owned undesired ones as orphans (deleted with ``prune``).
    ``problems`` (what the inventory cannot serve) are failures of the plan; ``held`` buckets
    (their application has a problem) are kept as they are, never pruned. A prune that would
    delete more than ``prune_max_share`` percent of the owned buckets deletes none (a
    conflict: the repository may be broken). Pure; never names a bucket the toolkit does not
    own in a change."""
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
        elif recreate:
            reason = "RECREATE_BUCKETS: new bucket, data dropped"
            plan.changes.append(Change(Action.RECREATE, KIND, spec.name, reason, spec, current))
        elif force:
            reason = "FORCE: description and retention re-applied in place"
            plan.changes.append(Change(Action.UPDATE, KIND, spec.name, reason, spec, current))
        elif current.retention_seconds != spec.retention_seconds or _shard_drift(spec, current):
            reasons = []
            if current.retention_seconds != spec.retention_seconds:
                reasons.append(
                    f"retention {_retention(current.retention_seconds)} -> "
                    f"{_retention(spec.retention_seconds)}"
                )
            if _shard_drift(spec, current):
                reasons.append(
                    f"shard groups {format_duration(current.shard_group_seconds or 0)} -> "
                    f"{format_duration(spec.shard_group_seconds or 0)}"
                )
            reason = ", ".join(reasons)
            plan.changes.append(Change(Action.UPDATE, KIND, spec.name, reason, spec, current))
        else:
            plan.unchanged += 1
    for bucket in observed:
        if not bucket.owned or bucket.name in wanted:
            continue
        if bucket.name in held:
            plan.note(NoteKind.WARNING, KIND, bucket.name, HELD_REASON)
            continue
        reason = "owned, but no environment enables its application"
        plan.orphan(KIND, bucket.name, reason, bucket, prune=prune)
    _limit_prune(plan, sum(bucket.owned for bucket in observed), prune_max_share)
    return plan


def _limit_prune(plan: BucketPlan, owned: int, max_share: int) -> None:
    """Turn the plan's deletions back into orphans, with a conflict, when there are more than
    ``max_share`` percent of the ``owned`` buckets (at least one may always go)."""
    deletes = [change for change in plan.changes if change.action is Action.DELETE]
    allowed = max(1, owned * max_share // 100)
    if len(deletes) <= allowed:
        return
    plan.changes = [change for change in plan.changes if change.action is not Action.DELETE]
    for change in deletes:
        plan.note(NoteKind.ORPHAN, KIND, change.name, change.reason.removeprefix("--prune: "))
    plan.note(
        NoteKind.CONFLICT,
        KIND,
        f"{len(deletes)} of {owned}",
        f"PRUNE would delete {len(deletes)} of the {owned} owned buckets, more than "
        f"PRUNE_MAX_SHARE ({max_share}%): none deleted. Check that the repository enables "
        "what it should; to delete them all, run again with PRUNE_MAX_SHARE=100",
    )


# Roles whose tokens name one of the toolkit's internal buckets by ID.
_INTERNAL_ROLES: dict[str, tuple[str, ...]] = {
    ALERT_BUCKET: ("notifier",),
    ALERTED_BUCKET: ("notifier",),
    SILENCES_BUCKET: ("notifier", "silencer"),
    PROBES_BUCKET: ("probe-telegraf",),
    HOST_BUCKET: ("host-telegraf",),
}
# More environments than this: name them all with --role telegraf.
_ENVIRONMENTS_NAMED = 3


def broken_roles(buckets: list[str], inventory: Inventory) -> list[str]:
    """The tokenmaker roles whose tokens name one of ``buckets`` by ID, so stop working when
    those buckets are recreated: each environment's Telegraf whose applications write there
    (all of them as ``telegraf`` when there are many), the roles of internal buckets, and the
    remote-write receiver, which writes every environment's buckets and ``influxdb_``."""
    recreated = set(buckets)
    environments = [
        env.name
        for env in inventory.environments
        if recreated & {bucket_name(app) for app in env.applications}
    ]
    roles = (
        [f"telegraf-{name}" for name in environments]
        if len(environments) <= _ENVIRONMENTS_NAMED
        else ["telegraf"]
    )
    for bucket, bucket_roles in _INTERNAL_ROLES.items():
        for role in bucket_roles:
            if bucket in recreated and role not in roles:
                roles.append(role)
    if environments or HOST_BUCKET in recreated:
        roles.append(Role.RECEIVER.value)
    return roles


def _some(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


class BucketMaker(ObjectJob[list[ObservedBucket], BucketSpec, ObservedBucket]):
    """bucketmaker: the inventory's buckets, with ``retention_seconds`` each."""

    name = "bucketmaker"

    def __init__(
        self,
        store: InfluxDBStore,
        inventory: Inventory,
        retention_seconds: int,
        *,
        recreate: bool = False,
        prune_max_share: int = 100,
        shard_group_seconds: int | None = None,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.desired = desired_buckets(inventory, retention_seconds, shard_group_seconds)
        self.recreate = recreate
        self.prune_max_share = prune_max_share

    def observe(self) -> list[ObservedBucket]:
        return self.store.list_buckets()

    def plan(self, observed: list[ObservedBucket], options: ReconcileOptions) -> BucketPlan:
        return plan_buckets(
            self.desired,
            observed,
            force=options.force,
            prune=options.prune,
            recreate=self.recreate,
            problems=self.inventory.problems,
            held=self.inventory.held_buckets,
            prune_max_share=self.prune_max_share,
        )

    def execute(self, change: Change[BucketSpec, ObservedBucket]) -> None:
        if change.action is Action.RECREATE and change.spec and change.current:
            self._recreate(change.spec, change.current)
        else:
            super().execute(change)

    def _recreate(self, spec: BucketSpec, current: ObservedBucket) -> None:
        """Delete and create the bucket, then make its DBRP mappings again (InfluxDB drops
        them with the bucket)."""
        mappings = [m for m in self.store.list_dbrps() if m.bucket_id == current.id]
        self.store.delete_bucket(current.id)
        bucket_id = self.store.create_bucket(spec)
        for mapping in mappings:
            restored = DbrpSpec(bucket_id, mapping.database, mapping.retention_policy)
            self.store.create_dbrp(restored, default=mapping.default)

    def finish(self, report: Report) -> Report:
        recreated = [
            result.change.name
            for result in report.results
            if result.change.action is Action.RECREATE and result.status is Status.DONE
        ]
        if recreated:
            roles = broken_roles(recreated, self.inventory)
            flags = " ".join(f"--role {role}" for role in roles)
            report.notes.append(
                Note(
                    NoteKind.CONFLICT,
                    "token",
                    ", ".join(roles),
                    f"{len(recreated)} recreated bucket(s) ({_some(recreated)}) have new IDs: "
                    f"the tokens naming them no longer work; run tokenmaker --rotate {flags} "
                    "and deploy the new tokens",
                )
            )
        return report

    def create(self, spec: BucketSpec) -> None:
        self.store.create_bucket(spec)

    def update(self, current: ObservedBucket, spec: BucketSpec) -> None:
        self.store.update_bucket(current.id, spec)

    def delete(self, current: ObservedBucket) -> None:
        self.store.delete_bucket(current.id)

"""tokenmaker's plan, pure: the bot user that owns the tasks, and one least-privilege, org-scoped
token per role, from what InfluxDB holds.

Every permission names the organization (``orgID``); bucket permissions that can name a bucket
do. What each role gets and why (verified against InfluxDB 2.7.12):

============  =====================================================================  ==========
role          permissions                                                            token user
============  =====================================================================  ==========
telegraf-     write:buckets/<each bucket of an application the environment enables>, operator
<env>         write:buckets/probes_ (the control plane's certificate)
bucketmaker   read:orgs/<org>, read+write:buckets, read+write:dbrp (whole org)       operator
taskmaker     read:orgs/<org>, read:buckets, read+write:tasks (whole org),           bot user
              read:users/<the bot user itself>
notifier      read:orgs/<org>, read:buckets/multiapp_, read+write:buckets/alerted_,  operator
              read:buckets/silences_, read:tasks (whole org; the heartbeat checks them)
dashboard-    read:orgs/<org>, read+write:dashboards, read+write:variables           operator
maker         (whole org)
silencer      read+write:buckets/silences_ (nothing else: no lease, no org)          operator
(the jobs)    read+write:labels (whole org): the lease every writing run takes
probe-        write:buckets/probes_                                                  operator
telegraf
host-         write:buckets/influxdb_                                                operator
telegraf
receiver      write:buckets/<each bucket of an application some environment          operator
              enables>, write:buckets/influxdb_ (its own counters)
receiver-     read:orgs/<org>: the value is the password of the environment's        operator
<env>         remote-write listener; nothing else
============  =====================================================================  ==========

* The silencer token is for people running ``silence add|query|expire``: it reads and writes
  ``silences_`` and nothing else. Writes and Flux queries name the org by name and need no
  ``read:orgs`` (verified on 2.7.12); silences are points with unique IDs, so no lease.
* dashboardmaker applies its templates through a stack, and a stack cannot be granted (no
  permission type names it): creating one takes ``write:orgs/<org>``, which would also let the
  token change the org and its members. So tokenmaker creates the (empty) stack
  ``rubin-monitoring-dashboards`` when the dashboardmaker role is selected; reading, exporting
  and applying through an existing stack need only ``read:orgs/<org>`` and the dashboards and
  variables permissions.
* The probe Telegraf (``probe-config``) and the Telegraf on the InfluxDB host each write one
  bucket of the toolkit's, ``probes_`` and ``influxdb_``; while that bucket is missing their role
  is a conflict (run bucketmaker first).

* The remote-write receiver (``receiver-config``) writes what every environment's Prometheus
  sends into that environment's buckets: one token, writing the union of their buckets (and
  ``influxdb_``, its own counters), stale like a Telegraf token when an application is enabled
  later. Each environment authenticates to it with a password of its own, the value of its
  ``receiver-<env>`` token (Secret key ``receiver-<env>-password``): an InfluxDB token only so
  that tokenmaker issues it once, rotates it (``--rotate --role receiver-<env>``) and reports it
  orphaned when the environment leaves the repository; it may read the organization (a token
  needs a permission) and nothing else.
* taskmaker tells its own tasks from look-alikes by their ``ownerID``, so it asks who its token
  belongs to (``GET /api/v2/me``), which InfluxDB answers only with ``read:users/<own id>``
  (401 otherwise): the taskmaker token may read its own user, nothing more.
* bucketmaker and bucketmapper share one token: creating, changing or deleting a DBRP mapping
  needs write on its bucket (``dbrp/middleware_auth.go``), so a mapper token would need
  ``write:buckets`` anyway.
* A task runs with the permissions of its *owner user*, derived from the user's
  user-resource mappings (``task/backend/executor/executor.go`` calls
  ``FindPermissionForUser(t.OwnerID)``; ``tenant/service_user.go``), not with the token that
  made it. Of those mappings only org *owner* yields bucket write (``OwnerPermissions`` in
  ``authz.go``); org member and bucket member yield read, bucket owner yields nothing
  (``user_resource_mapping.go`` ``ownerPerms``). So the bot user is made an owner of the org,
  and the taskmaker token belongs to it. The bot has no password, so it cannot sign in.
  Consequence: whoever holds the taskmaker token can run any Flux as an org owner: read and
  write every bucket of the org and read its secrets (Flux's API calls, ``influxdb.api()``,
  need an explicit host and token, so no other rights come from the owner). That is
  also why its own ``read:buckets`` is org-wide: narrowing it would protect nothing. A task can
  only write into its own org (``to()`` refuses another org without ``host``), but a bot that
  belongs to several orgs reads them all, so tokenmaker warns: use one bot user per org.
* One Telegraf token per environment (cluster), so one cluster can be revoked or rotated
  alone, and a leaked token writes only that cluster's applications' buckets, and ``probes_``,
  where each cluster's Telegraf writes the certificate of its control plane (which only an
  agent inside the cluster can read); a token made before that lacks it and is stale. The
  environments and what they enable come from the repository (as for bucketmaker).
* Telegraf's permissions name bucket IDs and an authorization's permissions cannot be changed.
  An application enabled later in an environment makes that environment's Telegraf token
  *stale*: tokenmaker reports it (exit 0, the token keeps working for the other buckets) and
  ``--rotate --role telegraf-<env>`` re-issues it (``--role telegraf``: every environment's).
* The single ``telegraf`` token of the old scheme (marker ``token=telegraf``) is reported as an
  orphan once the per-environment tokens exist: deploy those, then ``--prune`` deletes it. So is
  a ``telegraf-<env>`` token whose environment left the repository.

"operator" is the user of the token tokenmaker runs with. That token must be able to create
users, org owners and tokens for another user, and hold every permission it grants: in practice
the instance operator token.

Token values are taken only from the create response (2.7.12 also lists them, 2.9 stores them
hashed; the listing's values are dropped at once) and go to stdout once, or only to a Secret
manifest; never to the logs. Reruns recognise the toolkit's tokens by the marker that ends their
description, ``(managed-by=rubin-monitoring token=<role>)``, together with their user: the bot
user for taskmaker, the operator's user (the one tokenmaker runs as) for the others. A token
with a look-alike description that belongs to anyone else is never current, stale or deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from ..config import ALERT_BUCKET, ALERTED_BUCKET, SILENCES_BUCKET
from ..exceptions import ConfigError
from ..models.buckets import ObservedBucket
from ..models.changes import Action, Change, Note, NoteKind, Plan, ReconcileOptions
from ..models.checks import HOST_BUCKET, PROBES_BUCKET
from ..models.dashboards import STACK_NAME
from ..models.inventory import Inventory, InventoryProblem, bucket_name
from ..models.tokens import (
    ALL_ROLES,
    DEFAULT_BOT_USER,
    JOB_GRANTS,
    KIND_OWNER,
    KIND_STACK,
    KIND_TOKEN,
    KIND_USER,
    OUTSIDE_TELEGRAF_BUCKETS,
    OWNER_REASON,
    PHASE_CREATE,
    PHASE_DELETE,
    PHASE_OWNER,
    PHASE_USER,
    READ,
    ROLE_NAMES,
    STACK_REASON,
    TELEGRAF,
    WRITE,
    BotObservation,
    BotOwnership,
    IssueToken,
    ObservedAuthorization,
    ObservedIdentities,
    Permission,
    Role,
    RoleTokens,
    TokenSpec,
    TokenStep,
    describe_permissions,
    environment_of,
    receiver_role,
    telegraf_role,
)
from .reconcile import problem_result

log = logging.getLogger(__name__)

SpecPlan = Plan[TokenSpec, RoleTokens]
TokenPlan = Plan[TokenStep, RoleTokens]


def application_buckets(buckets: Iterable[ObservedBucket]) -> list[ObservedBucket]:
    """Owned buckets other than the toolkit's internal ones, by name."""
    internal = {ALERT_BUCKET, ALERTED_BUCKET, SILENCES_BUCKET, HOST_BUCKET, PROBES_BUCKET}
    return sorted(
        (bucket for bucket in buckets if bucket.owned and bucket.name not in internal),
        key=lambda bucket: bucket.name,
    )


def environment_buckets(inventory: Inventory) -> dict[str, list[str]]:
    """Each environment's name -> the buckets of the applications it enables (those that have
    one: an application the inventory rejected has none), in the repository's order."""
    served = set(inventory.applications)
    return {
        env.name: sorted({bucket_name(app) for app in env.applications if app in served})
        for env in inventory.environments
    }


def all_roles(environments: Iterable[str]) -> frozenset[str]:
    """Every role tokenmaker makes for these environments."""
    names = list(environments)
    return ALL_ROLES | {role(env) for env in names for role in (telegraf_role, receiver_role)}


def select_roles(names: Iterable[str], environments: Collection[str]) -> frozenset[str] | None:
    """The roles ``--role`` selects (None: every role); ``telegraf`` selects every environment's
    Telegraf role. Raises :class:`ConfigError` naming the valid roles for an unknown one."""
    given = list(names)
    if not given:
        return None
    selected: set[str] = set()
    for raw in given:
        name = raw.strip()
        if name == TELEGRAF:
            selected |= {telegraf_role(env) for env in environments}
        elif name in ALL_ROLES or environment_of(name) in environments:
            selected.add(name)
        else:
            known = ", ".join(
                [
                    *ROLE_NAMES,
                    *sorted(telegraf_role(env) for env in environments),
                    *sorted(receiver_role(env) for env in environments),
                    TELEGRAF,
                ]
            )
            raise ConfigError(f"unknown --role {name!r} (roles: {known})")
    return frozenset(selected)


def read_own_user(user_id: str) -> Permission:
    """Lets a token ask who it belongs to (``GET /api/v2/me``); users are not org-scoped."""
    return Permission(READ, "users", "", user_id)


def desired_tokens(
    org_id: str,
    org_name: str,
    buckets: list[ObservedBucket],
    roles: frozenset[str] | None = None,
    bot_id: str | None = None,
    environments: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[TokenSpec], list[Note]]:
    """The token each selected role needs (``roles`` None: every role), from the org's buckets,
    and notes: conflicts for roles that cannot have one yet, warnings for buckets missing.
    ``environments`` maps each environment to its applications' buckets (one Telegraf token
    each, writing exactly those); ``bot_id`` is the bot user's ID when it exists (the
    taskmaker token may read that user). Pure.

    Raises :class:`ConfigError` when ``multiapp_``, ``alerted_`` or ``silences_`` is missing:
    tokenmaker runs after bucketmaker.
    """
    by_name = {bucket.name: bucket for bucket in buckets if not bucket.system}
    required = (ALERT_BUCKET, ALERTED_BUCKET, SILENCES_BUCKET)
    missing = [name for name in required if name not in by_name]
    if missing:
        raise ConfigError(
            f"bucket {' and '.join(missing)} not found in organization {org_name!r}: "
            "run bucketmaker first"
        )
    alert, alerted = by_name[ALERT_BUCKET], by_name[ALERTED_BUCKET]
    silences = by_name[SILENCES_BUCKET]

    def org_wide(action: str, kind: str) -> Permission:
        return Permission(action, kind, org_id)

    def bucket(action: str, target: ObservedBucket) -> Permission:
        return Permission(action, "buckets", org_id, target.id, target.name)

    read_org = Permission(READ, "orgs", org_id, org_id, org_name)
    # Every writing job takes its lease, a label (services/lease.py), before it writes.
    leases = {org_wide(READ, "labels"), org_wide(WRITE, "labels")}
    specs: list[TokenSpec] = []
    conflicts: list[Note] = []
    owned_apps = {app.name: app for app in application_buckets(buckets)}
    for environment, wanted in (environments or {}).items():
        name = telegraf_role(environment)
        if roles is not None and name not in roles:
            continue
        present = [owned_apps[b] for b in wanted if b in owned_apps]
        missing = [b for b in wanted if b not in owned_apps]
        if not present:
            reason = (
                f"no bucket of environment {environment}'s applications yet: run bucketmaker, "
                "then tokenmaker again"
            )
            conflicts.append(Note(NoteKind.CONFLICT, KIND_TOKEN, name, reason))
            continue
        if missing:
            reason = (
                f"{name}: no owned bucket {', '.join(missing)} yet (run bucketmaker); the token "
                "will be stale then"
            )
            conflicts.append(Note(NoteKind.WARNING, KIND_TOKEN, name, reason))
        permissions = {bucket(WRITE, app) for app in present}
        probes = by_name.get(PROBES_BUCKET)
        if probes is not None:
            permissions.add(bucket(WRITE, probes))
        else:
            reason = (
                f"{name}: no bucket {PROBES_BUCKET} yet for its control plane's certificate "
                "(run bucketmaker); the token will be stale then"
            )
            conflicts.append(Note(NoteKind.WARNING, KIND_TOKEN, name, reason))
        specs.append(TokenSpec(name, frozenset(permissions)))
    for environment in environments or {}:
        name = receiver_role(environment)
        if roles is None or name in roles:
            specs.append(TokenSpec(name, frozenset({read_org})))
    for role in Role:
        if roles is not None and role.value not in roles:
            continue
        if role in JOB_GRANTS:
            grants = (org_wide(action, kind) for action, kind in JOB_GRANTS[role])
            permissions = {read_org, *grants, *leases}
            if role is Role.TASKMAKER and bot_id is not None:
                permissions.add(read_own_user(bot_id))
        elif role is Role.RECEIVER:
            receiver = _receiver_permissions(by_name, owned_apps, environments, bucket)
            if isinstance(receiver, Note):
                conflicts.append(receiver)
                continue
            permissions, warning = receiver
            if warning is not None:
                conflicts.append(warning)
        elif role in OUTSIDE_TELEGRAF_BUCKETS:
            target = by_name.get(OUTSIDE_TELEGRAF_BUCKETS[role])
            if target is None:
                reason = (
                    f"no bucket {OUTSIDE_TELEGRAF_BUCKETS[role]} yet: run bucketmaker, then "
                    "tokenmaker again"
                )
                conflicts.append(Note(NoteKind.CONFLICT, KIND_TOKEN, role.value, reason))
                continue
            permissions = {bucket(WRITE, target)}
        elif role is Role.SILENCER:
            permissions = {bucket(READ, silences), bucket(WRITE, silences)}
        else:
            permissions = {
                read_org,
                bucket(READ, alert),
                bucket(READ, alerted),
                bucket(WRITE, alerted),
                bucket(READ, silences),
                org_wide(READ, "tasks"),
                *leases,
            }
        specs.append(
            TokenSpec(role.value, frozenset(permissions), bot_owned=role is Role.TASKMAKER)
        )
    return specs, conflicts


def _receiver_permissions(
    by_name: Mapping[str, ObservedBucket],
    owned_apps: Mapping[str, ObservedBucket],
    environments: Mapping[str, Sequence[str]] | None,
    bucket: Callable[[str, ObservedBucket], Permission],
) -> tuple[set[Permission], Note | None] | Note:
    """The receiver's write permissions (the buckets of every environment that exist, and
    ``influxdb_``) with a warning naming those still missing; a conflict while ``influxdb_``
    is missing."""
    role = Role.RECEIVER.value
    host = by_name.get(HOST_BUCKET)
    if host is None:
        reason = f"no bucket {HOST_BUCKET} yet: run bucketmaker, then tokenmaker again"
        return Note(NoteKind.CONFLICT, KIND_TOKEN, role, reason)
    wanted = sorted({name for names in (environments or {}).values() for name in names})
    present = [owned_apps[name] for name in wanted if name in owned_apps]
    missing = [name for name in wanted if name not in owned_apps]
    permissions = {bucket(WRITE, host), *(bucket(WRITE, app) for app in present)}
    if not missing:
        return permissions, None
    reason = (
        f"{role}: no owned bucket {', '.join(missing)} yet (run bucketmaker); the token will "
        "be stale then"
    )
    return permissions, Note(NoteKind.WARNING, KIND_TOKEN, role, reason)


def _staleness(
    spec: TokenSpec, current: ObservedAuthorization, bot: BotObservation | None, bot_user: str
) -> str | None:
    problems = []
    if not current.active:
        problems.append("inactive")
    lacking = spec.permissions - current.permissions
    extra = current.permissions - spec.permissions
    if lacking:
        problems.append(f"lacks {describe_permissions(lacking)}")
    if extra:
        problems.append(f"also has {describe_permissions(extra)}")
    if spec.bot_owned:
        bot_id = bot.user.id if bot is not None and bot.user is not None else None
        if current.user_id != bot_id:
            owner = current.user_name or current.user_id
            problems.append(f"belongs to user {owner}, not to the bot user {bot_user}")
    return "; ".join(problems) or None


def _newest_first(tokens: list[ObservedAuthorization]) -> list[ObservedAuthorization]:
    return sorted(tokens, key=lambda token: (token.created_at, token.id), reverse=True)


def owned_tokens(
    observed: Iterable[ObservedAuthorization], operator_id: str, bot: BotObservation | None
) -> dict[str, list[ObservedAuthorization]]:
    """The toolkit's tokens by role: marked with a role and belonging to the user tokenmaker
    gives that role to (the bot for taskmaker, the operator for the others)."""
    bot_id = bot.user.id if bot is not None and bot.user is not None else None
    mine: dict[str, list[ObservedAuthorization]] = {}
    for token in observed:
        role = token.role
        if role is None:
            continue
        users = {operator_id, bot_id} if role == Role.TASKMAKER else {operator_id}
        if token.user_id not in users:
            continue
        mine.setdefault(role, []).append(token)
    return mine


def plan_tokens(
    desired: list[TokenSpec],
    observed: list[ObservedAuthorization],
    bot: BotObservation | None,
    *,
    operator_id: str,
    bot_user: str = DEFAULT_BOT_USER,
    rotate: bool = False,
    prune: bool = False,
    roles: frozenset[str] | None = None,
    conflicts: Iterable[Note] = (),
    known_roles: Collection[str] = ALL_ROLES,
) -> SpecPlan:
    """Changes for the bot user and the tokens. Pure.

    ``bot`` None: the bot user is not part of this run (taskmaker not selected). Only the
    toolkit's tokens are considered (see :func:`owned_tokens`); of several for one role the
    newest is current, the others are orphans (deleted with ``prune``, or replaced with
    ``rotate``). A stale token is reported, not replaced, unless ``rotate``. ``known_roles``:
    every role tokenmaker makes (:func:`all_roles`); when every role is selected (``roles``
    None), an owned token of another role is an orphan: the single ``telegraf`` token of the
    old scheme, a Telegraf token of an environment no longer in the repository, or a role
    tokenmaker never makes.
    """
    plan: SpecPlan = Plan(notes=list(conflicts))

    if bot is not None:
        _plan_bot(plan, bot, bot_user)

    by_role = owned_tokens(observed, operator_id, bot)
    for spec in desired:
        role = spec.role
        mine = _newest_first(by_role.pop(role, []))
        if not mine:
            plan.changes.append(
                Change(Action.CREATE, KIND_TOKEN, role, "missing", spec, phase=PHASE_CREATE)
            )
            continue
        current, older = mine[0], mine[1:]
        problem = _staleness(spec, current, bot, bot_user)
        if rotate:
            reason = "--rotate" + (f" (was stale: {problem})" if problem else "")
            replaced = RoleTokens(tuple(mine))
            plan.changes.append(
                Change(Action.RECREATE, KIND_TOKEN, role, reason, spec, replaced, PHASE_CREATE)
            )
            continue
        if problem:
            plan.note(NoteKind.STALE, KIND_TOKEN, role, problem)
        else:
            plan.unchanged += 1
            plan.note(
                NoteKind.EXISTS,
                KIND_TOKEN,
                role,
                "value not shown: InfluxDB shows a token only when it is made; "
                "--rotate replaces it",
            )
        for duplicate in older:
            _orphan(plan, role, duplicate, f"an older duplicate of the {role} token", prune)

    for role, tokens in sorted(by_role.items()):
        # A known role left here is not selected, or blocked by a conflict: left alone.
        if role in known_roles or roles is not None:
            continue
        for token in tokens:
            _orphan(plan, role, token, _orphan_reason(role), prune)
    return plan


def _orphan_reason(role: str) -> str:
    if role == TELEGRAF:
        return (
            "the single Telegraf token of the old scheme: each cluster now has its own "
            "telegraf-<environment> token; deploy those, then --prune deletes this one"
        )
    environment = environment_of(role)
    if environment is not None:
        return f"environment {environment!r} is not in the repository any more"
    return f"role {role!r} is not one tokenmaker makes"


def _plan_bot(plan: SpecPlan, bot: BotObservation, bot_user: str) -> None:
    if bot.user is None:
        reason = "missing: owns the tasks, no password"
        plan.changes.append(Change(Action.CREATE, KIND_USER, bot_user, reason, phase=PHASE_USER))
        plan.changes.append(
            Change(Action.CREATE, KIND_OWNER, bot_user, OWNER_REASON, phase=PHASE_OWNER)
        )
    else:
        plan.unchanged += 1
        if not bot.user.active:
            plan.note(
                NoteKind.CONFLICT,
                KIND_USER,
                bot_user,
                "the bot user is inactive: its token is refused and its tasks fail; left untouched",
            )
        if bot.org_owner:
            plan.unchanged += 1
        elif bot.org_member:
            reason = f"member -> owner: {OWNER_REASON}"
            plan.changes.append(
                Change(Action.UPDATE, KIND_OWNER, bot_user, reason, phase=PHASE_OWNER)
            )
        else:
            plan.changes.append(
                Change(Action.CREATE, KIND_OWNER, bot_user, OWNER_REASON, phase=PHASE_OWNER)
            )
    if bot.other_orgs:
        plan.note(
            NoteKind.WARNING,
            KIND_USER,
            bot_user,
            f"bot user {bot_user} also belongs to {', '.join(bot.other_orgs)}: its tasks get "
            "those organizations' permissions too; use one --bot-user per organization",
        )


def _orphan(
    plan: SpecPlan, role: str, token: ObservedAuthorization, reason: str, prune: bool
) -> None:
    name = f"{role} ({token.id})"
    plan.orphan(KIND_TOKEN, name, reason, RoleTokens((token,)), prune=prune, phase=PHASE_DELETE)


def _problem_role(problem: InventoryProblem) -> str:
    """The token an inventory problem concerns: its environment's Telegraf token, else the
    Telegraf tokens that leave its application out."""
    if problem.environment is not None:
        return telegraf_role(problem.environment)
    return TELEGRAF


def plan_identities(
    observed: ObservedIdentities,
    options: ReconcileOptions,
    *,
    org_name: str,
    bot_user: str,
    roles: frozenset[str] | None,
    rotate: bool,
    environments: Mapping[str, Sequence[str]],
    problems: Sequence[InventoryProblem] = (),
) -> TokenPlan:
    """tokenmaker's whole plan, pure: the bot user and its ownership of the org, the tokens of
    ``roles`` (None: every role) for ``environments``, dashboardmaker's stack, the inventory's
    ``problems`` as failures, and one ``grants`` note per role saying what its token gets. Every
    change carries what executing it takes (:class:`IssueToken`, :class:`BotOwnership`)."""
    bot = observed.bot
    bot_id = bot.user.id if bot is not None and bot.user is not None else None
    desired, conflicts = desired_tokens(
        observed.org_id, org_name, observed.buckets, roles, bot_id, environments
    )
    # The Telegraf tokens and credentials of environments the repository holds back are kept.
    held = {
        role(problem.environment)
        for problem in problems
        if problem.environment is not None and problem.held
        for role in (telegraf_role, receiver_role)
    }
    planned = plan_tokens(
        desired,
        observed.tokens,
        bot,
        operator_id=observed.operator_id,
        bot_user=bot_user,
        rotate=rotate or options.force,
        prune=options.prune,
        roles=roles,
        conflicts=conflicts,
        known_roles=all_roles(environments) | held,
    )
    known_ids = frozenset(token.id for token in observed.tokens)

    def step(change: Change[TokenSpec, RoleTokens]) -> Change[TokenStep, RoleTokens]:
        payload: TokenStep | None = None
        if change.kind == KIND_OWNER:
            payload = BotOwnership(observed.org_id, bot_user, bot_id)
        elif change.spec is not None:
            owner = (bot_id if change.spec.bot_owned else observed.operator_id) or None
            payload = IssueToken(change.spec, observed.org_id, owner, bot_user, known_ids)
        return Change(
            change.action,
            change.kind,
            change.name,
            change.reason,
            payload,
            change.current,
            change.phase,
        )

    plan: TokenPlan = Plan(
        changes=[step(change) for change in planned.changes],
        notes=list(planned.notes),
        unchanged=planned.unchanged,
        failures=[
            problem_result(problem, KIND_TOKEN, _problem_role(problem)) for problem in problems
        ],
    )
    if observed.dashboard_stack is False:
        plan.changes.append(
            Change(Action.CREATE, KIND_STACK, STACK_NAME, STACK_REASON, phase=PHASE_OWNER)
        )
    for spec in desired:
        plan.note(NoteKind.GRANTS, KIND_TOKEN, spec.role, describe_permissions(spec.permissions))
    return plan

"""tokenmaker: a bot user that owns the tasks, and one least-privilege, org-scoped token per job.

Every permission names the organization (``orgID``); bucket permissions that can name a bucket
do. What each role gets and why (verified against InfluxDB 2.7.12):

============  =====================================================================  ==========
role          permissions                                                            token user
============  =====================================================================  ==========
telegraf      write:buckets/<each application bucket>                                operator
bucketmaker   read:orgs/<org>, read+write:buckets, read+write:dbrp (whole org)       operator
taskmaker     read:orgs/<org>, read:buckets, read+write:tasks (whole org)            bot user
notifier      read:orgs/<org>, read:buckets/multiapp_, read+write:buckets/alerted_   operator
============  =====================================================================  ==========

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
* Telegraf's permissions name bucket IDs and an authorization's permissions cannot be changed.
  An application added later makes the Telegraf token *stale*: tokenmaker reports it (exit 0,
  the token keeps working for the other buckets) and ``--rotate --role telegraf`` re-issues it.

"operator" is the user of the token tokenmaker runs with. That token must be able to create
users, org owners and tokens for another user, and hold every permission it grants: in practice
the instance operator token.

Token values are taken only from the create response (2.7.12 also lists them, 2.9 stores them
hashed; the listing's values are dropped at once) and go to stdout once, or only to a Secret
manifest; never to the logs. Reruns recognise the toolkit's tokens by their description marker
``managed-by=rubin-monitoring token=<role>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import ALERT_BUCKET, ALERTED_BUCKET
from ..exceptions import ConfigError, RubinMonitoringError
from ..models.buckets import ObservedBucket
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
from ..models.tokens import (
    DEFAULT_BOT_USER,
    DEFAULT_SECRET_NAME,
    READ,
    WRITE,
    BotObservation,
    ObservedAuthorization,
    Permission,
    Role,
    StaleToken,
    TokenSpec,
    describe_permissions,
)
from ..output import render_report
from ..storage.authorizations import AuthorizationStore
from ..storage.influxdb import InfluxDBStore
from .reconcile import apply_plan

__all__ = [
    "DEFAULT_BOT_USER",
    "DEFAULT_SECRET_NAME",
    "ROLE_NAMES",
    "Role",
    "TokenPlan",
    "TokenResult",
    "application_buckets",
    "check_manifest_path",
    "desired_tokens",
    "plan_tokens",
    "render_tokens_text",
    "run_tokenmaker",
    "secret_manifest_text",
    "tokens_to_json",
    "write_secret_manifest",
]

log = logging.getLogger(__name__)

ROLE_NAMES = tuple(role.value for role in Role)
ALL_ROLES = frozenset(Role)

SECRET_KEY_SUFFIX = "-token"

KIND_USER = "user"
KIND_OWNER = "org-owner"
KIND_TOKEN = "token"

OWNER_REASON = (
    "tasks run with their owner's permissions; only an org owner may write multiapp_ from a task"
)


def application_buckets(buckets: Iterable[ObservedBucket]) -> list[ObservedBucket]:
    """Owned buckets other than the toolkit's internal ones, by name."""
    internal = {ALERT_BUCKET, ALERTED_BUCKET}
    return sorted(
        (bucket for bucket in buckets if bucket.owned and bucket.name not in internal),
        key=lambda bucket: bucket.name,
    )


def desired_tokens(
    org_id: str,
    org_name: str,
    buckets: list[ObservedBucket],
    roles: frozenset[Role] = ALL_ROLES,
) -> tuple[list[TokenSpec], list[Conflict]]:
    """The token each selected role needs, from the org's buckets. Pure.

    Raises :class:`ConfigError` when ``multiapp_`` or ``alerted_`` is missing: tokenmaker
    runs after bucketmaker.
    """
    by_name = {bucket.name: bucket for bucket in buckets if not bucket.system}
    missing = [name for name in (ALERT_BUCKET, ALERTED_BUCKET) if name not in by_name]
    if missing:
        raise ConfigError(
            f"bucket {' and '.join(missing)} not found in organization {org_name!r}: "
            "run bucketmaker first"
        )
    alert, alerted = by_name[ALERT_BUCKET], by_name[ALERTED_BUCKET]

    def org_wide(action: str, kind: str) -> Permission:
        return Permission(action, kind, org_id)

    def bucket(action: str, target: ObservedBucket) -> Permission:
        return Permission(action, "buckets", org_id, target.id, target.name)

    read_org = Permission(READ, "orgs", org_id, org_id, org_name)
    specs: list[TokenSpec] = []
    conflicts: list[Conflict] = []
    for role in Role:
        if role not in roles:
            continue
        if role is Role.TELEGRAF:
            apps = application_buckets(buckets)
            if not apps:
                conflicts.append(
                    Conflict(
                        KIND_TOKEN,
                        role.value,
                        "no application buckets yet: run bucketmaker, then tokenmaker again",
                    )
                )
                continue
            permissions = {bucket(WRITE, app) for app in apps}
        elif role is Role.BUCKETMAKER:
            permissions = {
                read_org,
                org_wide(READ, "buckets"),
                org_wide(WRITE, "buckets"),
                org_wide(READ, "dbrp"),
                org_wide(WRITE, "dbrp"),
            }
        elif role is Role.TASKMAKER:
            permissions = {
                read_org,
                org_wide(READ, "buckets"),
                org_wide(READ, "tasks"),
                org_wide(WRITE, "tasks"),
            }
        else:
            permissions = {
                read_org,
                bucket(READ, alert),
                bucket(READ, alerted),
                bucket(WRITE, alerted),
            }
        specs.append(TokenSpec(role, frozenset(permissions), bot_owned=role is Role.TASKMAKER))
    return specs, conflicts


@dataclass(frozen=True)
class TokenPlan:
    plan: Plan
    stale: list[StaleToken] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def plan_tokens(
    desired: list[TokenSpec],
    observed: list[ObservedAuthorization],
    bot: BotObservation | None,
    *,
    bot_user: str = DEFAULT_BOT_USER,
    rotate: bool = False,
    prune: bool = False,
    roles: frozenset[Role] = ALL_ROLES,
    conflicts: Iterable[Conflict] = (),
) -> TokenPlan:
    """Changes for the bot user and the tokens. Pure.

    ``bot`` None: the bot user is not part of this run (taskmaker not selected). Only tokens
    with the toolkit's marker are considered; of several for one role the newest is current,
    the others are orphans (deleted with ``prune``, or replaced with ``rotate``).
    """
    changes: list[Change] = []
    conflict_list = list(conflicts)
    orphans: list[Orphan] = []
    stale: list[StaleToken] = []
    existing: list[str] = []
    warnings: list[str] = []
    unchanged = 0

    if bot is not None:
        if bot.user is None:
            changes.append(
                Change(Action.CREATE, KIND_USER, bot_user, "missing: owns the tasks, no password")
            )
            changes.append(Change(Action.CREATE, KIND_OWNER, bot_user, OWNER_REASON))
        else:
            unchanged += 1
            if not bot.user.active:
                conflict_list.append(
                    Conflict(
                        KIND_USER,
                        bot_user,
                        "the bot user is inactive: its token is refused and its tasks fail; "
                        "left untouched",
                    )
                )
            if bot.org_owner:
                unchanged += 1
            elif bot.org_member:
                reason = f"member -> owner: {OWNER_REASON}"
                changes.append(Change(Action.UPDATE, KIND_OWNER, bot_user, reason))
            else:
                changes.append(Change(Action.CREATE, KIND_OWNER, bot_user, OWNER_REASON))
        if bot.other_orgs:
            warnings.append(
                f"bot user {bot_user} also belongs to {', '.join(bot.other_orgs)}: its tasks get "
                "those organizations' permissions too; use one --bot-user per organization"
            )

    by_role: dict[str, list[ObservedAuthorization]] = {}
    for token in observed:
        if token.role is not None:
            by_role.setdefault(token.role, []).append(token)

    for spec in desired:
        role = spec.role.value
        mine = _newest_first(by_role.pop(role, []))
        if not mine:
            changes.append(Change(Action.CREATE, KIND_TOKEN, role, "missing", Target(spec, ())))
            continue
        current, older = mine[0], mine[1:]
        problem = _staleness(spec, current, bot, bot_user)
        if rotate:
            reason = "--rotate" + (f" (was stale: {problem})" if problem else "")
            changes.append(
                Change(Action.RECREATE, KIND_TOKEN, role, reason, Target(spec, tuple(mine)))
            )
            continue
        if problem:
            stale.append(StaleToken(role, problem))
        else:
            unchanged += 1
            existing.append(role)
        for duplicate in older:
            reason = f"an older duplicate of the {role} token"
            _orphan(role, duplicate, reason, orphans, changes, prune)

    for role, tokens in sorted(by_role.items()):
        # A known role left here is not selected, or blocked by a conflict: left alone.
        if role in ROLE_NAMES or roles != ALL_ROLES:
            continue
        for token in tokens:
            reason = f"role {role!r} is not one tokenmaker makes"
            _orphan(role, token, reason, orphans, changes, prune)
    plan = Plan(changes=changes, orphans=orphans, unchanged=unchanged, conflicts=conflict_list)
    return TokenPlan(plan=plan, stale=stale, existing=existing, warnings=warnings)


def _orphan(
    role: str,
    token: ObservedAuthorization,
    reason: str,
    orphans: list[Orphan],
    changes: list[Change],
    prune: bool,
) -> None:
    name = f"{role} ({token.id})"
    orphans.append(Orphan(KIND_TOKEN, name, reason))
    if prune:
        changes.append(
            Change(Action.DELETE, KIND_TOKEN, name, f"--prune: {reason}", Target(None, (token,)))
        )


@dataclass
class TokenResult:
    report: Report
    stale: list[StaleToken]
    existing: list[str]
    warnings: list[str]
    permissions: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def observe_bot(auths: AuthorizationStore, org_id: str, bot_user: str) -> BotObservation:
    user = auths.find_user(bot_user)
    if user is None:
        return BotObservation(None)
    owner = user.id in auths.org_owner_ids(org_id)
    member = not owner and user.id in auths.org_member_ids(org_id)
    others = tuple(sorted(name for oid, name in auths.user_orgs(user.id) if oid != org_id))
    return BotObservation(user, owner, others, member)


def run_tokenmaker(
    store: InfluxDBStore,
    auths: AuthorizationStore,
    *,
    bot_user: str = DEFAULT_BOT_USER,
    roles: Iterable[Role] = ALL_ROLES,
    rotate: bool = False,
    prune: bool = False,
    dry_run: bool = False,
) -> TokenResult:
    """Observe, plan, apply. Changes run one at a time, in order: the bot user before its
    token; a replacement token is created before the old one is deleted."""
    bot_user = bot_user.strip()
    if not bot_user:
        raise ConfigError("--bot-user is empty")
    selected = frozenset(roles) or ALL_ROLES
    buckets = store.list_buckets()
    org_id = store.org_id
    desired, conflicts = desired_tokens(org_id, store.org, buckets, selected)
    bot = observe_bot(auths, org_id, bot_user) if Role.TASKMAKER in selected else None
    observed = auths.list_authorizations(org_id)
    token_plan = plan_tokens(
        desired,
        observed,
        bot,
        bot_user=bot_user,
        rotate=rotate,
        prune=prune,
        roles=selected,
        conflicts=conflicts,
    )
    bot_id = {"id": bot.user.id if bot is not None and bot.user is not None else None}
    tokens: dict[str, str] = {}

    def require_bot() -> str:
        if bot_id["id"] is None:
            raise RubinMonitoringError(f"bot user {bot_user} does not exist (creating it failed)")
        return bot_id["id"]

    def execute(change: Change) -> None:
        if change.kind == KIND_USER:
            bot_id["id"] = auths.create_user(change.name).id
            return
        if change.kind == KIND_OWNER:
            user_id = require_bot()
            if change.action is Action.UPDATE:
                auths.remove_org_member(org_id, user_id)
            auths.add_org_owner(org_id, user_id)
            return
        target = change.target  # current: the tokens this change replaces
        if target.spec is not None:
            spec = target.spec
            owner_id = require_bot() if spec.bot_owned else None
            created = auths.create_authorization(
                org_id, spec.description, sorted(spec.permissions), owner_id
            )
            tokens[spec.role.value] = created.token
        for old in target.current:
            auths.delete_authorization(old.id)

    for item in token_plan.stale:
        log.warning("token %s is stale: %s; --rotate re-issues it", item.role, item.reason)
    for warning in token_plan.warnings:
        log.warning("%s", warning)
    report = apply_plan(
        "tokenmaker", token_plan.plan, execute, ReconcileOptions(dry_run=dry_run, concurrency=1)
    )
    return TokenResult(
        report=report,
        stale=token_plan.stale,
        existing=token_plan.existing,
        warnings=token_plan.warnings,
        permissions={spec.role.value: describe_permissions(spec.permissions) for spec in desired},
        tokens=tokens,
    )


# Output: token values appear here and nowhere else.


def render_tokens_text(result: TokenResult, *, manifest: Path | None) -> str:
    """The report; then the new token values, or where they were written."""
    lines = render_report(result.report).splitlines()
    summary = lines.pop()
    for role in result.existing:
        lines.append(
            f"  exists   {KIND_TOKEN} {role} (value not shown: InfluxDB shows a token only when "
            "it is made; --rotate replaces it)"
        )
    for item in result.stale:
        lines.append(
            f"  stale    {KIND_TOKEN} {item.role} ({item.reason}; "
            f"re-issue with --rotate --role {item.role})"
        )
    for warning in result.warnings:
        lines.append(f"  warning  {warning}")
    lines.append(f"{summary}, {len(result.stale)} stale")
    if result.report.dry_run:
        for role, permissions in result.permissions.items():
            lines.append(f"  grants   {role}: {permissions}")
        return "\n".join(lines)
    if manifest is not None:
        if result.tokens:
            keys = ", ".join(
                f"{role}{SECRET_KEY_SUFFIX}" for role, _ in _in_role_order(result.tokens)
            )
            lines.append(f"secret manifest {manifest} written (mode 0600), keys: {keys}")
        else:
            lines.append(f"secret manifest {manifest} not written: no new token values")
    elif result.tokens:
        lines.append("new tokens (shown only this once):")
        lines.extend(f"{role} {token}" for role, token in _in_role_order(result.tokens))
    return "\n".join(lines)


def tokens_to_json(result: TokenResult, *, manifest: Path | None) -> dict[str, object]:
    body = result.report.to_json()
    summary = body["summary"]
    assert isinstance(summary, dict)
    summary["stale"] = len(result.stale)
    body["stale"] = [item.to_json() for item in result.stale]
    body["existing"] = list(result.existing)
    body["warnings"] = list(result.warnings)
    body["permissions"] = dict(result.permissions)
    if manifest is not None:
        body["secret_manifest"] = str(manifest) if result.tokens else None
        body["tokens"] = {}
    else:
        body["tokens"] = dict(_in_role_order(result.tokens))
    return body


def _in_role_order(tokens: Mapping[str, str]) -> list[tuple[str, str]]:
    order = {name: index for index, name in enumerate(ROLE_NAMES)}
    return sorted(tokens.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def secret_manifest_text(
    tokens: Mapping[str, str], name: str = DEFAULT_SECRET_NAME, namespace: str | None = None
) -> str:
    """A Kubernetes Secret with one ``stringData`` key per role, ``<role>-token`` (the keys
    the CronJobs in ``cronjobs/`` read)."""
    metadata: dict[str, object] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "rubin-monitoring"}
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {
            f"{role}{SECRET_KEY_SUFFIX}": value for role, value in _in_role_order(tokens)
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


def check_manifest_path(path: Path) -> None:
    """Fail before any token is made if the manifest could not be written."""
    if path.is_dir():
        raise ConfigError(f"--secret-manifest {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"--secret-manifest {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--secret-manifest {path} is not writable")


def write_secret_manifest(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (a reader never sees half)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise RubinMonitoringError(
            f"cannot write the secret manifest {path}: {error.strerror}; the new tokens were "
            "made but not saved: run again with --rotate"
        ) from None

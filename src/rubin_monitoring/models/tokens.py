"""Least-privilege tokens: roles, permissions, desired and observed authorizations, the bot user.

Token values never live in these models except :class:`CreatedToken`, whose ``repr`` hides the
value so a stray log line or traceback cannot show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .buckets import ObservedBucket
from .changes import Report
from .checks import HOST_BUCKET, PROBES_BUCKET
from .ownership import describe, parse_marker

DEFAULT_BOT_USER = "rubin-monitoring-bot"
DEFAULT_SECRET_NAME = "rubin-monitoring-tokens"

READ = "read"
WRITE = "write"


class Role(StrEnum):
    """The fixed roles, one token each: the toolkit's jobs, and the two Telegrafs outside the
    clusters. With the per-environment Telegraf roles (:func:`telegraf_role`) the role names
    are also the keys of the Kubernetes Secret."""

    BUCKETMAKER = "bucketmaker"
    TASKMAKER = "taskmaker"
    NOTIFIER = "notifier"
    DASHBOARDMAKER = "dashboardmaker"
    SILENCER = "silencer"
    """People adding and ending silences (``silence add|query|expire``): ``silences_`` only."""
    PROBE_TELEGRAF = "probe-telegraf"
    """The probe Telegraf (``probe-config``): writes ``probes_``."""
    HOST_TELEGRAF = "host-telegraf"
    """The Telegraf on the InfluxDB host: writes ``influxdb_``."""
    RECEIVER = "receiver"
    """The remote-write receiver (``receiver-config``): writes the buckets of every application
    some environment enables, and ``influxdb_`` (its own metrics)."""


# Telegraf has one role per environment (cluster), ``telegraf-<environment>``, so that one
# cluster's token can be revoked or rotated alone. ``telegraf`` alone was the role of the single
# Telegraf token of the old scheme (tokenmaker reports such a token as an orphan); as a
# ``--role`` it selects every environment's Telegraf role.
TELEGRAF = "telegraf"
TELEGRAF_PREFIX = f"{TELEGRAF}-"


def telegraf_role(environment: str) -> str:
    """The role of ``environment``'s Telegraf token, ``telegraf-<environment>``."""
    return f"{TELEGRAF_PREFIX}{environment}"


def telegraf_environment(role: str) -> str | None:
    """The environment a ``telegraf-<environment>`` role names, or None for other roles."""
    if role.startswith(TELEGRAF_PREFIX) and len(role) > len(TELEGRAF_PREFIX):
        return role[len(TELEGRAF_PREFIX) :]
    return None


# Each environment's credential for the remote-write receiver, ``receiver-<environment>``: an
# InfluxDB token that may read the organization and nothing else, whose value is the password of
# that environment's listener (so tokenmaker issues, rotates and retires it like the others).
RECEIVER_PREFIX = f"{Role.RECEIVER.value}-"


def receiver_role(environment: str) -> str:
    """The role of ``environment``'s remote-write credential, ``receiver-<environment>``."""
    return f"{RECEIVER_PREFIX}{environment}"


def receiver_environment(role: str) -> str | None:
    """The environment a ``receiver-<environment>`` role names, or None for other roles."""
    if role.startswith(RECEIVER_PREFIX) and len(role) > len(RECEIVER_PREFIX):
        return role[len(RECEIVER_PREFIX) :]
    return None


def environment_of(role: str) -> str | None:
    """The environment a per-environment role (Telegraf token or receiver credential) names."""
    return telegraf_environment(role) or receiver_environment(role)


@dataclass(frozen=True, order=True)
class Permission:
    """One permission; ``resource_id`` None means every resource of the type in the org.

    ``label`` (a bucket or org name) is for people only and never compared.
    """

    action: str
    resource_type: str
    org_id: str
    resource_id: str | None = None
    label: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, object]:
        resource: dict[str, str] = {"type": self.resource_type}
        if self.org_id:
            resource["orgID"] = self.org_id
        if self.resource_id is not None:
            resource["id"] = self.resource_id
        return {"action": self.action, "resource": resource}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Permission:
        """A permission as InfluxDB returns it (the resource's name becomes the label)."""
        resource = data.get("resource") or {}
        return cls(
            action=str(data.get("action")),
            resource_type=str(resource.get("type")),
            org_id=str(resource.get("orgID") or ""),
            resource_id=str(resource["id"]) if resource.get("id") else None,
            label=str(resource["name"]) if resource.get("name") else None,
        )

    def __str__(self) -> str:
        text = f"{self.action}:{self.resource_type}"
        if self.resource_id is not None:
            text += f"/{self.label or self.resource_id}"
        return text


def describe_permissions(permissions: Iterable[Permission]) -> str:
    """Compact text, e.g. ``read:orgs/o, write:buckets/{a,b}``, grouped by action and type."""
    groups: dict[tuple[str, str], list[str]] = {}
    org_wide: set[tuple[str, str]] = set()
    for permission in sorted(permissions):
        key = (permission.action, permission.resource_type)
        if permission.resource_id is None:
            org_wide.add(key)
            groups.setdefault(key, [])
        else:
            groups.setdefault(key, []).append(permission.label or permission.resource_id)
    parts = []
    for (action, kind), names in groups.items():
        if (action, kind) in org_wide:
            parts.append(f"{action}:{kind}")
        if names:
            inner = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
            parts.append(f"{action}:{kind}/{inner}")
    return ", ".join(parts)


def token_description(role: str) -> str:
    """The description that marks an authorization as the toolkit's token for ``role``."""
    value = str(role)
    return describe(f"rubin-monitoring {value} token", {"token": value})


def token_role(description: str | None) -> str | None:
    """The role named by the marker that ends a token's description, or None. Ownership also
    needs the token's user to be the one tokenmaker gives that role to."""
    fields = parse_marker(description)
    return None if fields is None else fields.get("token")


@dataclass(frozen=True)
class TokenSpec:
    """A desired token. ``bot_owned`` tokens belong to the bot user (taskmaker: the tasks it
    creates are then owned, and run, by the bot); the others belong to the operator's user."""

    role: str
    permissions: frozenset[Permission]
    bot_owned: bool = False

    @property
    def description(self) -> str:
        """The description that marks the token as the toolkit's for its role."""
        return token_description(self.role)


@dataclass(frozen=True)
class ObservedAuthorization:
    """An authorization as listed, without its token value."""

    id: str
    description: str | None
    user_id: str
    user_name: str | None
    active: bool
    permissions: frozenset[Permission]
    created_at: str = ""

    @property
    def role(self) -> str | None:
        """The role its marker names, or None (ownership also needs the right user)."""
        return token_role(self.description)


@dataclass(frozen=True)
class CreatedToken:
    """A token just made: its ID and value (the value is hidden from repr)."""

    id: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class ObservedUser:
    """A user as InfluxDB lists it."""

    id: str
    name: str
    active: bool = True


@dataclass(frozen=True)
class BotObservation:
    """The bot user (None when missing), its role in the org, and its other orgs' names.

    InfluxDB keeps one mapping per user and org, so a member is not also an owner.
    """

    user: ObservedUser | None
    org_owner: bool = False
    other_orgs: tuple[str, ...] = ()
    org_member: bool = False


# The fixed roles; each environment adds ``telegraf-<env>`` and ``receiver-<env>``.
ROLE_NAMES = tuple(role.value for role in Role)
ALL_ROLES: frozenset[str] = frozenset(ROLE_NAMES)
ROLE_HELP = (
    "bucketmaker, taskmaker, notifier, dashboardmaker, silencer, probe-telegraf, "
    "host-telegraf, receiver, telegraf-<environment>, receiver-<environment>, or telegraf "
    "(every environment's Telegraf token)"
)

KIND_USER = "user"
KIND_OWNER = "org-owner"
KIND_TOKEN = "token"
KIND_STACK = "stack"

# Apply order: the bot user, then its org ownership (and dashboardmaker's stack), then new
# tokens, then old ones deleted.
PHASE_USER, PHASE_OWNER, PHASE_CREATE, PHASE_DELETE = range(4)

# What each job's token may do org-wide, besides reading the org and taking the lease (labels).
JOB_GRANTS: dict[Role, tuple[tuple[str, str], ...]] = {
    Role.BUCKETMAKER: ((READ, "buckets"), (WRITE, "buckets"), (READ, "dbrp"), (WRITE, "dbrp")),
    Role.TASKMAKER: ((READ, "buckets"), (READ, "tasks"), (WRITE, "tasks")),
    Role.DASHBOARDMAKER: (
        (READ, "dashboards"),
        (WRITE, "dashboards"),
        (READ, "variables"),
        (WRITE, "variables"),
    ),
}

# The Telegrafs outside the clusters, and the one bucket each writes.
OUTSIDE_TELEGRAF_BUCKETS: dict[Role, str] = {
    Role.PROBE_TELEGRAF: PROBES_BUCKET,
    Role.HOST_TELEGRAF: HOST_BUCKET,
}

STACK_REASON = (
    "dashboardmaker applies the dashboards through it, and its token may not create it: "
    "creating a stack takes write on the organization"
)

OWNER_REASON = (
    "tasks run with their owner's permissions; only an org owner may write multiapp_ from a task"
)


@dataclass(frozen=True)
class RoleTokens:
    """The existing tokens a change acts on: the ones a rotation replaces (newest first), or the
    one an orphan deletion removes."""

    tokens: tuple[ObservedAuthorization, ...]


@dataclass(frozen=True)
class IssueToken:
    """Everything making one token takes, fixed by the plan: the desired token, the org, and
    its user (``owner_id`` None: the bot user made in this same run, found again by
    ``bot_user``), and the IDs of the tokens that existed when the plan was made (so a token
    found after a lost answer is told from an old one)."""

    spec: TokenSpec
    org_id: str
    owner_id: str | None
    bot_user: str
    known_ids: frozenset[str]


@dataclass(frozen=True)
class BotOwnership:
    """Making the bot user an owner of the org (``bot_id`` None: made in this same run)."""

    org_id: str
    bot_user: str
    bot_id: str | None


TokenStep = IssueToken | BotOwnership
"""What a tokenmaker change carries for its execution (the user and stack changes need only
their names)."""


@dataclass(frozen=True)
class ObservedIdentities:
    """What tokenmaker sees: the org, its buckets, the bot user, the tokens, the operator."""

    org_id: str
    buckets: list[ObservedBucket]
    bot: BotObservation | None
    tokens: list[ObservedAuthorization]
    operator_id: str
    dashboard_stack: bool | None = None
    """Whether dashboardmaker's stack exists (None: not looked for)."""


@dataclass
class TokenReport(Report):
    """tokenmaker's report: also the permissions each role gets, and the new token values
    (never in ``repr``; rendered only to stdout or a Secret manifest)."""

    permissions: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

"""tokenmaker's pure parts: desired permissions, planning, apply order, output and manifest."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from rubin_monitoring.exceptions import ConfigError, InfluxDBError, RubinMonitoringError
from rubin_monitoring.models.buckets import ObservedBucket
from rubin_monitoring.models.changes import NoteKind, Plan, ReconcileOptions
from rubin_monitoring.models.inventory import Environment, Inventory, InventoryProblem
from rubin_monitoring.models.tokens import (
    BotObservation,
    CreatedToken,
    IssueToken,
    ObservedAuthorization,
    ObservedUser,
    Permission,
    Role,
    TokenReport,
    TokenSpec,
    describe_permissions,
    telegraf_environment,
    telegraf_role,
    token_description,
    token_role,
)
from rubin_monitoring.render import render_text, to_json
from rubin_monitoring.services.reconcile import reconcile
from rubin_monitoring.services.token_plan import (
    all_roles,
    application_buckets,
    desired_tokens,
    environment_buckets,
    select_roles,
)
from rubin_monitoring.services.token_plan import plan_tokens as plan_tokens_of
from rubin_monitoring.services.tokens import TokenMaker
from rubin_monitoring.storage.secret_manifest import (
    check_manifest_path,
    secret_key,
    secret_manifest_text,
    write_secret_manifest,
)

ORG = "org0000000000001"
OWNED = "Telegraf metrics (managed-by=rubin-monitoring)"
BOT = ObservedUser("bot0000000000001", "rubin-monitoring-bot")


def bucket(name: str, description: str | None = OWNED, system: bool = False) -> ObservedBucket:
    return ObservedBucket(f"id-{name}", name, 0, description, system)


BUCKETS = [
    bucket("alpha"),
    bucket("beta"),
    bucket("multiapp_"),
    bucket("alerted_"),
    bucket("silences_"),
    bucket("probes_"),
    bucket("influxdb_"),
    bucket("handmade", description="someone else's"),
    bucket("_monitoring", description=None, system=True),
]


# Each environment's application buckets: one Telegraf token each.
ENVIRONMENTS = {"idfdev": ["alpha", "beta"], "summit": ["alpha"]}
IDF, SUMMIT = "telegraf-idfdev", "telegraf-summit"
# Each environment's remote-write credential (a password to the receiver).
RECEIVER_IDF, RECEIVER_SUMMIT = "receiver-idfdev", "receiver-summit"
ROLES = [
    IDF,
    SUMMIT,
    RECEIVER_IDF,
    RECEIVER_SUMMIT,
    "bucketmaker",
    "taskmaker",
    "notifier",
    "dashboardmaker",
    "silencer",
    "probe-telegraf",
    "host-telegraf",
    "receiver",
]


def plan_tokens(
    desired: list[TokenSpec],
    observed: list[ObservedAuthorization],
    bot: BotObservation | None,
    **options: Any,
) -> Any:
    """plan_tokens as tokenmaker runs it: the operator is ``admin``, the user of the tokens
    these tests observe (unless a test says otherwise)."""
    options.setdefault("operator_id", "admin")
    return plan_tokens_of(desired, observed, bot, **options)


def specs(roles: frozenset[str] | None = None) -> list[TokenSpec]:
    desired, conflicts = desired_tokens(ORG, "rubin", BUCKETS, roles, BOT.id, ENVIRONMENTS)
    assert conflicts == []
    return desired


def by_role(desired: list[TokenSpec]) -> dict[str, TokenSpec]:
    return {spec.role: spec for spec in desired}


def observed(
    spec: TokenSpec,
    *,
    id: str | None = None,
    user_id: str = "admin",
    active: bool = True,
    permissions: frozenset[Permission] | None = None,
    created_at: str = "2025-01-01T00:00:00Z",
    description: str | None = None,
) -> ObservedAuthorization:
    return ObservedAuthorization(
        id=id or f"auth-{spec.role}",
        description=description if description is not None else spec.description,
        user_id=BOT.id if spec.bot_owned and user_id == "admin" else user_id,
        user_name=None,
        active=active,
        permissions=spec.permissions if permissions is None else permissions,
        created_at=created_at,
    )


def converged() -> list[ObservedAuthorization]:
    return [observed(spec) for spec in specs()]


def summary(changes: list[Any]) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.kind, c.name) for c in changes]


def stale(plan: Plan[Any, Any]) -> list[tuple[str, str]]:
    return [(note.name, note.reason) for note in plan.notes_of(NoteKind.STALE)]


def existing(plan: Plan[Any, Any]) -> list[str]:
    return [note.name for note in plan.notes_of(NoteKind.EXISTS)]


def warnings(plan: Plan[Any, Any]) -> list[str]:
    return [note.reason for note in plan.notes_of(NoteKind.WARNING)]


# Markers and permissions


def test_description_marker_round_trips_and_ignores_foreign_tokens() -> None:
    for role in [*ROLES, "telegraf"]:
        assert token_role(token_description(role)) == role
    assert token_description(IDF).endswith("(managed-by=rubin-monitoring token=telegraf-idfdev)")
    assert telegraf_role("idfdev") == IDF
    assert telegraf_environment(IDF) == "idfdev"
    assert telegraf_environment("telegraf") is None
    assert telegraf_environment("notifier") is None
    assert token_role("admin's token=telegraf") is None  # no ownership marker
    assert token_role("x (managed-by=rubin-monitoring)") is None  # owned, but no role
    assert token_role(None) is None


def test_permission_json_round_trip_ignores_the_display_name() -> None:
    item = {
        "action": "write",
        "resource": {"type": "buckets", "id": "b1", "orgID": ORG, "name": "alpha", "org": "o"},
    }
    permission = Permission.from_json(item)
    assert permission == Permission("write", "buckets", ORG, "b1")
    assert permission.label == "alpha"
    assert str(permission) == "write:buckets/alpha"
    assert permission.to_json() == {
        "action": "write",
        "resource": {"type": "buckets", "orgID": ORG, "id": "b1"},
    }
    assert Permission("read", "tasks", ORG).to_json() == {
        "action": "read",
        "resource": {"type": "tasks", "orgID": ORG},
    }


def test_describe_permissions_groups_by_action_and_type() -> None:
    text = describe_permissions(
        [
            Permission("write", "buckets", ORG, "b", "beta"),
            Permission("write", "buckets", ORG, "a", "alpha"),
            Permission("read", "buckets", ORG),
            Permission("read", "orgs", ORG, ORG, "rubin"),
        ]
    )
    assert text == "read:buckets, read:orgs/rubin, write:buckets/{alpha,beta}"


# Desired tokens


def test_every_permission_names_the_org() -> None:
    """All but the taskmaker token's read of its own (bot) user: users are not org-scoped."""
    for spec in specs():
        assert spec.permissions
        for permission in spec.permissions:
            if permission == Permission("read", "users", "", BOT.id):
                assert spec.role == Role.TASKMAKER
                assert "orgID" not in permission.to_json()["resource"]  # type: ignore[operator]
                continue
            assert permission.org_id == ORG
            assert permission.to_json()["resource"]["orgID"] == ORG  # type: ignore[index]


def test_each_role_gets_only_what_its_job_needs() -> None:
    roles = by_role(specs())
    read_org = Permission("read", "orgs", ORG, ORG)
    # The lease every writing run takes is a label.
    leases = {Permission("read", "labels", ORG), Permission("write", "labels", ORG)}
    # Each cluster's Telegraf writes exactly its environment's applications' buckets, and
    # probes_ (its control plane's certificate).
    probes = Permission("write", "buckets", ORG, "id-probes_")
    assert roles[IDF].permissions == {
        Permission("write", "buckets", ORG, "id-alpha"),
        Permission("write", "buckets", ORG, "id-beta"),
        probes,
    }
    assert roles[SUMMIT].permissions == {Permission("write", "buckets", ORG, "id-alpha"), probes}
    assert roles[Role.BUCKETMAKER].permissions == {
        read_org,
        Permission("read", "buckets", ORG),
        Permission("write", "buckets", ORG),
        Permission("read", "dbrp", ORG),
        Permission("write", "dbrp", ORG),
        *leases,
    }
    assert roles[Role.TASKMAKER].permissions == {
        read_org,
        Permission("read", "buckets", ORG),
        Permission("read", "tasks", ORG),
        Permission("write", "tasks", ORG),
        Permission("read", "users", "", BOT.id),
        *leases,
    }
    assert roles[Role.NOTIFIER].permissions == {
        read_org,
        Permission("read", "buckets", ORG, "id-multiapp_"),
        Permission("read", "buckets", ORG, "id-alerted_"),
        Permission("write", "buckets", ORG, "id-alerted_"),
        # Silences mute alerts; the heartbeat checks the tasks' last runs.
        Permission("read", "buckets", ORG, "id-silences_"),
        Permission("read", "tasks", ORG),
        *leases,
    }
    # People adding and ending silences: silences_ and nothing else (no lease, no org).
    assert roles[Role.SILENCER].permissions == {
        Permission("read", "buckets", ORG, "id-silences_"),
        Permission("write", "buckets", ORG, "id-silences_"),
    }
    # A stack cannot be granted (no such permission type): tokenmaker creates dashboardmaker's.
    assert roles[Role.DASHBOARDMAKER].permissions == {
        read_org,
        Permission("read", "dashboards", ORG),
        Permission("write", "dashboards", ORG),
        Permission("read", "variables", ORG),
        Permission("write", "variables", ORG),
        *leases,
    }
    # The Telegrafs outside the clusters write their one bucket each.
    assert roles[Role.PROBE_TELEGRAF].permissions == {
        Permission("write", "buckets", ORG, "id-probes_")
    }
    assert roles[Role.HOST_TELEGRAF].permissions == {
        Permission("write", "buckets", ORG, "id-influxdb_")
    }
    # The remote-write receiver writes every environment's buckets, and its own counters into
    # influxdb_; each environment's credential is a token that may read the org, no more.
    assert roles[Role.RECEIVER].permissions == {
        Permission("write", "buckets", ORG, "id-alpha"),
        Permission("write", "buckets", ORG, "id-beta"),
        Permission("write", "buckets", ORG, "id-influxdb_"),
    }
    assert roles[RECEIVER_IDF].permissions == {read_org}
    assert roles[RECEIVER_SUMMIT].permissions == {read_org}
    assert [spec.role for spec in specs() if spec.bot_owned] == [Role.TASKMAKER]
    assert [spec.role for spec in specs()] == ROLES


def test_application_buckets_are_owned_non_internal_buckets() -> None:
    assert [b.name for b in application_buckets(BUCKETS)] == ["alpha", "beta"]


@pytest.mark.parametrize(
    "missing", [["multiapp_"], ["alerted_"], ["silences_"], ["multiapp_", "alerted_"]]
)
def test_missing_internal_buckets_say_run_bucketmaker_first(missing: list[str]) -> None:
    buckets = [b for b in BUCKETS if b.name not in missing]
    with pytest.raises(ConfigError) as caught:
        desired_tokens(ORG, "rubin", buckets)
    message = str(caught.value)
    assert "run bucketmaker first" in message and "\n" not in message
    assert all(name in message for name in missing)
    assert caught.value.exit_code == 2


def test_no_application_bucket_blocks_only_the_telegraf_tokens() -> None:
    names = ("multiapp_", "alerted_", "silences_", "probes_", "influxdb_")
    internal = [b for b in BUCKETS if b.name in names]
    desired, conflicts = desired_tokens(ORG, "rubin", internal, environments=ENVIRONMENTS)
    assert [spec.role for spec in desired] == ROLES[2:]
    assert [(c.category, c.kind, c.name) for c in conflicts] == [
        (NoteKind.CONFLICT, "token", IDF),
        (NoteKind.CONFLICT, "token", SUMMIT),
        (NoteKind.WARNING, "token", "receiver"),
    ]
    assert "run bucketmaker" in conflicts[0].reason
    # The receiver's token writes influxdb_ meanwhile, and is stale once the buckets exist.
    assert "no owned bucket alpha, beta yet" in conflicts[2].reason
    assert by_role(desired)["receiver"].permissions == {
        Permission("write", "buckets", ORG, "id-influxdb_")
    }


@pytest.mark.parametrize(
    ("missing", "roles"),
    [("probes_", ["probe-telegraf"]), ("influxdb_", ["host-telegraf", "receiver"])],
)
def test_a_missing_fleet_bucket_blocks_only_the_tokens_writing_it(
    missing: str, roles: list[str]
) -> None:
    buckets = [b for b in BUCKETS if b.name != missing]
    desired, notes = desired_tokens(ORG, "rubin", buckets, None, BOT.id, ENVIRONMENTS)
    assert [spec.role for spec in desired] == [r for r in ROLES if r not in roles]
    conflicts = [note for note in notes if note.category is NoteKind.CONFLICT]
    assert [(c.category, c.kind, c.name) for c in conflicts] == [
        (NoteKind.CONFLICT, "token", role) for role in roles
    ]
    assert all(f"no bucket {missing} yet: run bucketmaker" in c.reason for c in conflicts)
    # The clusters' Telegraf tokens write probes_ too: without it they are made, with a warning.
    warnings = [(n.name, n.reason) for n in notes if n.category is NoteKind.WARNING]
    if missing == "probes_":
        assert [name for name, _ in warnings] == [IDF, SUMMIT]
        assert "no bucket probes_ yet" in warnings[0][1]
    else:
        assert warnings == []


def test_a_bucket_not_made_yet_is_a_warning_and_the_token_writes_the_others() -> None:
    environments = {"idfdev": ["alpha", "beta", "gamma"]}
    desired, notes = desired_tokens(ORG, "rubin", BUCKETS, None, BOT.id, environments)
    assert by_role(desired)[IDF].permissions == by_role(specs())[IDF].permissions
    assert [(n.category, n.name) for n in notes] == [
        (NoteKind.WARNING, IDF),
        (NoteKind.WARNING, "receiver"),
    ]
    assert "gamma" in notes[0].reason


def test_roles_select_the_tokens() -> None:
    desired = specs(frozenset({Role.NOTIFIER.value}))
    assert [spec.role for spec in desired] == [Role.NOTIFIER]
    assert [spec.role for spec in specs(frozenset({SUMMIT}))] == [SUMMIT]


def test_role_option_accepts_fixed_and_per_environment_roles() -> None:
    environments = list(ENVIRONMENTS)
    assert select_roles([], environments) is None
    assert select_roles(["notifier", IDF], environments) == frozenset({"notifier", IDF})
    # telegraf alone: every environment's Telegraf token (what bucketmaker's RECREATE_BUCKETS
    # conflict tells the operator to rotate).
    assert select_roles(["telegraf"], environments) == frozenset({IDF, SUMMIT})
    assert select_roles(["receiver", RECEIVER_IDF], environments) == frozenset(
        {"receiver", RECEIVER_IDF}
    )
    with pytest.raises(ConfigError) as caught:
        select_roles(["telegraf-base"], environments)
    assert str(caught.value) == (
        "unknown --role 'telegraf-base' (roles: bucketmaker, taskmaker, notifier, "
        "dashboardmaker, silencer, probe-telegraf, host-telegraf, receiver, telegraf-idfdev, "
        "telegraf-summit, receiver-idfdev, receiver-summit, telegraf)"
    )
    with pytest.raises(ConfigError):
        select_roles(["receiver-base"], environments)
    assert all_roles(environments) == set(ROLES)


def test_environment_buckets_follow_the_inventory() -> None:
    inventory = Inventory(
        (
            Environment("idfdev", None, "values-idfdev.yaml", ("times-square", "mobu", "bad_")),
            Environment("summit", None, "values-summit.yaml", ("mobu",)),
        ),
        (InventoryProblem("values-idfdev.yaml", "reserved", application="bad_"),),
    )
    assert environment_buckets(inventory) == {
        "idfdev": ["mobu", "times_square"],
        "summit": ["mobu"],
    }


# Planning


def test_first_run_creates_the_bot_its_ownership_and_every_token() -> None:
    plan = plan_tokens(specs(), [], BotObservation(None))
    assert summary(plan.changes) == [
        ("create", "user", "rubin-monitoring-bot"),
        ("create", "org-owner", "rubin-monitoring-bot"),
        *[("create", "token", role) for role in ROLES],
    ]


def test_converged_run_changes_nothing_and_lists_the_existing_tokens() -> None:
    foreign = ObservedAuthorization("x", "admin's token", "admin", None, True, frozenset())
    plan = plan_tokens(specs(), [*converged(), foreign], BotObservation(BOT, org_owner=True))
    assert plan.changes == []
    assert plan.orphans == []
    assert stale(plan) == []
    assert existing(plan) == ROLES
    assert plan.unchanged == 14  # user, ownership, twelve tokens


def test_bot_without_ownership_gets_only_the_ownership() -> None:
    plan = plan_tokens(specs(), converged(), BotObservation(BOT, org_owner=False))
    assert summary(plan.changes) == [("create", "org-owner", "rubin-monitoring-bot")]


def test_bot_that_is_a_member_is_made_an_owner_instead() -> None:
    plan = plan_tokens(specs(), converged(), BotObservation(BOT, org_member=True))
    assert summary(plan.changes) == [("update", "org-owner", "rubin-monitoring-bot")]
    assert plan.changes[0].reason.startswith("member -> owner")


def test_rotate_recreates_every_token_and_replaces_all_of_its_role() -> None:
    spec = by_role(specs())[Role.NOTIFIER]
    older = observed(spec, id="old-notifier", created_at="2024-01-01T00:00:00Z")
    plan = plan_tokens(
        specs(), [*converged(), older], BotObservation(BOT, org_owner=True), rotate=True
    )
    assert summary(plan.changes) == [("recreate", "token", role) for role in ROLES]
    [notifier] = [change for change in plan.changes if change.name == "notifier"]
    assert notifier.current is not None
    assert [t.id for t in notifier.current.tokens] == ["auth-notifier", "old-notifier"]
    assert plan.orphans == []


def test_telegraf_tokens_made_before_the_control_plane_certificate_are_stale() -> None:
    """A cluster's Telegraf now writes probes_ too: its older token lacks that, and is stale
    (reported, kept working for the applications' buckets) until rotated."""
    tokens = [observed(s) for s in specs() if s.role not in (IDF, SUMMIT)]
    for role in (IDF, SUMMIT):
        spec = by_role(specs())[role]
        older = frozenset(p for p in spec.permissions if p.resource_id != "id-probes_")
        tokens.append(observed(spec, permissions=older))
    plan = plan_tokens(specs(), tokens, BotObservation(BOT, org_owner=True))
    assert plan.changes == []
    assert stale(plan) == [
        (IDF, "lacks write:buckets/probes_"),
        (SUMMIT, "lacks write:buckets/probes_"),
    ]


def test_new_application_makes_its_environments_telegraf_token_stale_not_recreated() -> None:
    """beta enabled in idfdev only: only idfdev's token is stale; summit's is unaffected."""
    telegraf = by_role(specs())[IDF]
    before = frozenset(p for p in telegraf.permissions if p.resource_id != "id-beta")
    tokens = [observed(s) for s in specs() if s.role != IDF]
    tokens.append(observed(telegraf, permissions=before))
    plan = plan_tokens(specs(), tokens, BotObservation(BOT, org_owner=True))
    assert plan.changes == []
    assert stale(plan) == [(IDF, "lacks write:buckets/beta")]
    assert IDF not in existing(plan) and SUMMIT in existing(plan)

    selected = frozenset({IDF})
    rotated = plan_tokens(
        specs(selected), tokens, BotObservation(BOT, org_owner=True), rotate=True, roles=selected
    )
    assert summary(rotated.changes) == [("recreate", "token", IDF)]
    first = rotated.changes[0]
    assert first.reason == "--rotate (was stale: lacks write:buckets/beta)"
    assert first.current is not None
    assert [t.id for t in first.current.tokens] == [f"auth-{IDF}"]


def test_inactive_extra_permission_and_wrong_owner_are_stale() -> None:
    roles = by_role(specs())
    extra = Permission("write", "buckets", ORG, "id-gone", "gone")
    tokens = [
        observed(roles[IDF], active=False),
        observed(roles[SUMMIT]),
        observed(roles[Role.BUCKETMAKER]),
        replace(observed(roles[Role.TASKMAKER]), user_id="admin"),  # the operator's, not the bot's
        observed(roles[Role.NOTIFIER], permissions=roles[Role.NOTIFIER].permissions | {extra}),
    ]
    plan = plan_tokens(specs(), tokens, BotObservation(BOT, org_owner=True))
    reasons = dict(stale(plan))
    assert reasons == {
        IDF: "inactive",
        "taskmaker": "belongs to user admin, not to the bot user rubin-monitoring-bot",
        "notifier": "also has write:buckets/gone",
    }


def test_a_taskmaker_token_of_a_user_that_is_not_the_bot_is_not_the_toolkits() -> None:
    """The bot user is new: the taskmaker token of the user that held that name before (or of
    anyone) is not the toolkit's, so it is neither stale nor replaced: a new one is made for
    the new bot, and the old one is left alone (exact ownership; no default disables it)."""
    plan = plan_tokens(specs(), converged(), BotObservation(None))
    assert stale(plan) == []
    assert ("create", "token", "taskmaker") in summary(plan.changes)
    assert not [c for c in plan.changes if c.action.value == "delete"]


def test_duplicates_and_unknown_roles_are_orphans_deleted_only_with_prune() -> None:
    spec = by_role(specs())[IDF]
    older = observed(spec, id="old", created_at="2024-01-01T00:00:00Z")
    unknown = observed(spec, id="weird", description=token_description("grafana"))
    tokens = [*converged(), older, unknown]
    bot = BotObservation(BOT, org_owner=True)
    plan = plan_tokens(specs(), tokens, bot)
    assert plan.changes == []
    assert [o.name for o in plan.orphans] == [f"{IDF} (old)", "grafana (weird)"]
    pruned = plan_tokens(specs(), tokens, bot, prune=True)
    assert summary(pruned.changes) == [
        ("delete", "token", f"{IDF} (old)"),
        ("delete", "token", "grafana (weird)"),
    ]
    assert all(c.spec is None for c in pruned.changes)


def test_unselected_roles_and_the_bot_are_left_alone() -> None:
    plan = plan_tokens(
        specs(frozenset({IDF})),
        converged()[1:],
        None,
        roles=frozenset({IDF}),
        rotate=True,
        known_roles=set(ROLES),
    )
    assert summary(plan.changes) == [("create", "token", IDF)]
    assert plan.orphans == []


def legacy_telegraf_token() -> ObservedAuthorization:
    """The single Telegraf token of the old scheme (write on every application bucket)."""
    permissions = by_role(specs())[IDF].permissions
    return ObservedAuthorization(
        "auth-telegraf", token_description("telegraf"), "admin", None, True, permissions
    )


def test_the_old_single_telegraf_token_is_an_orphan_deleted_only_with_prune() -> None:
    tokens = [*converged(), legacy_telegraf_token()]
    bot = BotObservation(BOT, org_owner=True)
    known = all_roles(ENVIRONMENTS)
    plan = plan_tokens(specs(), tokens, bot, operator_id="admin", known_roles=known)
    assert plan.changes == []
    assert [(o.name, o.reason) for o in plan.orphans] == [
        (
            "telegraf (auth-telegraf)",
            "the single Telegraf token of the old scheme: each cluster now has its own "
            "telegraf-<environment> token; deploy those, then --prune deletes this one",
        )
    ]
    pruned = plan_tokens(specs(), tokens, bot, operator_id="admin", prune=True, known_roles=known)
    assert summary(pruned.changes) == [("delete", "token", "telegraf (auth-telegraf)")]
    # A rotation of selected roles neither reports nor deletes it.
    selected = plan_tokens(
        specs(frozenset({IDF})),
        tokens,
        bot,
        operator_id="admin",
        prune=True,
        rotate=True,
        roles=frozenset({IDF}),
        known_roles=known,
    )
    assert summary(selected.changes) == [("recreate", "token", IDF)]
    assert selected.orphans == []
    # Someone else's token described like it is not ours: never an orphan.
    foreign = ObservedAuthorization(
        "x", token_description("telegraf"), "person", None, True, frozenset()
    )
    other = plan_tokens(specs(), [*converged(), foreign], bot, operator_id="admin", prune=True)
    assert other.changes == [] and other.orphans == []


def test_a_removed_environments_telegraf_token_is_an_orphan() -> None:
    summit = by_role(specs())[SUMMIT]
    gone = observed(summit, id="auth-base", description=token_description("telegraf-base"))
    plan = plan_tokens(
        specs(),
        [*converged(), gone],
        BotObservation(BOT, org_owner=True),
        known_roles=all_roles(ENVIRONMENTS),
    )
    assert [(o.name, o.reason) for o in plan.orphans] == [
        ("telegraf-base (auth-base)", "environment 'base' is not in the repository any more")
    ]


def test_a_removed_environments_receiver_credential_is_an_orphan() -> None:
    credential = by_role(specs())[RECEIVER_SUMMIT]
    gone = observed(credential, id="auth-base", description=token_description("receiver-base"))
    plan = plan_tokens(
        specs(),
        [*converged(), gone],
        BotObservation(BOT, org_owner=True),
        known_roles=all_roles(ENVIRONMENTS),
    )
    assert [(o.name, o.reason) for o in plan.orphans] == [
        ("receiver-base (auth-base)", "environment 'base' is not in the repository any more")
    ]


def test_receiver_credentials_are_passwords_in_the_secret() -> None:
    assert secret_key("receiver-idfdev") == "receiver-idfdev-password"
    assert secret_key("receiver") == "receiver-token"
    assert secret_key("telegraf-idfdev") == "telegraf-idfdev-token"
    text = secret_manifest_text({"receiver": "r", RECEIVER_IDF: "p", IDF: "t", "notifier": "n"})
    assert list(yaml.safe_load(text)["stringData"]) == [
        "telegraf-idfdev-token",
        "receiver-idfdev-password",
        "notifier-token",
        "receiver-token",
    ]


def test_bot_in_other_orgs_warns_and_inactive_bot_is_a_conflict() -> None:
    inactive = ObservedUser(BOT.id, BOT.name, active=False)
    plan = plan_tokens(specs(), converged(), BotObservation(inactive, True, ("other-org",)))
    assert len(warnings(plan)) == 1 and "other-org" in warnings(plan)[0]
    assert [(c.kind, c.name) for c in plan.conflicts] == [("user", "rubin-monitoring-bot")]


# Apply, against fakes


class FakeStore:
    org = "rubin"
    org_id = ORG

    def __init__(self, buckets: list[ObservedBucket]) -> None:
        self.buckets = buckets

    def list_buckets(self) -> list[ObservedBucket]:
        return self.buckets

    def current_user_id(self) -> str:
        return "admin"


class FakeAuths:
    def __init__(
        self,
        tokens: list[ObservedAuthorization] | None = None,
        bot: ObservedUser | None = None,
        fail_delete: bool = False,
    ) -> None:
        self.tokens = tokens or []
        self.bot = bot
        self.owners: set[str] = {bot.id} if bot else set()
        self.members: set[str] = set()
        self.calls: list[tuple[str, ...]] = []
        self.fail_delete = fail_delete
        self.counter = 0

    def find_user(self, name: str) -> ObservedUser | None:
        return self.bot

    def create_user(self, name: str) -> ObservedUser:
        self.calls.append(("create_user", name))
        self.bot = ObservedUser("new-bot", name)
        return self.bot

    def org_owner_ids(self, org_id: str) -> set[str]:
        return self.owners

    def org_member_ids(self, org_id: str) -> set[str]:
        return self.members

    def remove_org_member(self, org_id: str, user_id: str) -> None:
        self.calls.append(("remove_org_member", org_id, user_id))

    def user_orgs(self, user_id: str) -> list[tuple[str, str]]:
        return [(ORG, "rubin")]

    def add_org_owner(self, org_id: str, user_id: str) -> None:
        self.calls.append(("add_org_owner", org_id, user_id))

    def list_authorizations(self, org_id: str) -> list[ObservedAuthorization]:
        return self.tokens

    def create_authorization(
        self,
        org_id: str,
        description: str,
        permissions: list[Permission],
        user_id: str,
        known_ids: Collection[str] = (),
    ) -> CreatedToken:
        self.counter += 1
        role = token_role(description) or "?"
        self.calls.append(("create_authorization", role, str(user_id)))
        return CreatedToken(f"new-{role}", f"SECRET-{role}-{self.counter}")

    def delete_authorization(self, authorization_id: str) -> None:
        self.calls.append(("delete_authorization", authorization_id))
        if self.fail_delete:
            raise InfluxDBError("DELETE", "/api/v2/authorizations/x", 404, "not found")


def run(auths: FakeAuths, *, dry_run: bool = False, **options: Any) -> TokenReport:
    options.setdefault("environments", ENVIRONMENTS)
    maker = TokenMaker(cast(Any, FakeStore(BUCKETS)), cast(Any, auths), **options)
    report = reconcile(maker, ReconcileOptions(dry_run=dry_run))
    assert isinstance(report, TokenReport)
    return report


def test_apply_creates_the_bot_before_its_token_and_returns_values_once() -> None:
    auths = FakeAuths()
    result = run(auths)
    assert auths.calls == [
        ("create_user", "rubin-monitoring-bot"),
        ("add_org_owner", ORG, "new-bot"),
        ("create_authorization", IDF, "admin"),
        ("create_authorization", SUMMIT, "admin"),
        ("create_authorization", RECEIVER_IDF, "admin"),
        ("create_authorization", RECEIVER_SUMMIT, "admin"),
        ("create_authorization", "bucketmaker", "admin"),
        ("create_authorization", "taskmaker", "new-bot"),
        ("create_authorization", "notifier", "admin"),
        ("create_authorization", "dashboardmaker", "admin"),
        ("create_authorization", "silencer", "admin"),
        ("create_authorization", "probe-telegraf", "admin"),
        ("create_authorization", "host-telegraf", "admin"),
        ("create_authorization", "receiver", "admin"),
    ]
    assert set(result.tokens) == set(ROLES)
    assert result.exit_code == 0
    assert "SECRET" not in repr(result)
    assert "SECRET" not in repr(CreatedToken("i", "SECRET"))


def test_member_bot_loses_the_member_mapping_before_it_gets_the_owner_one() -> None:
    auths = FakeAuths(converged(), BOT)
    auths.owners, auths.members = set(), {BOT.id}
    run(auths, roles=["taskmaker"])
    assert auths.calls == [
        ("remove_org_member", ORG, BOT.id),
        ("add_org_owner", ORG, BOT.id),
    ]


def test_rotate_creates_the_new_token_before_deleting_the_old() -> None:
    auths = FakeAuths(converged(), BOT)
    result = run(auths, rotate=True, roles=[SUMMIT])
    assert auths.calls == [
        ("create_authorization", SUMMIT, "admin"),
        ("delete_authorization", f"auth-{SUMMIT}"),
    ]
    assert list(result.tokens) == [SUMMIT]


def test_rotate_role_telegraf_replaces_every_environments_token() -> None:
    auths = FakeAuths(converged(), BOT)
    result = run(auths, rotate=True, roles=["telegraf"])
    assert auths.calls == [
        ("create_authorization", IDF, "admin"),
        ("delete_authorization", f"auth-{IDF}"),
        ("create_authorization", SUMMIT, "admin"),
        ("delete_authorization", f"auth-{SUMMIT}"),
    ]
    assert list(result.tokens) == [IDF, SUMMIT]


def test_an_unknown_role_is_bad_input_before_anything_is_asked() -> None:
    auths = FakeAuths()
    with pytest.raises(ConfigError, match="unknown --role 'telegraf-nope'"):
        run(auths, roles=["telegraf-nope"])
    assert auths.calls == []


def test_failed_delete_is_a_partial_failure_that_still_returns_the_new_value() -> None:
    auths = FakeAuths(converged(), BOT, fail_delete=True)
    result = run(auths, rotate=True, roles=["notifier"])
    assert list(result.tokens) == ["notifier"]
    assert result.exit_code == 1


def test_dry_run_calls_nothing_that_writes() -> None:
    auths = FakeAuths()
    result = run(auths, dry_run=True)
    assert auths.calls == []
    assert result.tokens == {}
    assert len(result.results) == 14  # the bot user, its ownership, twelve tokens


def test_empty_bot_user_is_bad_input() -> None:
    with pytest.raises(ConfigError):
        run(FakeAuths(), bot_user="  ")


# Output


def test_text_output_prints_each_value_once_and_json_matches() -> None:
    result = run(FakeAuths())
    text = render_text(result, manifest=None)
    for role, token in result.tokens.items():
        assert text.count(token) == 1
        assert f"{role} {token}" in text.splitlines()
    body = to_json(result, manifest=None)
    assert body["tokens"] == result.tokens
    assert list(cast(dict[str, str], body["tokens"])) == ROLES
    json.dumps(body)


def test_with_a_manifest_no_value_reaches_stdout() -> None:
    result = run(FakeAuths())
    manifest = Path("tokens.yaml")
    text = render_text(result, manifest=manifest)
    body = json.dumps(to_json(result, manifest=manifest))
    for token in result.tokens.values():
        assert token not in text and token not in body
    assert "tokens.yaml written" in text


def test_rerun_output_says_the_tokens_exist_without_values() -> None:
    result = run(FakeAuths(converged(), BOT))
    text = render_text(result, manifest=None)
    assert result.tokens == {}
    assert text.count("exists   token") == len(ROLES)
    assert "SECRET" not in text and "new tokens" not in text


def test_secret_manifest_is_a_valid_secret_with_one_key_per_role() -> None:
    tokens = {"notifier": "n", SUMMIT: "s", "bucketmaker": "b", IDF: "i"}
    text = secret_manifest_text(tokens, "tokens", "monitoring")
    document = yaml.safe_load(text)
    assert document["kind"] == "Secret" and document["apiVersion"] == "v1"
    assert document["metadata"]["name"] == "tokens"
    assert document["metadata"]["namespace"] == "monitoring"
    # One key per environment: each cluster's DaemonSet reads its own.
    assert list(document["stringData"].items()) == [
        ("telegraf-idfdev-token", "i"),
        ("telegraf-summit-token", "s"),
        ("bucketmaker-token", "b"),
        ("notifier-token", "n"),
    ]
    assert "namespace" not in yaml.safe_load(secret_manifest_text({"a": "b"}))["metadata"]


def test_manifest_is_written_with_mode_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("old")
    path.chmod(0o644)
    write_secret_manifest(path, "kind: Secret\n")
    assert path.read_text() == "kind: Secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.yaml"]


def test_manifest_path_is_checked_before_any_token_is_made(tmp_path: Path) -> None:
    check_manifest_path(tmp_path / "new.yaml")
    with pytest.raises(ConfigError):
        check_manifest_path(tmp_path)
    with pytest.raises(ConfigError):
        check_manifest_path(tmp_path / "missing" / "x.yaml")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError):
            check_manifest_path(locked / "x.yaml")


def test_unwritable_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RubinMonitoringError) as caught:
        write_secret_manifest(tmp_path / "missing" / "x.yaml", "x")
    assert "--rotate" in str(caught.value) and "\n" not in str(caught.value)


def test_a_look_alike_token_of_someone_else_is_never_ours() -> None:
    """Issue 8: a hand-made token described like the toolkit's (exactly, or with ``NOT``) is
    neither taken as current nor pruned; ownership needs the marker and the right user."""
    roles = by_role(specs())
    telegraf = roles[IDF]
    not_marked = observed(
        telegraf,
        id="fake-1",
        description="NOT managed-by=rubin-monitoring token=telegraf-idfdev",
        created_at="2030-01-01T00:00:00Z",
    )
    other_user = observed(
        telegraf, id="fake-2", user_id="person", created_at="2030-01-01T00:00:00Z"
    )
    tokens = [*converged(), not_marked, other_user]
    plan = plan_tokens(
        specs(), tokens, BotObservation(BOT, org_owner=True), operator_id="admin", prune=True
    )
    assert plan.changes == [] and plan.orphans == []
    assert existing(plan) == ROLES
    rotated = plan_tokens(
        specs(), tokens, BotObservation(BOT, org_owner=True), operator_id="admin", rotate=True
    )
    replaced = [t.id for c in rotated.changes if c.current for t in c.current.tokens]
    assert "fake-1" not in replaced and "fake-2" not in replaced


def test_plan_is_pure_and_each_change_carries_what_executing_it_takes() -> None:
    """tokenmaker's plan changes nothing in the job (it used to store the org, the operator,
    the known tokens and the bot for execute): every change carries them itself."""
    auths = FakeAuths()
    maker = TokenMaker(cast(Any, FakeStore(BUCKETS)), cast(Any, auths), environments=ENVIRONMENTS)
    observed_state = maker.observe()
    before = dict(vars(maker))
    first = maker.plan(observed_state, ReconcileOptions())
    assert vars(maker) == before
    second = maker.plan(observed_state, ReconcileOptions())
    assert first.changes == second.changes and first.notes == second.notes
    issues = [c.spec for c in first.changes if isinstance(c.spec, IssueToken)]
    assert {issue.org_id for issue in issues} == {ORG}
    taskmaker = next(issue for issue in issues if issue.spec.role == "taskmaker")
    assert taskmaker.owner_id is None  # the bot is made by this run: found again by name
    assert all(i.owner_id == "admin" for i in issues if i.spec.role != "taskmaker")

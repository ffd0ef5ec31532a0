"""tokenmaker: the bot user that owns the tasks, and one least-privilege, org-scoped token per
role (what each role gets, and why: :mod:`rubin_monitoring.services.token_plan`).

Like every job: ``observe`` lists, ``plan`` is the pure :func:`plan_identities`, ``execute``
makes one change from what the change itself carries. A bot user made earlier in the same run
is found again by name, never remembered. Changes are applied phase by phase: the bot user,
its ownership of the org, tokens, then orphan deletions; a rotation creates the new token
before it deletes the ones it replaces.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from ..exceptions import ConfigError, RubinMonitoringError
from ..models.changes import Action, Change, NoteKind, ReconcileOptions, Report
from ..models.dashboards import STACK_DESCRIPTION, STACK_NAME
from ..models.inventory import InventoryProblem
from ..models.tokens import (
    DEFAULT_BOT_USER,
    KIND_OWNER,
    KIND_STACK,
    KIND_USER,
    BotObservation,
    BotOwnership,
    IssueToken,
    ObservedIdentities,
    Role,
    RoleTokens,
    TokenReport,
    TokenStep,
)
from ..storage.authorizations import AuthorizationStore
from ..storage.influxdb import InfluxDBStore
from ..storage.templates import TemplateStore
from .reconcile import ReconcilingJob
from .token_plan import TokenPlan, plan_identities, read_own_user, select_roles

log = logging.getLogger(__name__)


def observe_bot(auths: AuthorizationStore, org_id: str, bot_user: str) -> BotObservation:
    """The bot user, whether it owns (or is a member of) the org, and its other orgs."""
    user = auths.find_user(bot_user)
    if user is None:
        return BotObservation(None)
    owner = user.id in auths.org_owner_ids(org_id)
    member = not owner and user.id in auths.org_member_ids(org_id)
    others = tuple(sorted(name for oid, name in auths.user_orgs(user.id) if oid != org_id))
    return BotObservation(user, owner, others, member)


class TokenMaker(ReconcilingJob[ObservedIdentities, TokenStep, RoleTokens]):
    """tokenmaker: the bot user and one token per selected role (see the module)."""

    name = "tokenmaker"

    def __init__(
        self,
        store: InfluxDBStore,
        auths: AuthorizationStore,
        *,
        bot_user: str = DEFAULT_BOT_USER,
        roles: Iterable[str] = (),
        rotate: bool = False,
        environments: Mapping[str, Sequence[str]] | None = None,
        stacks: TemplateStore | None = None,
        problems: Sequence[InventoryProblem] = (),
    ) -> None:
        self.store = store
        self.auths = auths
        self.stacks = stacks
        self.bot_user = bot_user.strip()
        if not self.bot_user:
            raise ConfigError("--bot-user is empty")
        self.environments = dict(environments or {})
        self.roles = select_roles(roles, self.environments)
        self.rotate = rotate
        self.problems = tuple(problems)
        self.tokens: dict[str, str] = {}
        """The values of the tokens made by this run (its output, for the report)."""

    def observe(self) -> ObservedIdentities:
        buckets = self.store.list_buckets()
        org_id = self.store.org_id
        bot = None
        if self.roles is None or Role.TASKMAKER in self.roles:
            bot = observe_bot(self.auths, org_id, self.bot_user)
        tokens = self.auths.list_authorizations(org_id)
        stack = None
        if self.stacks is not None and (self.roles is None or Role.DASHBOARDMAKER in self.roles):
            stack = bool(self.stacks.find_stacks(STACK_NAME))
        return ObservedIdentities(org_id, buckets, bot, tokens, self.store.current_user_id(), stack)

    def plan(self, observed: ObservedIdentities, options: ReconcileOptions) -> TokenPlan:
        plan = plan_identities(
            observed,
            options,
            org_name=self.store.org,
            bot_user=self.bot_user,
            roles=self.roles,
            rotate=self.rotate,
            environments=self.environments,
            problems=self.problems,
        )
        for note in plan.notes:
            if note.category is NoteKind.STALE:
                log.warning("token %s is stale: %s; --rotate re-issues it", note.name, note.reason)
            elif note.category is NoteKind.WARNING:
                log.warning("%s", note.reason)
        return plan

    def _bot_id(self, known: str | None) -> str:
        """``known``, else the ID of the bot user made earlier in this run."""
        if known is not None:
            return known
        user = self.auths.find_user(self.bot_user)
        if user is None:
            raise RubinMonitoringError(
                f"bot user {self.bot_user} does not exist (creating it failed)"
            )
        return user.id

    def execute(self, change: Change[TokenStep, RoleTokens]) -> None:
        step = change.spec
        if change.kind == KIND_USER:
            self.auths.create_user(change.name)
        elif change.kind == KIND_STACK:
            if self.stacks is None:  # pragma: no cover - planned only with a store
                raise RubinMonitoringError("no stack store")
            self.stacks.create_stack(change.name, STACK_DESCRIPTION)
        elif change.kind == KIND_OWNER and isinstance(step, BotOwnership):
            user_id = self._bot_id(step.bot_id)
            if change.action is Action.UPDATE:
                self.auths.remove_org_member(step.org_id, user_id)
            self.auths.add_org_owner(step.org_id, user_id)
        else:
            if isinstance(step, IssueToken):
                self._issue(step)
            for old in change.current.tokens if change.current is not None else ():
                self.auths.delete_authorization(old.id)

    def _issue(self, issue: IssueToken) -> None:
        spec = issue.spec
        permissions = set(spec.permissions)
        owner_id = issue.owner_id
        if spec.bot_owned:
            owner_id = self._bot_id(owner_id)
            permissions.add(read_own_user(owner_id))
        if owner_id is None:  # pragma: no cover - the plan names the operator's user
            raise RubinMonitoringError(f"token {spec.role}: no user to give it to")
        created = self.auths.create_authorization(
            issue.org_id, spec.description, sorted(permissions), owner_id, issue.known_ids
        )
        self.tokens[spec.role] = created.token

    def finish(self, report: Report) -> TokenReport:
        grants = {note.name: note.reason for note in report.notes_of(NoteKind.GRANTS)}
        return TokenReport(
            job=report.job,
            dry_run=report.dry_run,
            results=report.results,
            notes=[note for note in report.notes if note.category is not NoteKind.GRANTS],
            unchanged=report.unchanged,
            errors=report.errors,
            permissions=grants,
            tokens=dict(self.tokens),
        )

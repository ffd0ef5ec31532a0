"""Fault scenarios: one job run through a :class:`FaultProxy`, then what InfluxDB holds.

A scenario makes a fresh organization (and a Phalanx repository of ``apps`` applications),
prepares what the job needs without faults, runs the job in-process with ``INFLUXDB_URL`` set to
a proxy that injects one fault mode into a fraction of the requests, counts the toolkit's objects
(:mod:`rubin_monitoring.testing.census`, plain HTTP with the operator token), then runs the job
once more without faults and counts again. The tests assert on the :class:`Outcome`;
``bench/faults.py`` prints it as a table.

Variants: ``force`` (the objects exist; the run rewrites them: buckets in place, the rest
recreated), ``recreate`` (bucketmaker with ``RECREATE_BUCKETS=1``: buckets and their DBRP mappings
made again), ``prune`` (some objects are no longer desired; the run deletes them).
:func:`run_notifier_scenario` does the same for the notifier, with a Slack stand-in that fails;
:func:`run_silence_scenario` for ``silence add``, the notifier and ``silence expire``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from ..cli import cli
from ..config import SPECS
from ..models.dashboards import STACK_NAME
from ..models.tokens import ROLE_NAMES
from .census import (
    Census,
    bucket_census,
    bucket_ids,
    dbrp_census,
    lease_labels,
    list_authorizations,
    stack_census,
    task_census,
    token_census,
)
from .faultproxy import Decider, Fault, FaultEvent, FaultProxy, RequestInfo
from .flux import InfluxOrg, create_bucket, line_protocol, query_alerts, query_rows, write_lines
from .influxd import InfluxServer
from .phalanx import PhalanxRepo
from .slack_server import Behaviour, Fail, Hang, Ok, RateLimited, SlackServer

__all__ = [
    "CHECKS",
    "FAULT_MODES",
    "HTTP_TIMEOUT",
    "INTERNAL_BUCKETS",
    "JOBS",
    "PROXY_DELAY",
    "SETTING_VARIABLES",
    "WRITES",
    "Faults",
    "JobRun",
    "NotifierOutcome",
    "Outcome",
    "SilenceOutcome",
    "SuiteOrg",
    "app_names",
    "bucket_of",
    "deletes_done_after_drop",
    "first_attempts",
    "hit_methods",
    "injected",
    "new_org",
    "run_job",
    "run_notifier_scenario",
    "run_scenario",
    "run_silence_scenario",
    "set_apps",
    "stored_silences",
    "write_findings",
]

FAULT_MODES = (Fault.DROP_RESPONSE, Fault.DELAY, Fault.RESET, Fault.STATUS_503)
WRITES = frozenset({"POST", "PATCH", "DELETE"})
JOBS = ("bucketmaker", "bucketmapper", "taskmaker", "tokenmaker")
CHECKS = ("restarts", "not_running", "cpu")
HTTP_TIMEOUT = 2  # seconds per request, for the jobs run through the proxy
PROXY_DELAY = 3.0  # a delayed answer comes after the client gave up
INTERNAL_BUCKETS = ("multiapp_", "alerted_", "silences_", "influxdb_", "probes_")
# The repository's one environment is "dev" (set_apps): one Telegraf token and one
# remote-write credential for it.
ROLES = ("telegraf-dev", "receiver-dev", *ROLE_NAMES)
SETTING_VARIABLES = sorted({name for spec in SPECS for name in spec.env})


@dataclass(frozen=True)
class SuiteOrg:
    """A fresh organization on the server (the operator token may do anything in it)."""

    url: str
    token: str
    name: str
    id: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "INFLUXDB_URL": self.url,
            "INFLUXDB_TOKEN": self.token,
            "INFLUXDB_ORG": self.name,
            **extra,
        }

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=30
        )


def new_org(server: InfluxServer, prefix: str = "faults") -> SuiteOrg:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    with server.client() as client:
        response = client.post("/api/v2/orgs", json={"name": name})
        response.raise_for_status()
        return SuiteOrg(server.url, server.token, name, str(response.json()["id"]))


@dataclass(frozen=True)
class JobRun:
    """One command run: exit code, stdout (the JSON report), stderr (the logs), wall time."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> dict[str, Any] | None:
        """The JSON report, or None when the run stopped before it had one."""
        text = self.stdout.strip()
        if not text.startswith("{"):
            return None
        report: dict[str, Any] = json.loads(text)
        return report

    @property
    def changes(self) -> list[dict[str, Any]]:
        report = self.report
        return list(report.get("changes") or []) if report else []

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Changes the report says failed (each with its error)."""
        return [change for change in self.changes if change.get("status") == "failed"]


def run_job(args: Sequence[str], env: Mapping[str, str]) -> JobRun:
    """Run ``rubin-monitoring ARGS`` in-process with exactly ``env`` as its settings; the root
    logger (which the command takes over) is put back afterwards."""
    isolated: dict[str, str | None] = {name: None for name in SETTING_VARIABLES}
    isolated.update(env)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    started = time.monotonic()
    try:
        result = CliRunner().invoke(cli, list(args), env=isolated, catch_exceptions=False)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return JobRun(
        tuple(args), result.exit_code, result.stdout, result.stderr, time.monotonic() - started
    )


@dataclass(frozen=True)
class Faults:
    """What the proxy breaks: ``rate`` of the requests with a method in ``methods`` (None:
    every method), drawn from ``seed``."""

    mode: Fault
    rate: float = 0.1
    methods: frozenset[str] | None = WRITES
    seed: int = 1
    path_prefix: str = "/api/v2/"
    decider: Decider | None = None
    """Chooses the fault of every request instead (``mode`` then only names it)."""

    @property
    def label(self) -> str:
        if self.decider is not None:
            return f"{self.mode.value} (chosen per request)"
        if self.methods is None:
            scope = "all"
        else:
            scope = "writes" if self.methods == WRITES else "/".join(sorted(self.methods))
        return f"{self.mode.value} {self.rate:.0%} of {scope}"

    def install(self, proxy: FaultProxy) -> None:
        if self.decider is not None:
            proxy.set_faults(self.decider, delay=PROXY_DELAY)
            return
        proxy.set_faults(
            self.mode,
            rate=self.rate,
            methods=self.methods,
            path_prefix=self.path_prefix,
            delay=PROXY_DELAY,
        )


def injected(proxy: FaultProxy) -> int:
    """Requests the proxy broke (any mode but ``none``)."""
    return sum(count for mode, count in proxy.counts.items() if mode is not Fault.NONE)


def hit_methods(events: Sequence[FaultEvent]) -> Counter[str]:
    """Broken requests per method."""
    return Counter(event.method for event in events if event.mode is not Fault.NONE)


def deletes_done_after_drop(events: Sequence[FaultEvent]) -> int:
    """DELETEs whose answer was dropped and whose repeat InfluxDB answered 404 (gone already)."""
    dropped: set[str] = set()
    done = 0
    for event in events:
        if event.method != "DELETE":
            continue
        if event.mode is Fault.DROP_RESPONSE:
            dropped.add(event.path)
        elif event.path in dropped and event.upstream_status == 404:
            dropped.discard(event.path)
            done += 1
    return done


@dataclass
class Outcome:
    """What one scenario did: the faulty run, the census after it, the next (clean) run, the
    census after that."""

    job: str
    variant: str
    faults: Faults
    injected: int
    events: list[FaultEvent]
    run: JobRun
    after: list[Census]
    next_run: JobRun
    after_next: list[Census]
    leases_after: int
    """Lease labels left after the faulty run (a run releases its lease)."""
    ids_before: set[str] = field(default_factory=set)
    """FORCE and recreate: the IDs of the objects before the run."""
    ids_after: set[str] = field(default_factory=set)
    extra_problems: list[str] = field(default_factory=list)
    """Job-specific problems after the faulty run (e.g. a printed token that does not exist)."""

    @property
    def name(self) -> str:
        return f"{self.job} {self.variant}".strip()

    @property
    def replaced(self) -> bool:
        """Every object that existed before the run was replaced by a new one."""
        return bool(self.ids_before) and not self.ids_before & self.ids_after

    @property
    def kept(self) -> bool:
        """Every object that existed before the run is still there (same ID)."""
        return bool(self.ids_before) and self.ids_before <= self.ids_after

    @property
    def objects(self) -> int:
        return sum(census.objects for census in self.after)

    @property
    def duplicates(self) -> int:
        return sum(census.duplicate_count for census in self.after)

    @property
    def missing(self) -> int:
        return sum(len(census.missing) for census in self.after)

    @property
    def exact(self) -> bool:
        return all(census.exact for census in self.after) and not self.extra_problems

    @property
    def exact_after_next(self) -> bool:
        return self.next_run.exit_code == 0 and all(census.exact for census in self.after_next)

    def problems(self) -> str:
        return "; ".join(
            [census.problems() for census in self.after if not census.exact] + self.extra_problems
        )


def app_names(count: int, start: int = 0) -> list[str]:
    return [f"app-{i:03d}" for i in range(start, start + count)]


def bucket_of(app: str) -> str:
    return app.replace("-", "_")


def set_apps(repo: PhalanxRepo, enabled: Collection[str], disabled: Collection[str] = ()) -> None:
    defaults = {app: True for app in enabled} | {app: False for app in disabled}
    repo.set_apps(defaults, {"dev": {}})


@dataclass
class _Setup:
    """What a job's scenario runs and expects, prepared without faults."""

    args: list[str]
    next_args: list[str]
    env: dict[str, str]
    census: Callable[[], list[Census]]
    check: Callable[[JobRun], list[str]] = lambda run: []
    run_env: dict[str, str] = field(default_factory=dict)
    """Settings of the faulty run only (e.g. RECREATE_BUCKETS=1)."""


def _direct(org: SuiteOrg, args: Sequence[str], env: Mapping[str, str]) -> JobRun:
    """A preparation run straight to InfluxDB; it must succeed."""
    run = run_job([*args, "--output", "json"], {**env, **org.env()})
    if run.exit_code != 0:
        raise AssertionError(f"preparation {' '.join(args)} exited {run.exit_code}: {run.stderr}")
    return run


def _repo_apps(repo: PhalanxRepo, apps: int, variant: str) -> tuple[list[str], list[str]]:
    """Enabled and (for prune) extra applications; the repository enables both."""
    wanted = app_names(apps)
    extra = app_names(max(4, apps // 2), start=apps) if variant == "prune" else []
    set_apps(repo, [*wanted, *extra])
    return wanted, extra


def _bucketmaker(org: SuiteOrg, repo: PhalanxRepo, apps: int, variant: str) -> _Setup:
    wanted, extra = _repo_apps(repo, apps, variant)
    env = {"PHALANX_REPO": repo.url}
    if variant:
        _direct(org, ["bucketmaker"], env)
    if variant == "recreate":
        _direct(org, ["bucketmapper"], {})
    if extra:
        set_apps(repo, wanted, extra)
    expected = [*map(bucket_of, wanted), *INTERNAL_BUCKETS]
    flags = {"force": ["--force"], "prune": ["--prune"]}.get(variant, [])

    def census() -> list[Census]:
        if variant == "recreate":  # the recreated buckets' mappings are made again
            return [bucket_census(org, expected), dbrp_census(org, expected)]
        return [bucket_census(org, expected)]

    return _Setup(
        ["bucketmaker", *flags],
        ["bucketmaker", *[f for f in flags if f != "--force"]],
        env,
        census,
        run_env={"RECREATE_BUCKETS": "1"} if variant == "recreate" else {},
    )


def _bucketmapper(org: SuiteOrg, repo: PhalanxRepo, apps: int, variant: str) -> _Setup:
    wanted = app_names(apps)
    set_apps(repo, wanted)
    env = {"PHALANX_REPO": repo.url}
    _direct(org, ["bucketmaker"], env)
    if variant:
        _direct(org, ["bucketmapper"], {})
    if variant == "prune":
        # InfluxDB deletes a bucket's mappings with it, so what is left to prune is a second
        # mapping of a bucket's database, under another retention policy.
        buckets = bucket_ids(org)
        with org.client() as client:
            for app in wanted[: max(4, apps // 2)]:
                database = bucket_of(app)
                response = client.post(
                    "/api/v2/dbrps",
                    json={
                        "orgID": org.id,
                        "bucketID": buckets[database],
                        "database": database,
                        "retention_policy": "legacy",
                        "default": False,
                    },
                )
                response.raise_for_status()
    expected = [*map(bucket_of, wanted), *INTERNAL_BUCKETS]
    flags = {"force": ["--force"], "prune": ["--prune"]}.get(variant, [])
    return _Setup(
        ["bucketmapper", *flags],
        ["bucketmapper", *[f for f in flags if f != "--force"]],
        {},
        lambda: [dbrp_census(org, expected)],
    )


def _taskmaker(org: SuiteOrg, repo: PhalanxRepo, apps: int, variant: str) -> _Setup:
    wanted, extra = _repo_apps(repo, apps, variant)
    env = {"PHALANX_REPO": repo.url, "CHECKS": ",".join(CHECKS)}
    if variant:
        _direct(org, ["taskmaker"], env)
    if extra:
        set_apps(repo, wanted, extra)
    expected = [f"{bucket_of(app)} {check}" for app in wanted for check in CHECKS]
    flags = {"force": ["--force"], "prune": ["--prune"]}.get(variant, [])
    return _Setup(
        ["taskmaker", *flags],
        ["taskmaker", *[f for f in flags if f != "--force"]],
        env,
        lambda: [task_census(org, expected)],
    )


def _authenticates(org: SuiteOrg, token: str) -> bool:
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=org.url, headers=headers, timeout=30) as client:
        return client.get("/api/v2/buckets", params={"orgID": org.id}).status_code == 200


def _printed_tokens_exist(org: SuiteOrg) -> Callable[[JobRun], list[str]]:
    """The token values a successful run printed are the values of the tokens that exist."""

    def check(run: JobRun) -> list[str]:
        if run.exit_code != 0 or run.report is None:
            return []
        printed: dict[str, str] = run.report.get("tokens") or {}
        listed = {
            auth.get("token"): auth.get("description", "")
            for auth in list_authorizations(org)
            if auth.get("token")
        }
        if not listed:
            # InfluxDB 2.9+ lists tokens hashed (""): ask the server whether each value is a
            # token (any valid token may list buckets, filtered; an unknown one gets 401).
            return [
                f"token of {role} printed but InfluxDB does not know it"
                for role, value in sorted(printed.items())
                if not _authenticates(org, value)
            ]
        return [
            f"token of {role} printed but no such token exists"
            for role, value in sorted(printed.items())
            if not listed.get(value, "").endswith(f"token={role})")
        ]

    return check


def _tokenmaker(org: SuiteOrg, repo: PhalanxRepo, apps: int, variant: str) -> _Setup:
    set_apps(repo, app_names(apps))
    _direct(org, ["bucketmaker"], {"PHALANX_REPO": repo.url})
    base = ["tokenmaker", "--bot-user", f"bot-{org.name}"]
    env = {"PHALANX_REPO": repo.url}  # Telegraf tokens follow the environments
    if variant:
        _direct(org, base, env)
    if variant == "prune":  # a token of a role tokenmaker no longer makes
        with org.client() as client:
            response = client.post(
                "/api/v2/authorizations",
                json={
                    "orgID": org.id,
                    "description": "old (managed-by=rubin-monitoring token=oldrole)",
                    "permissions": [{"action": "read", "resource": {"type": "orgs", "id": org.id}}],
                },
            )
            response.raise_for_status()
    # FORCE rotates: a rotation whose old token could not be deleted leaves it as an older
    # duplicate, which only --prune removes (it may still be in use), so the next run prunes.
    flags = {"force": ["--force"], "prune": ["--prune"]}.get(variant, [])
    next_flags = ["--prune"] if variant else []

    def census() -> list[Census]:
        return [
            token_census(org, ROLES),
            _bot_census(org, f"bot-{org.name}"),
            stack_census(org, [STACK_NAME]),  # dashboardmaker's, which tokenmaker makes
        ]

    return _Setup([*base, *flags], [*base, *next_flags], env, census, _printed_tokens_exist(org))


def _bot_census(org: SuiteOrg, bot: str) -> Census:
    """The bot user, counted once if it exists and owns the org."""
    with org.client() as client:
        users = client.get("/api/v2/users", params={"name": bot})
        found = [u["id"] for u in users.json().get("users") or []] if users.is_success else []
        owners = client.get(f"/api/v2/orgs/{org.id}/owners").json().get("users") or []
    owner_ids = {str(user["id"]) for user in owners}
    found_as = Counter("bot user, org owner" if uid in owner_ids else "bot user" for uid in found)
    return Census("user", frozenset({"bot user, org owner"}), found_as)


SETUPS: dict[str, Callable[[SuiteOrg, PhalanxRepo, int, str], _Setup]] = {
    "bucketmaker": _bucketmaker,
    "bucketmapper": _bucketmapper,
    "taskmaker": _taskmaker,
    "tokenmaker": _tokenmaker,
}


def _ids(censuses: list[Census]) -> set[str]:
    return {object_id for census in censuses for ids in census.ids.values() for object_id in ids}


def run_scenario(
    server: InfluxServer,
    workdir: Path,
    job: str,
    faults: Faults,
    *,
    apps: int = 24,
    variant: str = "",
) -> Outcome:
    """Prepare ``job`` (with ``variant``) in a fresh org, run it through the proxy with
    ``faults``, count, run it again without faults, count again."""
    org = new_org(server)
    repo = PhalanxRepo(workdir / org.name)
    setup = SETUPS[job](org, repo, apps, variant)
    before = _ids(setup.census()) if variant in ("force", "recreate") else set()
    with FaultProxy(org.url, seed=faults.seed, delay=PROXY_DELAY) as proxy:
        faults.install(proxy)
        env = {
            **setup.env,
            **setup.run_env,
            **org.env(INFLUXDB_URL=proxy.url, HTTP_TIMEOUT=str(HTTP_TIMEOUT)),
        }
        run = run_job([*setup.args, "--output", "json"], env)
        proxy.heal()
        count, events = injected(proxy), proxy.events
    after = setup.census()
    extra = setup.check(run)
    leases = len(lease_labels(org))
    next_run = run_job([*setup.next_args, "--output", "json"], {**setup.env, **org.env()})
    return Outcome(
        job=job,
        variant=variant,
        faults=faults,
        injected=count,
        events=events,
        run=run,
        after=after,
        next_run=next_run,
        after_next=setup.census(),
        leases_after=leases,
        ids_before=before,
        ids_after=_ids(after),
        extra_problems=extra,
    )


# The notifier


@dataclass
class NotifierOutcome:
    """Alerts across three notifier runs: with faults, without, and once more."""

    faults: Faults
    injected: int
    events: list[FaultEvent]
    slack_faults: int
    runs: list[JobRun]
    keys: list[str]
    deliveries: dict[str, list[int]]
    """Per alert key, the run (0, 1, 2) of each Slack message that delivered it, or may have
    (a request that hung past the timeout counts)."""
    recorded_after: list[set[str]]
    """Keys recorded in alerted_ after each run."""

    def delivered_in(self, run: int) -> set[str]:
        return {key for key, runs in self.deliveries.items() if run in runs}

    @property
    def lost(self) -> list[str]:
        """Keys never delivered, or not recorded, after the second run."""
        recorded = self.recorded_after[1] if len(self.recorded_after) > 1 else set()
        return sorted(k for k in self.keys if not self.deliveries.get(k) or k not in recorded)

    @property
    def repeated(self) -> dict[str, int]:
        """Keys delivered more than once, with their count."""
        return {k: len(v) for k, v in sorted(self.deliveries.items()) if len(v) > 1}

    @property
    def missing_after_first(self) -> int:
        return len(set(self.keys) - self.recorded_after[0])

    @property
    def exact_after_next(self) -> bool:
        return (
            not self.lost
            and all(count <= 2 for count in self.repeated.values())
            and self.runs[1].exit_code == 0
            and self.runs[2].exit_code == 0
            and not self.delivered_in(2)
        )


def write_findings(org: InfluxOrg, keys: Sequence[str], clusters: Sequence[str]) -> None:
    """One ``alert`` finding per key, half a minute ago, over ``clusters`` in turn; each
    message names its key (``finding <key>:``), so a Slack message shows which it carries."""
    now = datetime.now(UTC) - timedelta(seconds=30)
    lines = [
        line_protocol(
            "alert",
            {
                "check": "restarts",
                "application": f"app{i % 7}",
                "cluster": clusters[i % len(clusters)],
                "severity": "critical" if i % 3 else "warning",
                "dedup_key": key,
            },
            {"message": f"finding {key}: container restarted", "value": float(i)},
            now - timedelta(milliseconds=i),
        )
        for i, key in enumerate(keys)
    ]
    write_lines(org, "multiapp_", lines)


def _deliveries(
    slack: SlackServer, keys: Sequence[str], run: int, into: dict[str, list[int]]
) -> None:
    """Count every post Slack may have shown: answered ``ok``, or hung past the client's
    timeout (Slack may have posted it all the same)."""
    for post in slack.posts():
        if not isinstance(post.answer, Ok | Hang):
            continue
        for key in keys:
            if f"finding {key}:" in post.text:
                into.setdefault(key, []).append(run)


def run_notifier_scenario(
    server: InfluxServer,
    workdir: Path,
    slack: SlackServer,
    faults: Faults,
    *,
    routes: int = 6,
    alerts: int = 30,
    slack_faults: bool = True,
) -> NotifierOutcome:
    """Findings over ``routes`` clusters, one webhook each; the first run's InfluxDB requests
    go through a proxy with ``faults``, and with ``slack_faults`` the first webhooks answer
    500, hang past SLACK_TIMEOUT, or rate-limit, and the first one fails every attempt of
    the first run."""
    org = new_org(server, "notify")
    for bucket in INTERNAL_BUCKETS:
        create_bucket(org, bucket)
    clusters = [f"cluster{i}" for i in range(routes)]
    keys = [f"k{i:03d}" for i in range(alerts)]
    write_findings(org, keys, clusters)
    routes_file = workdir / f"routes-{org.name}.yaml"
    routes_file.write_text(
        "routes:\n"
        + "".join(
            f"  - name: {cluster}\n    webhook: {slack.url(f'/hooks/{org.name}/{cluster}')}\n"
            f"    clusters: [{cluster}]\n"
            for cluster in clusters
        )
    )
    slack.clear()
    scripted: list[tuple[str, tuple[Behaviour, ...]]] = []
    if slack_faults:
        scripted = [
            (clusters[0], (Fail(500), Fail(503), Fail(500))),  # every attempt of run 1 fails
            (clusters[1 % routes], (Hang(2.5),)),
            (clusters[2 % routes], (Fail(500),)),
            (clusters[3 % routes], (RateLimited(0.5),)),
        ]
    for cluster, answers in scripted:
        slack.script(f"/hooks/{org.name}/{cluster}", *answers)
    env = {"SLACK_ROUTES_FILE": str(routes_file), "SLACK_TIMEOUT": "1"}
    deliveries: dict[str, list[int]] = {}
    runs: list[JobRun] = []
    recorded: list[set[str]] = []
    with FaultProxy(org.url, seed=faults.seed, delay=PROXY_DELAY) as proxy:
        faults.install(proxy)
        proxy_env = org.env(INFLUXDB_URL=proxy.url, HTTP_TIMEOUT=str(HTTP_TIMEOUT))
        runs.append(run_job(["notifier", "--output", "json"], {**env, **proxy_env}))
        proxy.heal()
        count, events = injected(proxy), proxy.events
    slack_broken = sum(1 for post in slack.posts() if not post.ok)  # of the first run
    for run in range(3):
        if run:
            slack.clear()
            runs.append(run_job(["notifier", "--output", "json"], {**env, **org.env()}))
        _deliveries(slack, keys, run, deliveries)
        recorded.append({alert.dedup_key for alert in query_alerts(org, bucket="alerted_")})
    return NotifierOutcome(faults, count, events, slack_broken, runs, keys, deliveries, recorded)


# Silences


def first_attempts(
    mode: Fault, paths: Collection[str] = ("/api/v2/write", "/api/v2/query")
) -> Decider:
    """A decider that breaks (with ``mode``) the first attempt of every request to ``paths``, and
    lets its retry through: every Flux query and write meets the fault once."""
    seen: Counter[tuple[str, str]] = Counter()

    def decide(request: RequestInfo) -> Fault:
        path = request.path.split("?")[0]
        if path not in paths:
            return Fault.NONE
        seen[(request.method, path)] += 1
        return mode if seen[(request.method, path)] % 2 == 1 else Fault.NONE

    return decide


def stored_silences(org: InfluxOrg) -> dict[str, tuple[int, str]]:
    """Per silence ID in ``silences_``: how many points, and the latest ``ends_at`` (plain HTTP
    with the operator token, not the toolkit's reader)."""
    flux = """
from(bucket: "silences_")
  |> range(start: -31d)
  |> filter(fn: (r) => r._measurement == "silence" and r._field == "ends_at")
  |> group(columns: ["id"])
  |> sort(columns: ["_time"])
"""
    found: dict[str, tuple[int, str]] = {}
    for row in query_rows(org, flux):
        count, _ = found.get(row["id"], (0, ""))
        found[row["id"]] = (count + 1, row["_value"])
    return found


@dataclass
class SilenceOutcome:
    """``silence add``, the notifier and ``silence expire`` through the proxy, then a clean
    notifier run: which keys reached Slack in which, and what ``silences_`` held."""

    faults: Faults
    injected: int
    events: list[FaultEvent]
    add: JobRun
    notify: JobRun
    expire: JobRun | None
    after: JobRun
    stored_after_add: dict[str, tuple[int, str]]
    stored_after_expire: dict[str, tuple[int, str]]
    muted: list[str]
    open: list[str]
    deliveries: dict[str, list[int]]
    """Per key, the run (0: the faulty notifier run, 1: the clean one after the expiry) of each
    Slack message that delivered it."""
    recorded: set[str]

    @property
    def silence_id(self) -> str | None:
        report = self.add.report
        return str(report["id"]) if self.add.exit_code == 0 and report else None


def run_silence_scenario(
    server: InfluxServer, slack: SlackServer, faults: Faults, *, alerts: int = 10
) -> SilenceOutcome:
    """Findings in two clusters, ``muted`` and ``open``; through the proxy with ``faults``:
    ``silence add cluster=muted``, a notifier run, ``silence expire``; then, without faults,
    one more notifier run."""
    org = new_org(server, "silence")
    for bucket in INTERNAL_BUCKETS:
        create_bucket(org, bucket)
    muted = [f"m{i:03d}" for i in range(alerts)]
    opened = [f"o{i:03d}" for i in range(alerts)]
    write_findings(org, muted, ["muted"])
    write_findings(org, opened, ["open"])
    slack.clear()
    notifier_env = {"SLACK_WEBHOOK_URL": slack.url(f"/hooks/{org.name}")}
    deliveries: dict[str, list[int]] = {}
    keys = [*muted, *opened]
    with FaultProxy(org.url, seed=faults.seed, delay=PROXY_DELAY) as proxy:
        faults.install(proxy)
        proxy_env = org.env(INFLUXDB_URL=proxy.url, HTTP_TIMEOUT=str(HTTP_TIMEOUT))
        add = run_job(
            [
                *("silence", "add", "cluster=muted", "--duration", "1h"),
                *("--author", "fault-suite", "--comment", "faults", "--output", "json"),
            ],
            proxy_env,
        )
        notify = run_job(["notifier", "--output", "json"], {**notifier_env, **proxy_env})
        _deliveries(slack, keys, 0, deliveries)
        stored_after_add = stored_silences(org)
        expire = None
        report = add.report
        if add.exit_code == 0 and report:
            expire = run_job(
                ["silence", "expire", str(report["id"]), "--output", "json"], proxy_env
            )
        proxy.heal()
        count, events = injected(proxy), proxy.events
    stored_after_expire = stored_silences(org)
    slack.clear()
    after = run_job(["notifier", "--output", "json"], {**notifier_env, **org.env()})
    _deliveries(slack, keys, 1, deliveries)
    recorded = {alert.dedup_key for alert in query_alerts(org, bucket="alerted_")}
    return SilenceOutcome(
        faults,
        count,
        events,
        add,
        notify,
        expire,
        after,
        stored_after_add,
        stored_after_expire,
        muted,
        opened,
        deliveries,
        recorded,
    )

"""The fault suite: every job through a fault-injecting proxy, at the same time as another run,
killed mid-run, and with InfluxDB gone; afterwards the organization is counted over plain HTTP
with the operator token (:mod:`rubin_monitoring.testing.census`), never through the toolkit.

The rule every test checks: after a run, the state is exact (no duplicate, nothing missing, no
leftover), or the run exited non-zero and its report names the changes that failed, and the
next run, without faults, makes it exact. Faults are drawn from fixed seeds; each test asserts
that the proxy really broke something.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.census import (
    bucket_census,
    dbrp_census,
    lease_labels,
    list_dbrps,
    list_tasks,
    task_census,
)
from rubin_monitoring.testing.faultproxy import Fault, FaultProxy, RequestInfo
from rubin_monitoring.testing.faultsuite import (
    CHECKS,
    FAULT_MODES,
    HTTP_TIMEOUT,
    INTERNAL_BUCKETS,
    JOBS,
    SETTING_VARIABLES,
    WRITES,
    Faults,
    JobRun,
    Outcome,
    app_names,
    bucket_of,
    deletes_done_after_drop,
    first_attempts,
    hit_methods,
    run_job,
    run_notifier_scenario,
    run_scenario,
    run_silence_scenario,
    set_apps,
    write_findings,
)
from rubin_monitoring.testing.flux import create_bucket, query_alerts
from rubin_monitoring.testing.influxd import InfluxServer
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.slack_server import Hang, SlackServer, slack_server

pytestmark = pytest.mark.integration

APPS = 24  # x 3 checks: 72 tasks, so 10% of the writes is several faults
LEASE = "rubin-monitoring-lease-writers"
RUBIN_MONITORING = Path(sys.executable).parent / "rubin-monitoring"


def assert_converges(outcome: Outcome) -> None:
    """The suite's rule, for one scenario."""
    run = outcome.run
    assert outcome.injected > 0, f"{outcome.name}: the proxy broke nothing"
    assert outcome.duplicates == 0, f"{outcome.name}: {outcome.problems()}"
    assert outcome.leases_after == 0, f"{outcome.name}: the run left its lease behind"
    if run.exit_code == 0:
        assert outcome.exact, f"{outcome.name} exited 0 but: {outcome.problems()}\n{run.stderr}"
        assert outcome.next_run.changes == [], f"{outcome.name}: a clean rerun still changes"
    else:
        assert run.exit_code in (1, 3), run.stderr
        failed = {change["name"] for change in run.failed}
        assert failed or run.report is None, f"{outcome.name}: exit {run.exit_code}, no failure"
        for census in outcome.after:
            for name in census.missing:
                assert any(name in change for change in failed) or run.report is None, (
                    f"{outcome.name}: {name} is missing but no failed change names it: {failed}"
                )
        for change in run.failed:
            assert change["error"], change
    assert outcome.exact_after_next, (
        f"{outcome.name}: the next run exited {outcome.next_run.exit_code}: "
        f"{[c.problems() for c in outcome.after_next]}\n{outcome.next_run.stderr}"
    )


# 1. Each writing job through the proxy, every fault mode, on its writes.

SEEDS = {"bucketmaker": 3, "bucketmapper": 3, "taskmaker": 1, "tokenmaker": 5}


@pytest.mark.parametrize("mode", FAULT_MODES, ids=str)
@pytest.mark.parametrize("job", JOBS)
def test_job_under_faults_converges(
    influxdb: InfluxServer, tmp_path: Path, job: str, mode: Fault
) -> None:
    # tokenmaker makes a handful of objects: its reads are broken too, so 10% hits something.
    methods = None if job == "tokenmaker" else WRITES
    faults = Faults(mode, rate=0.1, methods=methods, seed=SEEDS[job])
    outcome = run_scenario(influxdb, tmp_path, job, faults, apps=APPS)
    assert_converges(outcome)
    if mode is Fault.DROP_RESPONSE:
        # Every dropped request was done: the run finds that out, and nothing fails.
        assert outcome.run.exit_code == 0, outcome.run.stderr


@pytest.mark.parametrize("mode", [Fault.DROP_RESPONSE, Fault.RESET], ids=str)
@pytest.mark.parametrize("job", ["bucketmapper", "taskmaker"])
def test_job_with_reads_broken_too_converges(
    influxdb: InfluxServer, tmp_path: Path, job: str, mode: Fault
) -> None:
    """The look-ups after a create whose outcome is unknown fail as well, sometimes."""
    faults = Faults(mode, rate=0.1, methods=None, seed=7)
    outcome = run_scenario(influxdb, tmp_path, job, faults, apps=APPS)
    assert_converges(outcome)
    assert hit_methods(outcome.events)["GET"] > 0, "no read was broken"


def test_creates_failing_mid_run_are_named_and_the_next_run_makes_them(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    """From the 30th task on, every create is reset (never reaches InfluxDB), repeats
    included: the run stops, names every task it did not make, and the next run makes them."""
    creates = 0

    def decide(request: RequestInfo) -> Fault:
        nonlocal creates
        if request.method == "POST" and request.path.startswith("/api/v2/tasks"):
            creates += 1
            return Fault.RESET if creates > 30 else Fault.NONE
        return Fault.NONE

    faults = Faults(Fault.RESET, decider=decide)
    outcome = run_scenario(influxdb, tmp_path, "taskmaker", faults, apps=APPS)
    assert_converges(outcome)
    run = outcome.run
    assert run.exit_code == 3, run.stderr
    (census,) = outcome.after
    assert census.objects == 30 and len(census.missing) == len(census.expected) - 30
    assert {c["name"] for c in run.failed} == set(census.missing)
    assert run.seconds < 30


@pytest.mark.parametrize("job", JOBS)
def test_force_with_dropped_responses_leaves_nothing_missing(
    influxdb: InfluxServer, tmp_path: Path, job: str
) -> None:
    faults = Faults(Fault.DROP_RESPONSE, rate=0.1, seed=SEEDS[job])
    outcome = run_scenario(influxdb, tmp_path, job, faults, apps=APPS, variant="force")
    assert_converges(outcome)
    assert outcome.run.exit_code == 0, outcome.run.stderr
    if job == "bucketmaker":  # buckets are re-applied in place: IDs, data, mappings survive
        assert outcome.kept, "FORCE replaced a bucket"
        assert {c["action"] for c in outcome.run.changes} == {"update"}
    else:
        assert outcome.replaced, f"{job} --force left an object it should have recreated"
        assert {c["action"] for c in outcome.run.changes} == {"recreate"}


def test_recreate_buckets_with_dropped_responses_remakes_buckets_and_mappings(
    influxdb: InfluxServer, tmp_path: Path
) -> None:
    faults = Faults(Fault.DROP_RESPONSE, rate=0.1, seed=SEEDS["bucketmaker"])
    outcome = run_scenario(influxdb, tmp_path, "bucketmaker", faults, apps=APPS, variant="recreate")
    run = outcome.run
    assert outcome.injected > 0
    # Exit 1 by design: a conflict says which tokens to re-issue; nothing failed.
    assert run.exit_code == 1 and not run.failed, run.stderr
    assert run.report is not None and run.report["conflicts"], run.stdout
    assert outcome.exact, outcome.problems()
    assert outcome.replaced, "a bucket or mapping was not recreated"
    assert outcome.leases_after == 0
    assert outcome.exact_after_next and outcome.next_run.changes == []


PRUNE_SEEDS = {"bucketmaker": 2, "bucketmapper": 2, "taskmaker": 2, "tokenmaker": 1}


@pytest.mark.parametrize("job", JOBS)
def test_prune_with_dropped_deletes_counts_404_as_done(
    influxdb: InfluxServer, tmp_path: Path, job: str
) -> None:
    rate = 0.5 if job == "tokenmaker" else 0.2  # tokenmaker prunes one token
    faults = Faults(
        Fault.DROP_RESPONSE, rate=rate, methods=frozenset({"DELETE"}), seed=PRUNE_SEEDS[job]
    )
    outcome = run_scenario(influxdb, tmp_path, job, faults, apps=APPS, variant="prune")
    assert_converges(outcome)
    assert outcome.run.exit_code == 0, outcome.run.stderr
    deletes = [c for c in outcome.run.changes if c["action"] == "delete"]
    assert deletes and all(c["status"] == "done" for c in deletes), outcome.run.changes
    assert deletes_done_after_drop(outcome.events) > 0, "no dropped DELETE was repeated"


@pytest.mark.parametrize("mode", [Fault.DROP_RESPONSE, Fault.RESET, Fault.STATUS_503], ids=str)
def test_the_leases_own_requests_under_faults(
    influxdb: InfluxServer, tmp_path: Path, mode: Fault
) -> None:
    """The first take (POST), look-up (GET) and release (DELETE) of the lease are broken: the
    run still takes it once, works, and leaves no lease behind."""
    seen: dict[str, int] = {}

    def decide(request: RequestInfo) -> Fault:
        if not request.path.startswith("/api/v2/labels"):
            return Fault.NONE
        seen[request.method] = seen.get(request.method, 0) + 1
        return mode if seen[request.method] == 1 else Fault.NONE

    outcome = run_scenario(influxdb, tmp_path, "bucketmaker", Faults(mode, decider=decide), apps=4)
    assert_converges(outcome)
    assert outcome.run.exit_code == 0, outcome.run.stderr
    assert hit_methods(outcome.events)["POST"] == 1 and hit_methods(outcome.events)["DELETE"] == 1


# 2. The notifier: faults on InfluxDB's side and on Slack's.


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with slack_server() as server:
        yield server


# Seeds whose faults hit the findings query or the records' writes (and, for reset, the lease).
NOTIFIER_SEEDS = {Fault.DROP_RESPONSE: 1, Fault.DELAY: 3, Fault.RESET: 4, Fault.STATUS_503: 2}


@pytest.mark.parametrize("mode", FAULT_MODES, ids=str)
def test_notifier_under_faults_loses_nothing_repeats_at_most_once(
    influxdb: InfluxServer, tmp_path: Path, slack: SlackServer, mode: Fault
) -> None:
    # The notifier sends about a dozen requests to InfluxDB: 15% of them breaks one or two.
    faults = Faults(mode, rate=0.15, methods=None, seed=NOTIFIER_SEEDS[mode])
    outcome = run_notifier_scenario(influxdb, tmp_path, slack, faults)
    assert outcome.injected > 0 and outcome.slack_faults > 0
    broken = {e.path.split("?")[0] for e in outcome.events if e.mode is not Fault.NONE}
    assert broken & {"/api/v2/query", "/api/v2/write"}, broken
    first, second, third = outcome.runs
    # The first webhook failed every attempt: its alerts were not sent, nor recorded.
    assert first.exit_code != 0
    assert outcome.missing_after_first > 0
    assert not outcome.lost, outcome.lost
    assert all(count <= 2 for count in outcome.repeated.values()), outcome.repeated
    assert second.exit_code == 0, second.stderr
    assert third.exit_code == 0 and not outcome.delivered_in(2), "a third run sent again"
    assert outcome.exact_after_next


def test_notifier_that_cannot_write_alerted_sends_nothing(
    influxdb: InfluxServer, tmp_path: Path, slack: SlackServer
) -> None:
    """Every write to alerted_ is reset: the run's write check fails before the first message,
    so nothing is sent (it could not be recorded, and would go out again on every run), the run
    exits 3, and the next run sends each alert once."""
    faults = Faults(Fault.RESET, rate=1.0, methods=frozenset({"POST"}), path_prefix="/api/v2/write")
    outcome = run_notifier_scenario(influxdb, tmp_path, slack, faults, slack_faults=False)
    first, second, _ = outcome.runs
    assert first.exit_code == 3, first.stderr
    assert "alerted_ cannot be written" in first.stderr
    assert outcome.recorded_after[0] == set()
    assert outcome.delivered_in(0) == set()
    assert not outcome.lost and not outcome.repeated
    assert outcome.exact_after_next, second.stderr


def test_notifier_whose_records_fail_after_its_check_repeats_each_alert_at_most_once(
    influxdb: InfluxServer, tmp_path: Path, slack: SlackServer
) -> None:
    """The write check passes, then every record is reset: messages Slack took are not
    recorded, the run stops (exit 3), and the next run sends them once more, and nothing after
    that."""
    writes = 0

    def after_the_check(request: RequestInfo) -> Fault:
        nonlocal writes
        if request.method == "POST" and request.path.startswith("/api/v2/write"):
            writes += 1
            return Fault.NONE if writes == 1 else Fault.RESET
        return Fault.NONE

    faults = Faults(Fault.RESET, decider=after_the_check)
    outcome = run_notifier_scenario(influxdb, tmp_path, slack, faults, slack_faults=False)
    first, second, _ = outcome.runs
    assert first.exit_code == 3, first.stderr
    assert outcome.recorded_after[0] == set()
    assert outcome.delivered_in(0), "nothing reached Slack before the record failed"
    assert not outcome.lost
    assert set(outcome.repeated) == outcome.delivered_in(0)
    assert all(count == 2 for count in outcome.repeated.values())
    assert outcome.exact_after_next, second.stderr


@pytest.mark.parametrize("mode", [Fault.DROP_RESPONSE, Fault.DELAY], ids=str)
def test_silences_under_dropped_responses_never_let_a_silenced_alert_out(
    influxdb: InfluxServer, slack: SlackServer, mode: Fault
) -> None:
    """The first attempt of every Flux query and write (silence add's write, the notifier's
    reads of findings, records and silences, its records, silence expire's read and write)
    reaches InfluxDB and its answer is lost (dropped, or later than HTTP_TIMEOUT): the retries
    make one silence, not two; the silenced alerts stay out of Slack; the expiry holds; the
    next run sends them, once."""
    outcome = run_silence_scenario(influxdb, slack, Faults(mode, decider=first_attempts(mode)))
    broken = {e.path.split("?")[0] for e in outcome.events if e.mode is mode}
    assert broken == {"/api/v2/write", "/api/v2/query"}, broken
    assert outcome.injected >= 6
    assert outcome.add.exit_code == 0, outcome.add.stderr
    silence_id = outcome.silence_id
    assert silence_id is not None
    # The dropped write was stored, and its retry stored the same point: one silence.
    assert list(outcome.stored_after_add) == [silence_id]
    assert outcome.stored_after_add[silence_id][0] == 1
    assert outcome.notify.exit_code == 0, outcome.notify.stderr
    report = outcome.notify.report
    assert report is not None and report["summary"]["silenced"] == len(outcome.muted)
    assert not any(0 in outcome.deliveries.get(key, []) for key in outcome.muted)
    assert all(outcome.deliveries.get(key) == [0] for key in outcome.open), outcome.deliveries
    assert outcome.expire is not None
    assert outcome.expire.exit_code == 0, outcome.expire.stderr
    points, ends_at = outcome.stored_after_expire[silence_id]
    assert points == 2 and datetime.fromisoformat(ends_at) <= datetime.now(UTC)
    assert outcome.after.exit_code == 0, outcome.after.stderr
    assert all(outcome.deliveries.get(key) == [1] for key in outcome.muted), outcome.deliveries
    assert all(outcome.deliveries.get(key) == [0] for key in outcome.open), outcome.deliveries
    assert outcome.recorded == {*outcome.muted, *outcome.open}


# 3. Concurrency: real processes.


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    popen: subprocess.Popen[str]
    started: float

    def finish(self, timeout: float = 120) -> JobRun:
        stdout, stderr = self.popen.communicate(timeout=timeout)
        seconds = time.monotonic() - self.started
        return JobRun(self.args, self.popen.returncode, stdout, stderr, seconds)


def start(args: Sequence[str], env: Mapping[str, str]) -> Process:
    """``rubin-monitoring ARGS --output json`` in its own process, with ``env`` as settings."""
    environ = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    environ.update(env)
    command = (str(RUBIN_MONITORING), *args, "--output", "json")
    popen = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return Process(command, popen, time.monotonic())


def run_together(*commands: tuple[Sequence[str], Mapping[str, str]]) -> list[JobRun]:
    processes = [start(args, env) for args, env in commands]
    return [process.finish() for process in processes]


def expected_tasks(apps: Sequence[str]) -> list[str]:
    return [f"{bucket_of(app)} {check}" for app in apps for check in CHECKS]


def expected_buckets(apps: Sequence[str]) -> list[str]:
    return [*map(bucket_of, apps), *INTERNAL_BUCKETS]


@pytest.fixture
def apps(phalanx: PhalanxRepo) -> list[str]:
    names = app_names(APPS)
    set_apps(phalanx, names)
    return names


def test_two_taskmakers_at_once_make_each_task_once(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    env = org.env(PHALANX_REPO=phalanx.url, CHECKS=",".join(CHECKS))
    runs = run_together((["taskmaker"], env), (["taskmaker"], env))
    assert [run.exit_code for run in runs] == [0, 0], [run.stderr for run in runs]
    census = task_census(org, expected_tasks(apps))
    assert census.exact, census.problems()
    creates = sorted(sum(c["action"] == "create" for c in run.changes) for run in runs)
    assert creates == [0, len(census.expected)]
    assert any("waiting for the lease" in run.stderr for run in runs)
    assert lease_labels(org) == []


def test_two_taskmakers_without_lease_wait_one_exits_4(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    env = org.env(PHALANX_REPO=phalanx.url, CHECKS=",".join(CHECKS), LEASE_WAIT="0s")
    runs = run_together((["taskmaker"], env), (["taskmaker"], env))
    assert sorted(run.exit_code for run in runs) == [0, 4], [run.stderr for run in runs]
    blocked = next(run for run in runs if run.exit_code == 4)
    assert "another run holds the lease" in blocked.stderr
    census = task_census(org, expected_tasks(apps))
    assert census.exact, census.problems()


def test_two_bucketmakers_at_once_are_exact_without_conflicts(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    env = org.env(PHALANX_REPO=phalanx.url)
    runs = run_together((["bucketmaker"], env), (["bucketmaker"], env))
    assert [run.exit_code for run in runs] == [0, 0], [run.stderr for run in runs]
    assert not any(run.failed for run in runs)
    assert not any("answered 422" in run.stderr for run in runs), [run.stderr for run in runs]
    census = bucket_census(org, expected_buckets(apps))
    assert census.exact, census.problems()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("recreate", [False, True], ids=["force", "recreate-buckets"])
@pytest.mark.parametrize("mapper_first", [False, True], ids=["together", "mapper-first"])
def test_force_bucketmaker_beside_bucketmapper_leaves_every_bucket_mapped(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str], mapper_first: bool, recreate: bool
) -> None:
    env = org.env(PHALANX_REPO=phalanx.url)
    assert run_job(["bucketmaker"], env).exit_code == 0
    assert run_job(["bucketmapper"], env).exit_code == 0
    maker_env = {**env, "RECREATE_BUCKETS": "1" if recreate else "0"}
    if mapper_first:
        # The mapper has every mapping to make again, and a slow line (each answer 0.2 s late):
        # it holds the lease while bucketmaker starts, and rewrites every bucket after it.
        with org.server.client() as client:
            for mapping in list_dbrps(org):
                client.delete(f"/api/v2/dbrps/{mapping['id']}", params={"orgID": org.id})
        with FaultProxy(org.url, delay=0.2) as slow:
            slow.set_faults(Fault.DELAY)
            mapper = start(["bucketmapper"], {**env, "INFLUXDB_URL": slow.url})
            wait_for(lambda: lease_labels(org), 30, "the mapper's lease")
            maker = start(["bucketmaker", "--force"], maker_env)
            maker_run, mapper_run = maker.finish(), mapper.finish()
        assert "waiting for the lease" in maker_run.stderr
    else:
        maker_run, mapper_run = run_together(
            (["bucketmaker", "--force"], maker_env), (["bucketmapper"], env)
        )
    # RECREATE_BUCKETS ends with a conflict (exit 1) naming the tokens to re-issue.
    assert maker_run.exit_code == (1 if recreate else 0), maker_run.stderr
    assert not maker_run.failed, maker_run.failed
    assert mapper_run.exit_code == 0, mapper_run.stderr
    buckets = bucket_census(org, expected_buckets(apps))
    assert buckets.exact, buckets.problems()
    mappings = dbrp_census(org, expected_buckets(apps))
    assert mappings.exact, mappings.problems()


def test_two_notifiers_at_once_send_each_alert_once(
    org: OrgUnderTest, slack: SlackServer, tmp_path: Path
) -> None:
    for bucket in INTERNAL_BUCKETS:
        create_bucket(org, bucket)
    keys = [f"k{i:03d}" for i in range(20)]
    write_findings(org, keys, ["idfdev"])
    env = org.env(SLACK_WEBHOOK_URL=slack.url())
    runs = run_together((["notifier"], env), (["notifier"], env))
    assert [run.exit_code for run in runs] == [0, 0], [run.stderr for run in runs]
    texts = [post.text for post in slack.delivered()]
    assert len(slack.posts()) == 1, "the second run sent again"
    assert all(sum(f"finding {key}:" in text for text in texts) == 1 for key in keys)
    assert {alert.dedup_key for alert in query_alerts(org, bucket="alerted_")} == set(keys)


def test_two_notifiers_at_once_with_a_silence_send_each_alert_once(
    org: OrgUnderTest, slack: SlackServer
) -> None:
    """Silences are read inside the notifier's lease: of two runs at once, one sends, the other
    finds everything recorded; neither sends a silenced alert. Once the silence is expired, two
    runs at once again send each formerly silenced alert once."""
    for bucket in INTERNAL_BUCKETS:
        create_bucket(org, bucket)
    muted = [f"m{i:03d}" for i in range(10)]
    opened = [f"o{i:03d}" for i in range(10)]
    write_findings(org, muted, ["muted"])
    write_findings(org, opened, ["open"])
    added = run_job(["silence", "add", "cluster=muted", "--comment", "maintenance"], org.env())
    assert added.exit_code == 0, added.stderr
    env = org.env(SLACK_WEBHOOK_URL=slack.url())

    def sent(posts: list[str], key: str) -> int:
        return sum(f"finding {key}:" in text for text in posts)

    runs = run_together((["notifier"], env), (["notifier"], env))
    assert [run.exit_code for run in runs] == [0, 0], [run.stderr for run in runs]
    assert len(slack.posts()) == 1, "the second run sent again"
    texts = [post.text for post in slack.delivered()]
    assert all(sent(texts, key) == 1 for key in opened)
    assert all(sent(texts, key) == 0 for key in muted)
    silenced = sorted(len(run.report["silenced"]) for run in runs if run.report)
    assert silenced == [0, 10] or silenced == [10, 10], silenced

    expired = run_job(["silence", "expire", added.stdout.strip()], org.env())
    assert expired.exit_code == 0, expired.stderr
    runs = run_together((["notifier"], env), (["notifier"], env))
    assert [run.exit_code for run in runs] == [0, 0], [run.stderr for run in runs]
    assert len(slack.posts()) == 2, "the second run sent again"
    texts = [post.text for post in slack.delivered()]
    assert all(sent(texts, key) == 1 for key in [*muted, *opened])
    assert {alert.dedup_key for alert in query_alerts(org, bucket="alerted_")} == {*muted, *opened}


# Lease semantics


def make_label(org: OrgUnderTest, properties: dict[str, str]) -> dict[str, Any]:
    with org.server.client() as client:
        response = client.post(
            "/api/v2/labels", json={"orgID": org.id, "name": LEASE, "properties": properties}
        )
        response.raise_for_status()
        label: dict[str, Any] = response.json()["label"]
        return label


def lease_properties(expires_in: timedelta, job: str = "taskmaker") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "managed-by": "rubin-monitoring",
        "holder": "0123456789abcdef0123456789abcdef",
        "job": job,
        "since": (now - timedelta(minutes=1)).isoformat(timespec="seconds"),
        "expires": (now + expires_in).isoformat(timespec="seconds"),
    }


def test_a_live_lease_blocks_and_nothing_changes(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    label = make_label(org, lease_properties(timedelta(minutes=4)))
    run = run_job(
        ["bucketmaker", "--output", "json"], org.env(PHALANX_REPO=phalanx.url, LEASE_WAIT="0s")
    )
    assert run.exit_code == 4, run.stderr
    assert "another run holds the lease" in run.stderr
    assert bucket_census(org, []).objects == 0
    assert [(x["id"], x["properties"]) for x in lease_labels(org)] == [
        (label["id"], label["properties"])
    ]


def test_an_expired_lease_is_taken_over(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    make_label(org, lease_properties(-timedelta(minutes=1)))
    run = run_job(
        ["bucketmaker", "--output", "json"], org.env(PHALANX_REPO=phalanx.url, LEASE_WAIT="0s")
    )
    assert run.exit_code == 0, run.stderr
    census = bucket_census(org, expected_buckets(apps))
    assert census.exact, census.problems()
    assert lease_labels(org) == []


def test_a_foreign_label_of_the_lease_name_blocks_and_is_left_alone(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    label = make_label(org, {"color": "#ff0000", "expires": "2000-01-01T00:00:00+00:00"})
    run = run_job(
        ["bucketmaker", "--output", "json"], org.env(PHALANX_REPO=phalanx.url, LEASE_WAIT="0s")
    )
    assert run.exit_code == 4, run.stderr
    assert "did not make" in run.stderr
    assert bucket_census(org, []).objects == 0
    assert [(x["id"], x["properties"]) for x in lease_labels(org)] == [
        (label["id"], label["properties"])
    ]


def test_a_killed_run_blocks_at_most_lease_ttl_and_the_next_converges(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    ttl = 3
    env = org.env(PHALANX_REPO=phalanx.url, CHECKS=",".join(CHECKS), LEASE_TTL=f"{ttl}s")
    victim = start(["taskmaker"], env)
    wait_for(lambda: len(list_tasks(org)) >= 10, 60, "the first tasks")
    victim.popen.send_signal(signal.SIGKILL)
    killed = datetime.now(UTC)
    victim.popen.communicate(timeout=10)
    assert victim.popen.returncode == -signal.SIGKILL
    assert len(lease_labels(org)) == 1, "the killed run's lease is gone"

    blocked = run_job(["taskmaker", "--output", "json"], {**env, "LEASE_WAIT": "0s"})
    assert blocked.exit_code == 4, blocked.stderr
    assert "another run holds the lease" in blocked.stderr

    following = start(["taskmaker"], {**env, "LEASE_WAIT": "30s", "LOG_FORMAT": "json"}).finish()
    assert following.exit_code == 0, following.stderr
    logs = [json.loads(line) for line in following.stderr.splitlines()]
    (takeover,) = [log for log in logs if "taking over the expired lease" in log["message"]]
    census = task_census(org, expected_tasks(apps))
    assert census.exact, census.problems()
    assert lease_labels(org) == []
    # Blocked for at most the TTL after the kill (plus up to 2 s between looks at the lease).
    blocked_for = (datetime.fromisoformat(takeover["time"]) - killed).total_seconds()
    assert blocked_for < ttl + 2.5, blocked_for


# 4. InfluxDB gone right after the list phase.


def test_influxdb_gone_after_the_lists_stops_quickly_with_one_error(
    org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    set_apps(phalanx, app_names(100))
    gone = False

    def decide(request: RequestInfo) -> Fault:
        nonlocal gone
        gone = gone or (request.method == "POST" and request.path.startswith("/api/v2/tasks"))
        return Fault.REFUSE if gone else Fault.NONE

    with FaultProxy(org.url) as proxy:
        proxy.set_faults(decide)
        env = org.env(
            INFLUXDB_URL=proxy.url,
            HTTP_TIMEOUT=str(HTTP_TIMEOUT),
            PHALANX_REPO=phalanx.url,
            CHECKS=",".join(CHECKS),
        )
        run = run_job(["taskmaker", "--output", "json"], env)
        refused = proxy.counts[Fault.REFUSE]
    assert refused > 0
    assert run.exit_code == 3, run.stderr
    assert run.seconds < 30, run.seconds
    lines = run.stderr.splitlines()
    assert sum("unreachable" in line for line in lines) == 1, run.stderr
    assert len(lines) < 100, f"{len(lines)} lines of logs"
    report = run.report
    assert report is not None and report["summary"]["failed"] == 300


# 5. Hostile and unlucky (issue 15): a hostage lease, SIGTERM, a hung server, 5xx everywhere.


def test_a_lease_expiring_beyond_the_ttl_is_not_a_lease_and_is_taken_over(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    """Label write is all it takes to write a lease that expires in 2099; no run renewing
    every TTL/3 could have set that, so it blocks nothing: it is reported and taken over."""
    make_label(org, lease_properties(timedelta(days=365 * 70), job="bucketmaker\nforged"))
    run = run_job(
        ["bucketmaker", "--output", "json"], org.env(PHALANX_REPO=phalanx.url, LEASE_WAIT="0s")
    )
    assert run.exit_code == 0, run.stderr
    warning = next(line for line in run.stderr.splitlines() if "further ahead" in line)
    assert "LEASE_TTL" in warning and "bucketmaker\\nforged" in warning
    census = bucket_census(org, expected_buckets(apps))
    assert census.exact, census.problems()
    assert lease_labels(org) == []


def error_lines(run: JobRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error: ")]


def test_sigterm_stops_a_run_releases_the_lease_and_the_next_converges(
    org: OrgUnderTest, phalanx: PhalanxRepo, apps: list[str]
) -> None:
    """Kubernetes sends SIGTERM at a Job's deadline: the run stops before its next change,
    says so in one line (exit 143), and deletes its lease, so the next run starts at once."""
    env = org.env(PHALANX_REPO=phalanx.url, CHECKS=",".join(CHECKS), CONCURRENCY="2")
    with FaultProxy(org.url, delay=0.3) as slow:
        slow.set_faults(Fault.DELAY, methods=frozenset({"POST"}), path_prefix="/api/v2/tasks")
        victim = start(["taskmaker"], {**env, "INFLUXDB_URL": slow.url})
        wait_for(lambda: len(list_tasks(org)) >= 4, 60, "the first tasks")
        victim.popen.send_signal(signal.SIGTERM)
        stopped = victim.finish(timeout=30)
    assert stopped.exit_code == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr
    (line,) = error_lines(stopped)
    assert "stopped by SIGTERM" in line
    assert lease_labels(org) == [], "the stopped run left its lease behind"
    made = len(list_tasks(org))
    assert 0 < made < len(expected_tasks(apps))
    following = run_job(["taskmaker", "--output", "json"], {**env, "LEASE_WAIT": "0s"})
    assert following.exit_code == 0, following.stderr
    census = task_census(org, expected_tasks(apps))
    assert census.exact, census.problems()


def test_sigterm_of_a_notifier_stuck_on_slack_releases_its_lease(
    org: OrgUnderTest, slack: SlackServer
) -> None:
    for bucket in INTERNAL_BUCKETS:
        create_bucket(org, bucket)
    write_findings(org, [f"k{i}" for i in range(5)], ["idfdev"])
    slack.script("/hook", Hang(20))
    env = org.env(SLACK_WEBHOOK_URL=slack.url("/hook"), SLACK_TIMEOUT="15")
    victim = start(["notifier"], env)
    wait_for(lambda: slack.posts(), 30, "the notifier's first post")
    victim.popen.send_signal(signal.SIGTERM)
    stopped = victim.finish(timeout=30)
    assert stopped.exit_code == 128 + signal.SIGTERM, stopped.stderr
    assert lease_labels(org) == [], "the notifier's lease blocks the next runs"
    following = run_job(["notifier", "--output", "json"], {**env, "LEASE_WAIT": "0s"})
    assert following.exit_code in (0, 1), following.stderr  # not 4: nothing holds the lease


@pytest.mark.parametrize("job", ["notifier", "bucketmaker"])
def test_a_hung_influxdb_ends_a_run_within_the_retry_budget(
    org: OrgUnderTest, phalanx: PhalanxRepo, slack: SlackServer, job: str
) -> None:
    """A server that accepts connections and never answers: every request times out. The run
    gives up with exit 3 once HTTP_RETRY_BUDGET has passed, however many requests it meant to
    make (it used to take attempts x timeout for each: 125 s for the notifier)."""
    set_apps(phalanx, app_names(4))
    with FaultProxy(org.url, delay=120) as hung:
        hung.fail_all(Fault.DELAY)
        env = org.env(
            INFLUXDB_URL=hung.url,
            HTTP_TIMEOUT="3",
            HTTP_RETRY_BUDGET="5s",
            PHALANX_REPO=phalanx.url,
            SLACK_WEBHOOK_URL=slack.url(),
        )
        run = run_job([job, "--output", "json"], env)
    assert run.exit_code == 3, run.stderr
    assert run.seconds < 5 + 3 + 4, run.seconds  # the budget, one timeout, start-up
    (line,) = error_lines(run)
    assert "HTTP_RETRY_BUDGET" in line or "cannot reach InfluxDB" in line, line
    assert slack.posts() == []


def test_a_server_answering_5xx_to_everything_is_exit_3(
    org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    set_apps(phalanx, app_names(4))
    with FaultProxy(org.url) as broken:
        broken.fail_all(Fault.STATUS_503)
        env = org.env(INFLUXDB_URL=broken.url, PHALANX_REPO=phalanx.url)
        run = run_job(["bucketmaker", "--output", "json"], env)
    assert run.exit_code == 3, run.stderr
    (line,) = error_lines(run)
    assert "answered 503" in line
    assert bucket_census(org, []).objects == 0

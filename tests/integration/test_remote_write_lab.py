"""Remote write end to end, with real programs: a cluster's own Prometheus (Debian's 2.42, in
agent mode) scrapes the lab's real kube-state-metrics and remote-writes, with the section
``prometheus-config`` generates, into the receiver of ``receiver-config`` (the real Telegraf),
which writes into the real influxd; the checks ``oom_killed`` and ``job_failed`` run as real
tasks on what arrived, and the notifier sends the finding to the Slack stand-in.

Next to it, the scrape path: the same kube-state-metrics, scraped by the Telegraf of
``telegraf-config`` (its generated ``inputs.prometheus``, discovering kube-state-metrics' pod
in the lab's API server) into a second organization; the same checks there find the same
problems, word for word.

The lab's Prometheus is configured as kube-prometheus-stack configures it for
kube-state-metrics (``honor_labels: true``, the ServiceMonitor's target labels ``job``,
``namespace``, ``service``, ``pod``, ``container``, ``endpoint``; the external labels
``prometheus`` and ``prometheus_replica``), plus an external label ``cluster`` of another
cluster's name: the receiver must put its own. Changes to the generated sections: the
password file's path, the receiver's address (127.0.0.1), a 1 s scrape interval, and a queue
scaled down with the lab's rate (see the outage test).
"""

from __future__ import annotations

import itertools
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_cli
from support.exposition import free_loopback
from support.kubeapi import KubeAPI, write_kubeconfig
from support.kubestate import kube_state_metrics, least_privilege_token
from support.labobjects import LabObjects, Termination
from support.orgs import OrgUnderTest, new_org
from support.prometheus import Prometheus, prometheus_agent
from support.telegraf import TelegrafAgent, generated_toml, run_telegraf_once, telegraf_agent

from rubin_monitoring.models import metrics
from rubin_monitoring.models.checks import CheckSettings
from rubin_monitoring.services.checks import render_check
from rubin_monitoring.testing.flux import (
    Alert,
    create_bucket,
    create_task,
    query_alerts,
    query_rows,
    start_run,
    wait_for_run,
)
from rubin_monitoring.testing.influxd import InfluxServer
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.remote_write import free_ports
from rubin_monitoring.testing.slack_server import assert_no_secret, slack_server

pytestmark = pytest.mark.integration

ENVIRONMENT = "idfdev"
# Namespaces of their own: a Job deleted by another module's lab lingers (no controller
# finishes its deletion), and its name could not be reused.
APPLICATIONS = ["hips", "mobu", "siav2"]
DEFAULTS = {**dict.fromkeys(APPLICATIONS, True), "squareone": False}
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "idfdev": {},
    "summit": {"applications": {"squareone": True}},
}
NODE = "idfdev-node"
SCRAPE_INTERVAL = 1  # seconds
# The lab sends a few dozen samples a second (kube-state-metrics' series of idfdev's namespaces,
# every second), a cluster some 1000 (30 000 series every 30 s): the queue is scaled down by
# about that factor, so that the lab's outage backs up past the in-memory queue into the
# write-ahead log, as a 5-minute outage does in a cluster with the generated queue.
# (And a batch waits at most 1 s to fill, not 5 s: the lab's first points arrive sooner.)
LAB_QUEUE = {"capacity": 30, "max_samples_per_send": 10, "batch_send_deadline": "1s"}
OUTAGE = 15  # seconds: see test_a_receiver_outage_loses_no_sample
EXTERNAL_LABELS = {
    "cluster": "usdfprod",
    "prometheus": "monitoring/kube-prometheus-stack-prometheus",
    "prometheus_replica": "prometheus-kube-prometheus-stack-prometheus-0",
}
KSM_TARGET_LABELS = {
    "job": "kube-state-metrics",
    "service": "kube-prometheus-stack-kube-state-metrics",
    "pod": "kube-prometheus-stack-kube-state-metrics-5d9f8c7b6-x2v4n",
    "container": "kube-state-metrics",
    "endpoint": "http",
}
# The checks run at a now() up to which the receiver has written whole scrapes, as a task runs
# at its offset after its now(): one scrape's samples reach the receiver in several batches, and
# oom_killed pairs a container's latest reason and termination time by their common timestamp
# (see whole_scrapes_until).
OOM = metrics.KSM_LAST_TERMINATED_REASON
TERMINATED_AT = metrics.KSM_LAST_TERMINATED_TIMESTAMP
INTERNAL = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}


@dataclass
class Lab:
    """What the module's tests share."""

    scraped: OrgUnderTest
    remote: OrgUnderTest
    prometheus: Prometheus
    receiver_config: str
    receiver_env: dict[str, str]
    receiver_ports: list[tuple[str, int]]
    stack: ExitStack
    receiver: TelegrafAgent | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def start_receiver(self) -> None:
        self.receiver = self.stack.enter_context(self._receiver())

    @contextmanager
    def _receiver(self) -> Iterator[TelegrafAgent]:
        with telegraf_agent(
            self.receiver_config,
            self.receiver_env,
            args=["--strict-env-handling"],
            ports=self.receiver_ports,
        ) as agent:
            yield agent
            errors = [line for line in agent.log().splitlines() if " E! " in line]
            assert errors == [], agent.log()


def tokens(org: OrgUnderTest, repo: PhalanxRepo, *roles: str) -> dict[str, str]:
    env = org.env(PHALANX_REPO=repo.url)
    assert run_cli(["bucketmaker"], env).exit_code == 0
    flags = [arg for role in roles for arg in ("--role", role)]
    issued = run_cli(["tokenmaker", *flags, "--output", "json"], env)
    assert issued.exit_code == 0, issued.stderr
    found: dict[str, str] = issued.json()["tokens"]
    return found


def make_objects(objects: LabObjects, now: datetime) -> None:
    """What kube-state-metrics reports: an OOM kill 2 minutes ago and a failed Job in
    hips, and in squareone (which idfdev does not enable); an old OOM kill in siav2."""

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    for namespace in ("hips", "siav2", "squareone"):
        objects.namespace(namespace)
    for namespace in ("hips", "squareone"):
        objects.pod(namespace, "worker-0", node=NODE, restarts=1,
                    terminated=Termination("OOMKilled", ago(minutes=2)))  # fmt: skip
        objects.job(namespace, "migrate", started=ago(minutes=30), failed=True)
    objects.pod("siav2", "old-0", node=NODE, restarts=1,
                terminated=Termination("OOMKilled", ago(hours=3)))  # fmt: skip
    objects.job("siav2", "done", started=ago(minutes=20), completed=ago(minutes=15))


def scrape_path_config(generated: str, kubeconfig: Path) -> str:
    """The generated Telegraf configuration with only its scraping (``inputs.prometheus``,
    pod discovery through ``kubeconfig``): kube_inventory and the kubelet are the DaemonSet
    path's, tested elsewhere."""
    config = tomllib.loads(generated)
    config["inputs"] = {"prometheus": config["inputs"]["prometheus"]}
    for scrape in config["inputs"]["prometheus"]:
        scrape["kube_config"] = str(kubeconfig)
    return generated_toml(config)


def prometheus_config(generated: str, receiver_url: str, ksm: str) -> dict[str, Any]:
    """The lab Prometheus: kube-state-metrics scraped as kube-prometheus-stack scrapes it, and
    the generated remote_write section (password file in the agent's directory, the receiver
    at ``receiver_url``, the lab's queue)."""
    (remote_write,) = yaml.safe_load(generated)["remote_write"]
    assert remote_write["url"].startswith(receiver_url)
    remote_write["basic_auth"]["password_file"] = "{dir}/password"
    remote_write["queue_config"].update(LAB_QUEUE)
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL}s",
            "scrape_timeout": f"{SCRAPE_INTERVAL}s",
            "external_labels": EXTERNAL_LABELS,
        },
        "scrape_configs": [
            {
                "job_name": "serviceMonitor/monitoring/kube-prometheus-stack-kube-state-metrics/0",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [ksm], "labels": {**KSM_TARGET_LABELS, "namespace": "monitoring"}}
                ],
            }
        ],
        "remote_write": [remote_write],
    }


def wait_for(what: str, condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout}s: {what}")
        time.sleep(0.5)


def oom_rows(org: OrgUnderTest, bucket: str = "hips") -> list[dict[str, str]]:
    return query_rows(
        org,
        f'from(bucket: "{bucket}") |> range(start: -15m)'
        f' |> filter(fn: (r) => r._measurement == "prometheus" and r._field == "{OOM}")'
        " |> last()",
    )


@pytest.fixture(scope="module")
def lab(
    influxdb: InfluxServer,
    kube_api: KubeAPI,
    telegraf_bin: Path,
    kube_state_metrics_bin: Path,
    prometheus_bin: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    started = time.monotonic()
    kube = kube_api
    tmp = tmp_path_factory.mktemp("remote-write-lab")
    repo = PhalanxRepo(tmp / "phalanx")
    repo.set_apps(DEFAULTS, ENVIRONMENTS)
    scraped, remote = new_org(influxdb), new_org(influxdb)
    telegraf_token = tokens(scraped, repo, f"telegraf-{ENVIRONMENT}")[f"telegraf-{ENVIRONMENT}"]
    credentials = tokens(remote, repo, "receiver", *(f"receiver-{env}" for env in ENVIRONMENTS))

    namespace = f"monitoring-{uuid.uuid4().hex[:6]}"
    objects = LabObjects(kube)
    with ExitStack() as stack:
        stack.callback(objects.delete_all)
        objects.namespace(namespace)
        make_objects(objects, datetime.now(UTC).replace(microsecond=0))
        # kube-state-metrics at its pod's address and the catalog's port, where Telegraf's pod
        # discovery finds it and Prometheus scrapes it.
        ksm_ip = free_loopback(8080)
        objects.pod(namespace, "kube-state-metrics-6c8d9f7b4-k2l3m", node=NODE,
                    labels={"app.kubernetes.io/name": "kube-state-metrics"}, ip=ksm_ip)  # fmt: skip
        stack.enter_context(
            kube_state_metrics(kube, least_privilege_token(kube), host=ksm_ip, port=8080)
        )

        # The remote-write path: the receiver, then Prometheus.
        base_port = free_ports(len(ENVIRONMENTS))
        receiver_env = {"INFLUX_TOKEN": credentials["receiver"]}
        config_env = {"INFLUXDB_URL": remote.url, "INFLUXDB_ORG": remote.name,
                      "PHALANX_REPO": repo.url}  # fmt: skip
        args = ["receiver-config", "--listen-address", "127.0.0.1", "--base-port", str(base_port)]
        generated = run_cli(args, config_env)
        described = run_cli([*args, "--output", "json"], config_env).json()
        assert generated.exit_code == 0, generated.stderr
        for listener in described["listeners"]:
            name = listener["environment"]
            receiver_env[listener["password_variable"]] = credentials[f"receiver-{name}"]
        (idfdev,) = [item for item in described["listeners"] if item["environment"] == ENVIRONMENT]
        receiver_url = f"http://127.0.0.1:{idfdev['port']}"
        section = run_cli(
            ["prometheus-config", "--environment", ENVIRONMENT, "--receiver-url", receiver_url],
            {"PHALANX_REPO": repo.url},
        )
        assert section.exit_code == 0, section.stderr
        lab_ready = time.monotonic()
        ports = [("127.0.0.1", base_port + i) for i in range(len(ENVIRONMENTS))]
        with prometheus_agent(
            prometheus_config(section.stdout, receiver_url, f"{ksm_ip}:8080"),
            files={"password": credentials[f"receiver-{ENVIRONMENT}"]},
        ) as prometheus:
            lab = Lab(scraped, remote, prometheus, generated.stdout, receiver_env, ports, stack)
            lab.start_receiver()

            # The scrape path, meanwhile: the generated scraping, twice.
            token_file = tmp / "token"
            pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
            token_file.write_text(least_privilege_token(kube, rules=pods))
            kubeconfig = write_kubeconfig(kube, token_file, tmp / "kubeconfig")
            scrape_config = run_cli(
                ["telegraf-config", "--environment", ENVIRONMENT, "--namespace", namespace],
                {**config_env, "INFLUXDB_ORG": scraped.name},
            )
            assert scrape_config.exit_code == 0, scrape_config.stderr
            config = scrape_path_config(scrape_config.stdout, kubeconfig)
            for _ in range(2):
                done = run_telegraf_once(
                    config, {"INFLUX_TOKEN": telegraf_token, "NODE_NAME": NODE}
                )
                assert done.returncode == 0, done.stderr
            assert oom_rows(scraped), "the scrape path wrote no OOM kill"
            wait_for("the OOM kill written through the receiver", lambda: oom_rows(remote))
            lab.timings = {
                "setup": lab_ready - started,
                "first remote-written point": time.monotonic() - lab_ready,
            }
            print(f"\nremote-write lab: {lab.timings}")
            yield lab


def whole_scrapes_until(org: OrgUnderTest) -> datetime:
    """A now() for the checks: just after the latest scrape of which both series oom_killed
    pairs, the OOM kill's reason and its time, have been written, so that a check sees whole
    scrapes, as a task at its offset does. (Samples of the latest scrape that are still on their
    way would make a check pair a newer time with an older reason and miss the kill.)"""
    deadline = time.monotonic() + 30
    while True:
        rows = query_rows(
            org,
            'from(bucket: "hips") |> range(start: -5m)'
            f' |> filter(fn: (r) => r._field == "{OOM}" or r._field == "{TERMINATED_AT}")'
            ' |> keep(columns: ["_time", "_field"]) |> group()',
        )
        times: dict[str, set[str]] = {}
        for row in rows:
            times.setdefault(row["_field"], set()).add(row["_time"])
        common = times.get(OOM, set()) & times.get(TERMINATED_AT, set())
        if common:
            latest = datetime.fromisoformat(max(common).replace("Z", "+00:00"))
            return latest.replace(microsecond=0) + timedelta(seconds=1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no scrape of both OOM series written: {times}")
        time.sleep(0.5)


def run_check(
    org: OrgUnderTest, check: str, bucket: str, at: datetime, settings: CheckSettings
) -> list[Alert]:
    """Render ``check`` over ``bucket`` as taskmaker would, run it once at ``at`` as a real
    task writing into a bucket of its own; its findings."""
    alerts = f"alerts_{uuid.uuid4().hex[:8]}"
    create_bucket(org, alerts)
    flux = render_check(
        check, bucket=bucket, task_name=f"{bucket} {check}", offset="0s",
        settings=replace(settings, checks=(check,)), alert_bucket=alerts,
        applications=[*APPLICATIONS, "squareone"],
    )  # fmt: skip
    task_id = create_task(org, flux)
    run = wait_for_run(org, task_id, start_run(org, task_id, scheduled_for=at))
    return query_alerts(org, bucket=alerts, at=run.scheduled_for)


def findings(alerts: list[Alert]) -> set[tuple[str, str, str, str, str]]:
    return {(a.dedup_key, a.message, a.severity, a.cluster, a.application) for a in alerts}


def test_the_same_checks_find_the_same_problems_on_both_paths(lab: Lab) -> None:
    at = whole_scrapes_until(lab.remote)
    settings = CheckSettings()
    found: dict[str, set[tuple[str, str, str, str, str]]] = {}
    for check in ("oom_killed", "job_failed"):
        for bucket in ("hips", "siav2"):
            scraped = findings(run_check(lab.scraped, check, bucket, at, settings))
            remote = findings(run_check(lab.remote, check, bucket, at, settings))
            assert remote == scraped, (check, bucket, at, oom_rows(lab.remote, bucket))
            found[f"{check} {bucket}"] = remote
    assert {key for key, *_ in found["oom_killed hips"]} == {
        "oom_killed/idfdev/hips/hips/worker-0/main"
    }
    assert {key for key, *_ in found["job_failed hips"]} == {"job_failed/idfdev/hips/hips/migrate"}
    # siav2's OOM kill is 3 hours old, its Job completed: nothing, either way.
    for key in ("oom_killed siav2", "job_failed siav2"):
        assert found[key] == set(), key


def test_an_oom_kill_reaches_slack_through_prometheus_and_the_receiver(lab: Lab) -> None:
    at = whole_scrapes_until(lab.remote)
    flux = render_check(
        "oom_killed", bucket="hips", task_name="hips oom_killed", offset="0s",
        settings=CheckSettings(), applications=[*APPLICATIONS, "squareone"],
    )  # fmt: skip
    task_id = create_task(lab.remote, flux)
    run = wait_for_run(lab.remote, task_id, start_run(lab.remote, task_id, scheduled_for=at))
    assert run.status == "success", run
    assert [a.dedup_key for a in query_alerts(lab.remote, at=run.scheduled_for)] == [
        "oom_killed/idfdev/hips/hips/worker-0/main"
    ]
    with slack_server() as slack:
        env = lab.remote.env(SLACK_WEBHOOK_URL=slack.url())
        sent = run_cli(["notifier", "--output", "json"], env)
        assert sent.exit_code == 0, sent.stderr
        assert_no_secret(sent.stdout, sent.stderr)
        delivered = slack.delivered()
        assert len(delivered) == 1, sent.stdout + sent.stderr
        (post,) = delivered
    assert "worker-0" in post.text and "hips" in post.text and "idfdev" in post.text
    assert "OOMKilled" in post.text
    assert "squareone" not in post.text


def test_a_remote_written_series_has_the_scraped_ones_tags_and_the_target_labels(
    lab: Lab,
) -> None:
    tags = {
        path: {frozenset(set(row) - INTERNAL) for row in oom_rows(org)}
        for path, org in (("scraped", lab.scraped), ("remote", lab.remote))
    }
    scraped = {"cluster", "namespace", "pod", "uid", "container", "reason"}
    assert tags["scraped"] == {frozenset(scraped)}
    # The ServiceMonitor's target labels job, service and endpoint stay; instance and the
    # external labels prometheus and prometheus_replica are dropped; cluster is the receiver's.
    assert tags["remote"] == {frozenset({*scraped, "job", "service", "endpoint"})}
    (row,) = oom_rows(lab.remote)
    assert (row["cluster"], row["namespace"], row["pod"], row["reason"]) == (
        ENVIRONMENT,
        "hips",
        "worker-0",
        "OOMKilled",
    )
    assert oom_rows(lab.remote, "squareone") == []


def samples_by_series(
    org: OrgUnderTest, start: datetime, stop: datetime | None = None
) -> dict[tuple[str, ...], list[int]]:
    """Each series of ``hips`` from ``start`` to ``stop`` -> its points' times (Unix
    ms)."""
    until = f", stop: {stop.isoformat()}" if stop is not None else ""
    rows = query_rows(
        org,
        f'from(bucket: "hips") |> range(start: {start.isoformat()}{until})'
        ' |> filter(fn: (r) => r._measurement == "prometheus")'
        ' |> keep(columns: ["_time", "_field", "pod", "container", "job_name", "reason",'
        ' "condition", "owner_name", "uid"])',
    )
    series: dict[tuple[str, ...], list[int]] = {}
    for row in rows:
        key = tuple(f"{k}={v}" for k, v in sorted(row.items()) if k != "_time")
        moment = datetime.fromisoformat(row["_time"].replace("Z", "+00:00"))
        series.setdefault(key, []).append(int(moment.timestamp() * 1000))
    return series


def test_a_receiver_outage_loses_no_sample(lab: Lab) -> None:
    """The receiver stops (as a rolling update stops it: SIGTERM, after which Telegraf flushes
    what it accepted) for OUTAGE seconds, then comes back; Prometheus keeps scraping meanwhile,
    and retries from its write-ahead log. Every series then has a point at every scrape of
    the whole period, outage included, and Prometheus failed nothing.

    15 s rather than 2 minutes, the same mechanism: Prometheus retries a batch that met a
    connection error with a backoff that doubles from min_backoff (30 ms) up to max_backoff
    (5 s), which it reaches after about 8 s; from then on it retries every 5 s, and each
    further second only adds to the backlog in the WAL; what
    could end that, truncating the WAL (agent mode: every 2 h, keeping what was not sent) or
    a sample age limit (not set), is hours away. The lab's queue (LAB_QUEUE) is scaled down
    with its rate so the backlog outgrows the in-memory queue into the WAL, as a 5-minute
    outage does in a cluster."""
    prometheus = lab.prometheus
    start = datetime.now(UTC)
    time.sleep(3 * SCRAPE_INTERVAL)
    failed_before = prometheus.counter("prometheus_remote_storage_samples_failed_total")
    retried_before = prometheus.counter("prometheus_remote_storage_samples_retried_total")
    assert lab.receiver is not None
    lab.receiver.process.terminate()
    lab.receiver.process.wait(timeout=15)
    down = datetime.now(UTC)
    time.sleep(OUTAGE)
    pending = prometheus.counter("prometheus_remote_storage_samples_pending")
    up = datetime.now(UTC)
    lab.start_receiver()
    # Prometheus catches up: nothing pending, and scrapes after the outage written.
    caught_up = up + timedelta(seconds=2)

    def sent() -> bool:
        # The WAL is read in order: a sample newer than caught_up was read, so every older one
        # was, and with nothing pending every one read was sent.
        times = samples_by_series(lab.remote, start).values()
        newest = max((max(each) for each in times), default=0)
        pending = prometheus.counter("prometheus_remote_storage_samples_pending")
        return pending == 0 and newest > caught_up.timestamp() * 1000

    wait_for("Prometheus's backlog sent", sent, timeout=120)
    caught_up_in = (datetime.now(UTC) - up).total_seconds()
    time.sleep(2)  # the receiver's flush of the last ones
    retried = prometheus.counter("prometheus_remote_storage_samples_retried_total")
    assert retried > retried_before, "the outage did not make Prometheus retry"
    assert prometheus.counter("prometheus_remote_storage_samples_failed_total") == failed_before

    series = samples_by_series(lab.remote, start, caught_up)
    assert len(series) >= 10
    scrapes = sorted({moment for times in series.values() for moment in times})
    # Every series has a point at every scrape (a lost batch would leave some without).
    incomplete = {key: len(times) for key, times in series.items() if sorted(times) != scrapes}
    assert incomplete == {}, (len(scrapes), incomplete)
    # And the scrapes are those of the whole period: none missing, outage included.
    gaps = [b - a for a, b in itertools.pairwise(scrapes)]
    assert max(gaps) < 2.5 * SCRAPE_INTERVAL * 1000, max(gaps)
    during = [m for m in scrapes if down.timestamp() * 1000 < m < up.timestamp() * 1000]
    assert len(during) >= OUTAGE / SCRAPE_INTERVAL * 0.8, len(during)
    # Most of the outage's samples waited in the WAL, not in the in-memory queue.
    assert pending < len(series) * len(during) / 2, (pending, len(series) * len(during))
    print(
        f"\noutage {OUTAGE}s: {len(series)} series x {len(scrapes)} scrapes, {len(during)} "
        f"during the outage, at most {pending:.0f} samples queued in memory; retried "
        f"{retried - retried_before:.0f} samples, failed none; caught up {caught_up_in:.1f}s "
        "after the receiver came back"
    )

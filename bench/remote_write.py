#!/usr/bin/env python3
"""Samples per second through the remote-write receiver into influxd, next to the scraping
Telegraf writing the same series; and the receiver's memory under a burst of clusters.

    python bench/remote_write.py [--series 10000] [--timestamps 10] [--clusters 10]
                                 [--burst-series 5000] [--senders 4]

Starts a throwaway influxd (INFLUXD_BIN, or scripts/provision-influxd's) and, with the real
Telegraf (TELEGRAF_BIN, or scripts/provision-telegraf's), two organizations of 10 application
buckets made by bucketmaker from a repository of ``--clusters`` environments. The series are
kube-state-metrics-shaped (``kube_pod_container_status_restarts_total`` with ``namespace``,
``pod``, ``uid``, ``container``), spread over the 10 applications' namespaces.

1. Receiver: the configuration ``receiver-config`` generates, run as its manifests run it;
   ``--series`` x ``--timestamps`` samples, encoded beforehand as Prometheus sends them (one
   time series per sample, 2000 per request, snappy), POSTed by ``--senders`` concurrent
   connections to one environment's listener. Timed from the first request to the last
   point written (Telegraf's own log of each batch it wrote), then counted in influxd.
2. Scraping Telegraf: the configuration ``telegraf-config`` generates (processors, output and
   agent as generated, but for a buffer holding the whole gather; its inputs one
   ``inputs.prometheus`` of ``--timestamps`` URLs, each serving all ``--series`` series, at
   nanosecond precision so each URL's scrape is a point of its own): the same series and
   number of samples, one ``telegraf --once``, timed from its first scrape to its exit (all
   written); then again with the receiver's output settings (batch size, concurrent writes).
3. Burst: ``--clusters`` environments each write ``--burst-series`` x ``--timestamps``
   samples at once through their own listeners; the receiver's resident memory is sampled
   every 50 ms (VmRSS), and its peak (VmHWM) and the time to write everything are printed.

The machine's cores are shared by influxd, Telegraf and this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from rubin_monitoring.models import metrics
from rubin_monitoring.services.receiver import CONCURRENT_WRITES, METRIC_BATCH_SIZE
from rubin_monitoring.services.telegraf_toml import EnvReference, telegraf_toml
from rubin_monitoring.testing.influxd import InfluxServer, cached_binary, run_binary
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.remote_write import Series, free_ports, post, write_request

APPS = [f"app-{i:02d}" for i in range(10)]
METRIC = metrics.KSM_RESTARTS_TOTAL
BATCH = 2000  # samples per request: Prometheus's max_samples_per_send (prometheus-config's)
WROTE = re.compile(r"Wrote batch of (\d+) metrics")
FULLNESS = re.compile(r"outputs\.influxdb_v2\] Buffer fullness: (\d+) ")
DROPPED = re.compile(r"Metric buffer overflow; (\d+) metrics have been dropped")
CLI = Path(sys.executable).parent / "rubin-monitoring"


def telegraf_binary() -> Path:
    explicit = os.environ.get("TELEGRAF_BIN")
    root = os.environ.get("RUBIN_MONITORING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rubin-monitoring"
    )
    binary = Path(explicit) if explicit else Path(root) / "telegraf-1.37.2" / "telegraf"
    if not binary.exists():
        raise SystemExit("no telegraf: run scripts/provision-telegraf or set TELEGRAF_BIN")
    return binary


def cli(args: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(CLI), *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"rubin-monitoring {args[0]} failed: {done.stderr}")
    return done.stdout


@dataclass(frozen=True)
class Org:
    server: InfluxServer
    name: str

    def env(self, repo: PhalanxRepo) -> dict[str, str]:
        return {
            "INFLUXDB_URL": self.server.url,
            "INFLUXDB_TOKEN": self.server.token,
            "INFLUXDB_ORG": self.name,
            "PHALANX_REPO": repo.url,
        }

    def count(self) -> int:
        """Points of the benchmark's metric in the application buckets."""
        total = 0
        with self.server.client(timeout=300) as client:
            for app in APPS:
                flux = (
                    f'from(bucket: "{app.replace("-", "_")}") |> range(start: -1d)'
                    f' |> filter(fn: (r) => r._field == "{METRIC}") |> count()'
                    " |> group() |> sum()"
                )
                response = client.post(
                    "/api/v2/query",
                    params={"org": self.name},
                    json={"query": flux, "dialect": {"annotations": []}},
                )
                response.raise_for_status()
                lines = [line for line in response.text.splitlines() if line.strip()]
                if len(lines) > 1:
                    total += int(lines[1].split(",")[-1])
        return total


def new_org(server: InfluxServer, repo: PhalanxRepo) -> Org:
    with server.client() as client:
        response = client.post("/api/v2/orgs", json={"name": f"bench-{uuid.uuid4().hex[:8]}"})
        response.raise_for_status()
    org = Org(server, response.json()["name"])
    cli(["bucketmaker"], org.env(repo))
    return org


def series_labels(count: int, cluster_index: int = 0) -> list[dict[str, str]]:
    return [
        {
            "__name__": METRIC,
            "namespace": APPS[i % len(APPS)],
            "pod": f"pod-{cluster_index}-{i:06d}",
            "uid": f"{cluster_index:02d}{i:010d}",
            "container": "main",
        }
        for i in range(count)
    ]


def bodies(labels: list[dict[str, str]], timestamps: int, start_ms: int) -> list[bytes]:
    """Remote-write bodies as Prometheus sends them: one time series per sample."""
    samples = [
        Series(series, [(float(step), start_ms + step * 1000)])
        for step in range(timestamps)
        for series in labels
    ]
    return [write_request(samples[i : i + BATCH]) for i in range(0, len(samples), BATCH)]


# The receiver


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    log_file: Path

    def written(self) -> int:
        text = self.log_file.read_text(errors="replace")
        return sum(int(found) for found in WROTE.findall(text))

    def buffered(self) -> int:
        """The most points its InfluxDB output held at once (its debug log)."""
        text = self.log_file.read_text(errors="replace")
        return max((int(found) for found in FULLNESS.findall(text)), default=0)

    def dropped(self) -> int:
        """Points dropped from a full buffer (its log)."""
        text = self.log_file.read_text(errors="replace")
        return sum(int(found) for found in DROPPED.findall(text))

    def memory_kib(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        return 0


@contextmanager
def telegraf(config: str, env: dict[str, str], args: Sequence[str] = ()) -> Iterator[Agent]:
    work = Path(tempfile.mkdtemp(prefix="bench-telegraf-"))
    (work / "telegraf.conf").write_text(config)
    log_file = work / "telegraf.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(telegraf_binary()), "--config", str(work / "telegraf.conf"), *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Agent(process, log_file)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def debug_toml(generated: str) -> str:
    """The generated configuration with Telegraf's debug log (each batch written)."""
    config = tomllib.loads(generated)
    config["agent"]["debug"] = True
    return telegraf_toml([], _marked(config))


def _marked(value: Any) -> Any:
    if isinstance(value, str):
        return EnvReference(value) if "${" in value else value
    if isinstance(value, dict):
        return {key: _marked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_marked(item) for item in value]
    return value


def wait_listening(ports: Sequence[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the receiver does not listen on {port}") from None
                time.sleep(0.1)


def send_all(jobs: list[tuple[str, str, bytes]], senders: int) -> None:
    """POST every (url, environment, body) with ``senders`` connections; each must get 204."""

    def run(chunk: list[tuple[str, str, bytes]]) -> None:
        with httpx.Client(timeout=120) as client:
            for url, environment, body in chunk:
                response = post(url, body, auth=(environment, password(environment)), client=client)
                if response.status_code != 204:
                    raise SystemExit(f"receiver answered {response.status_code}: {response.text}")

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(run, [jobs[i::senders] for i in range(senders)]))


def password(environment: str) -> str:
    return f"bench-password-{environment}"


def wait_written(agent: Agent, total: int, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    while agent.written() < total:
        if agent.process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"receiver wrote {agent.written()} of {total}:\n{agent.log_file}")
        time.sleep(0.02)
    return time.perf_counter()


# The scraping Telegraf


@contextmanager
def exposition_server(texts: list[bytes], first: list[float]) -> Iterator[str]:
    """Serve ``texts[i]`` at ``/metrics/<i>``; the base URL. ``first`` gets the time of the
    first request (``time.perf_counter``)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if not first:
                first.append(time.perf_counter())
            index = int(self.path.rsplit("/", 1)[1])
            body = texts[index]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def exposition(labels: list[dict[str, str]], value: int) -> bytes:
    lines = [f"# TYPE {METRIC} counter"]
    for series in labels:
        tags = ",".join(f'{k}="{v}"' for k, v in series.items() if k != "__name__")
        lines.append(f"{METRIC}{{{tags}}} {value}")
    return ("\n".join(lines) + "\n").encode()


def scrape_config(
    generated: str, urls: list[str], samples: int, *, like_receiver: bool = False
) -> str:
    """telegraf-config's configuration scraping ``urls`` instead of discovered pods; its
    output's buffer holds the whole gather (``--once`` flushes only after gathering; the
    generated configuration keeps Telegraf's 10 000 points, one node's scrapes per interval).
    ``like_receiver``: with the receiver's batch size and concurrent writes."""
    config = tomllib.loads(generated)
    if like_receiver:
        config["agent"]["metric_batch_size"] = METRIC_BATCH_SIZE
        for output in config["outputs"]["influxdb_v2"]:
            output["concurrent_writes"] = CONCURRENT_WRITES
    template = dict(config["inputs"]["prometheus"][0])
    for key in [k for k in template if k.startswith(("monitor_kubernetes", "kubernetes_", "pod_"))]:
        del template[key]
    template.update(urls=urls, alias="bench")
    config["inputs"] = {"prometheus": [template]}
    config["agent"]["precision"] = "1ns"  # each URL's scrape a point of its own
    config["agent"]["metric_buffer_limit"] = samples
    return telegraf_toml([], _marked(config))


def timed_once(config: str, env: dict[str, str], first: list[float]) -> float:
    """Seconds from the first scrape to the end of ``telegraf --once`` (all written)."""
    work = Path(tempfile.mkdtemp(prefix="bench-once-"))
    (work / "telegraf.conf").write_text(config)
    done = subprocess.run(
        [str(telegraf_binary()), "--config", str(work / "telegraf.conf"), "--once"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    finished = time.perf_counter()
    if done.returncode != 0 or "overflow" in done.stderr.lower():
        raise SystemExit(f"telegraf --once failed:\n{done.stderr[-3000:]}")
    return finished - first[0]


def measure(label: str, function: Callable[[], float]) -> float:
    print(f"{label}...", flush=True)
    return function()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--timestamps", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--burst-series", type=int, default=5_000)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    influxd = cached_binary()
    if influxd is None or not influxd.exists():
        raise SystemExit("no influxd: run scripts/provision-influxd or set INFLUXD_BIN")
    telegraf_binary()
    clusters = [f"cluster-{i:02d}" for i in range(args.clusters)]
    samples = args.series * args.timestamps

    with tempfile.TemporaryDirectory() as tmp, run_binary(influxd) as server:
        repo = PhalanxRepo(Path(tmp) / "phalanx")
        repo.set_apps(dict.fromkeys(APPS, True), {name: {} for name in clusters})
        received, scraped = new_org(server, repo), new_org(server, repo)

        # 1. Through the receiver.
        base_port = free_ports(len(clusters))
        env = received.env(repo)
        listen = ["--listen-address", "127.0.0.1", "--base-port", str(base_port)]
        generated = cli(["receiver-config", *listen], env)
        described = json.loads(cli(["receiver-config", *listen, "--output", "json"], env))
        receiver_env = {"INFLUX_TOKEN": server.token}
        urls = {}
        for listener in described["listeners"]:
            name = listener["environment"]
            receiver_env[listener["password_variable"]] = password(name)
            urls[name] = f"http://127.0.0.1:{listener['port']}{listener['path']}"
        labels = series_labels(args.series)
        start_ms = int(time.time() * 1000) - args.timestamps * 1000
        encoded = bodies(labels, args.timestamps, start_ms)
        size = sum(len(body) for body in encoded) / len(encoded)
        with telegraf(debug_toml(generated), receiver_env, ["--strict-env-handling"]) as agent:
            wait_listening([int(u.split(":")[2].split("/")[0]) for u in urls.values()])
            idle_rss = agent.memory_kib()
            began = time.perf_counter()
            send_all([(urls[clusters[0]], clusters[0], body) for body in encoded], args.senders)
            sent = time.perf_counter()
            finished = wait_written(agent, samples)
            receiver_seconds = finished - began
            counted = received.count()
            print(
                f"receiver: {samples} samples in {len(encoded)} requests "
                f"({size / 1024:.0f} KiB each), sent in {sent - began:.2f} s, written in "
                f"{receiver_seconds:.2f} s; {counted} points in influxd",
                flush=True,
            )

            # 3. A burst of clusters, each through its own listener.
            burst = []
            for index, cluster in enumerate(clusters):
                cluster_labels = series_labels(args.burst_series, index + 1)
                burst += [
                    (urls[cluster], cluster, body)
                    for body in bodies(cluster_labels, args.timestamps, start_ms)
                ]
            burst_samples = args.clusters * args.burst_series * args.timestamps
            before = agent.written()
            rss: list[int] = []
            stop = threading.Event()

            def sample_memory() -> None:
                while not stop.is_set():
                    rss.append(agent.memory_kib())
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample_memory)
            sampler.start()
            began = time.perf_counter()
            send_all(burst, args.clusters)
            burst_sent = time.perf_counter() - began
            burst_finished = wait_written(agent, before + burst_samples) - began
            stop.set()
            sampler.join()
            peak = agent.memory_kib("VmHWM")
            buffered = agent.buffered()
            dropped = agent.dropped()

        # 2. The scraping Telegraf: the same series, as many samples.
        generated = cli(["telegraf-config", "--environment", clusters[0]], scraped.env(repo))
        texts = [exposition(labels, step) for step in range(args.timestamps)]
        scrape_env = {"INFLUX_TOKEN": server.token, "NODE_NAME": "bench"}
        first: list[float] = []
        with exposition_server(texts, first) as base:
            scrape_urls = [f"{base}/metrics/{i}" for i in range(args.timestamps)]
            config = scrape_config(generated, scrape_urls, samples)
            scrape_seconds = timed_once(config, scrape_env, first)
            scraped_count = scraped.count()
            # Again into fresh buckets, with the receiver's output settings.
            again = new_org(server, repo)
            generated = cli(["telegraf-config", "--environment", clusters[0]], again.env(repo))
            config = scrape_config(generated, scrape_urls, samples, like_receiver=True)
            first.clear()
            like_seconds = timed_once(config, scrape_env, first)
            like_count = again.count()

    receiver_rate = samples / receiver_seconds
    scrape_rate = samples / scrape_seconds
    print()
    print(f"{'path':30}{'samples':>10}{'seconds':>10}{'samples/s':>12}")
    like_rate = samples / like_seconds
    for label, count, seconds, rate in (
        ("receiver (remote write)", counted, receiver_seconds, receiver_rate),
        ("scraping Telegraf", scraped_count, scrape_seconds, scrape_rate),
        ("  with the receiver's output", like_count, like_seconds, like_rate),
    ):
        print(f"{label:30}{count:>10}{seconds:>10.2f}{rate:>12.0f}")
    print(f"ratio receiver / scraping Telegraf: {receiver_rate / scrape_rate:.2f}")
    print(f"ratio receiver / scraping Telegraf, same output: {receiver_rate / like_rate:.2f}")
    print()
    print(
        f"burst: {args.clusters} clusters x {args.burst_series} series x {args.timestamps} "
        f"= {burst_samples} samples, sent in {burst_sent:.2f} s, written in "
        f"{burst_finished:.2f} s ({burst_samples / burst_finished:.0f} samples/s)"
    )
    print(
        f"receiver RSS: {idle_rss / 1024:.0f} MiB idle, peak {peak / 1024:.0f} MiB "
        f"(VmHWM; sampled max {max(rss) / 1024:.0f} MiB); at most {buffered} points waiting "
        f"for influxd ({(peak - idle_rss) / max(buffered, 1):.2f} KiB each); {dropped} dropped"
    )
    if {counted, scraped_count, like_count} != {samples}:
        raise SystemExit(
            f"points missing: receiver {counted}, scrape {scraped_count}, {like_count} of {samples}"
        )


if __name__ == "__main__":
    main()

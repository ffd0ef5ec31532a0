#!/usr/bin/env python3
"""Time the notifier on 1000 pending alerts over 10 routes (one webhook per cluster).

    python bench/notify.py [--alerts 1000] [--routes 10] [--max-chars 39000] [--rate-limit]

Starts a throwaway influxd (scripts/provision-influxd, or INFLUXD_BIN) and a local Slack
webhook server, writes the alerts into multiapp_, and runs the notifier with its default
pacing (1 request per second per webhook) and retries. Prints messages sent, wall time, and
requests per webhook per second, measured at the server: the most requests any webhook got in
one second (must be at most 1) and the smallest gap between two requests to one webhook. Then a
second run, which must send nothing. ``--rate-limit`` makes every webhook answer its first
request with 429 Retry-After 1; ``--max-chars`` lowers the message size limit to force splits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rubin_monitoring.models.alerts import NotifierReport
from rubin_monitoring.services.notifier import MAX_MESSAGE_CHARS, NotifierOptions, run_notifier
from rubin_monitoring.services.routes import load_routes
from rubin_monitoring.storage.alerts import AlertStore, open_client
from rubin_monitoring.storage.slack import SlackWebhooks
from rubin_monitoring.testing.flux import create_bucket, line_protocol, write_lines
from rubin_monitoring.testing.influxd import InfluxServer, influx_server
from rubin_monitoring.testing.slack_server import (
    RateLimited,
    SlackServer,
    max_per_second,
    min_gap,
    slack_server,
)


@dataclass(frozen=True)
class Org:
    url: str
    token: str
    name: str
    id: str


def make_org(server: InfluxServer) -> Org:
    with server.client() as client:
        response = client.post("/api/v2/orgs", json={"name": "bench-notify"})
        response.raise_for_status()
        org = Org(server.url, server.token, "bench-notify", response.json()["id"])
    create_bucket(org, "multiapp_")
    create_bucket(org, "alerted_")
    create_bucket(org, "silences_")
    return org


def write_alerts(org: Org, alerts: int, clusters: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(seconds=30)
    severities = ("critical", "warning", "critical", "info")
    lines = [
        line_protocol(
            "alert",
            {
                "check": ("restarts", "not_running", "cpu", "memory")[i % 4],
                "application": f"app-{i % 37:02d}",
                "cluster": clusters[i % len(clusters)],
                "severity": severities[i % 4],
                "dedup_key": f"k{i:05d}",
            },
            {
                "message": f"pod app-{i % 37:02d}-7d9f8c6b5-{i:05d} container main restarted "
                f"{i % 9 + 1} times in the last 10m (last state: Error, exit code 137)",
                "value": float(i % 9 + 1),
            },
            now - timedelta(milliseconds=i),
        )
        for i in range(alerts)
    ]
    write_lines(org, "multiapp_", lines)


def routes_file(path: Path, slack: SlackServer, clusters: list[str]) -> str:
    lines = ["routes:"]
    for cluster in clusters:
        lines += [
            f"  - name: {cluster}",
            f"    webhook: {slack.url(f'/services/T000/{cluster}/SECRETbench')}",
            f"    clusters: [{cluster}]",
        ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(org: Org, routes_path: str, max_chars: int) -> tuple[NotifierReport, float]:
    routes = load_routes(None, routes_path)
    with open_client(org.url, org.token, org.name, timeout=30) as client:
        started = time.perf_counter()
        report = run_notifier(
            AlertStore(client, org.name),
            SlackWebhooks(),
            routes,
            NotifierOptions(max_chars=max_chars),
        )
        return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=10)
    parser.add_argument("--max-chars", type=int, default=MAX_MESSAGE_CHARS)
    parser.add_argument("--rate-limit", action="store_true")
    args = parser.parse_args()
    clusters = [f"cluster{i:02d}" for i in range(args.routes)]
    with tempfile.TemporaryDirectory() as tmp, influx_server() as server, slack_server() as slack:
        org = make_org(server)
        write_alerts(org, args.alerts, clusters)
        path = routes_file(Path(tmp) / "routes.yaml", slack, clusters)
        if args.rate_limit:
            for cluster in clusters:
                slack.script(f"/services/T000/{cluster}/SECRETbench", RateLimited(1))
        print(
            f"alerts={args.alerts} routes={args.routes} max_chars={args.max_chars} "
            f"rate_limit={args.rate_limit} influxd={server.source or 'binary'}"
        )
        report, elapsed = run(org, path, args.max_chars)
        summary = report.summary()
        posts = slack.posts()
        by_webhook: dict[str, list[float]] = {}
        for post in posts:
            by_webhook.setdefault(post.path, []).append(post.arrived)
        busiest = max((max_per_second(times) for times in by_webhook.values()), default=0)
        gaps = [gap for times in by_webhook.values() if (gap := min_gap(times)) is not None]
        rates = [
            (len(times) - 1) / (max(times) - min(times))
            for times in by_webhook.values()
            if len(times) > 1
        ]
        print(
            f"  first run: {summary['messages']} messages sent ({len(posts)} requests, "
            f"{summary['sent']} alerts, {summary['failed']} failed) in {elapsed:.2f} s"
        )
        print(f"  max requests per webhook in any 1 s window: {busiest}")
        print(
            "  smallest gap between requests to one webhook: "
            + (f"{min(gaps):.3f} s" if gaps else "n/a (one request per webhook)")
        )
        print(
            "  mean rate per webhook (requests after the first / span): "
            + (f"{max(rates):.2f}/s at most" if rates else "n/a")
        )
        again, elapsed = run(org, path, args.max_chars)
        print(
            f"  second run: {again.summary()['messages']} messages, "
            f"{again.summary()['suppressed']} suppressed in {elapsed:.2f} s"
        )
        if summary["failed"] or busiest > 1 or again.summary()["messages"]:
            raise SystemExit("FAILED: alerts lost, a webhook over 1 request/s, or a repeat")


if __name__ == "__main__":
    main()

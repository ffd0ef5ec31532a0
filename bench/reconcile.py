#!/usr/bin/env python3
"""Time bucketmaker, bucketmapper and taskmaker on a fresh influxd: first run and no-op run.

    python bench/reconcile.py --apps 1000

Builds a synthetic Phalanx repository with N applications over a few environments, starts a
throwaway influxd (scripts/provision-influxd, or INFLUXD_BIN), and prints wall time and HTTP
request counts per job and run. taskmaker installs all four checks, so 1000 applications make
4000 tasks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rubin_monitoring.models.changes import ReconcileOptions, Report
from rubin_monitoring.models.checks import CHECK_NAMES, CheckSettings
from rubin_monitoring.services.buckets import BucketMaker
from rubin_monitoring.services.dbrps import BucketMapper
from rubin_monitoring.services.inventory import read_inventory
from rubin_monitoring.services.reconcile import reconcile
from rubin_monitoring.services.tasks import TaskMaker, desired_tasks
from rubin_monitoring.storage.http import InfluxHTTP
from rubin_monitoring.storage.influxdb import InfluxDBStore
from rubin_monitoring.testing.influxd import influx_server
from rubin_monitoring.testing.phalanx import PhalanxRepo

CONCURRENCY = 8
OPTIONS = ReconcileOptions(concurrency=CONCURRENCY)


def synthetic_repo(path: Path, apps: int, environments: int = 4) -> PhalanxRepo:
    repo = PhalanxRepo(path)
    names = [f"app-{i:05d}" for i in range(apps)]
    defaults = {name: i % 2 == 0 for i, name in enumerate(names)}
    envs = {
        f"env{e}": {"applications": {name: True for name in names[1::2][e::environments]}}
        for e in range(environments)
    }
    repo.set_apps(defaults, envs)
    return repo


def measure(
    label: str, url: str, token: str, org: str, job: Callable[[InfluxDBStore], Report]
) -> tuple[float, int]:
    with InfluxHTTP(url, token, max_connections=CONCURRENCY + 2) as http:
        started = time.perf_counter()
        report = job(InfluxDBStore(http, org))
        elapsed = time.perf_counter() - started
        summary = report.summary()
        changed = sum(summary[a] for a in ("create", "update", "delete", "recreate"))
        print(
            f"  {label:24} {elapsed:7.2f} s {http.request_count:6d} requests "
            f"{changed:6d} changes {summary['failed']:3d} failed"
        )
        if summary["failed"]:
            raise SystemExit(f"{label}: {summary['failed']} changes failed")
        return elapsed, http.request_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, influx_server() as server:
        repo = synthetic_repo(Path(tmp) / "phalanx", args.apps)
        inventory = read_inventory(repo.path)
        print(
            f"apps={len(inventory.applications)} environments={len(inventory.environments)} "
            f"influxd={server.source}"
        )

        def make(store: InfluxDBStore) -> Report:
            return reconcile(BucketMaker(store, inventory, 7 * 86400), OPTIONS)

        def mapper(store: InfluxDBStore) -> Report:
            return reconcile(BucketMapper(store), OPTIONS)

        def tasks(store: InfluxDBStore) -> Report:
            desired = desired_tasks(inventory.buckets, CheckSettings(checks=CHECK_NAMES))
            return reconcile(TaskMaker(store, desired), OPTIONS)

        totals: dict[str, list[float]] = {}
        for run in ("first", "no-op"):
            print(f"{run} run:")
            for name, job in (("bucketmaker", make), ("bucketmapper", mapper)):
                seconds, requests = measure(f"{name}", server.url, server.token, server.org, job)
                total = totals.setdefault(run, [0.0, 0])
                total[0] += seconds
                total[1] += requests
            print(
                f"  {'both bucket jobs':24} {totals[run][0]:7.2f} s "
                f"{int(totals[run][1]):6d} requests"
            )
            measure(
                f"taskmaker ({len(CHECK_NAMES)} checks)",
                server.url,
                server.token,
                server.org,
                tasks,
            )


if __name__ == "__main__":
    main()

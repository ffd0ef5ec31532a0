"""scripts/demo, the README's first command, run as a newcomer would run it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_the_slack_message_for_the_unhealthy_container() -> None:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("INFLUX")}
    environ["INFLUXD_BIN"] = os.environ.get("INFLUXD_BIN", "")
    if not environ["INFLUXD_BIN"]:
        del environ["INFLUXD_BIN"]
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        check=False,
    )
    stop = re.search(r"^Stop it with: (kill \d+ && rm -rf \S+)$", done.stdout, re.MULTILINE)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        message = [line for line in done.stdout.splitlines() if "*WARNING*" in line]
        assert len(message) == 1, done.stdout
        for word in ("`idfdev`", "nublado-hub-6f7c9d-x2b4q", "Container hub", "restarted 3"):
            assert word in message[0]
        assert "1 planned, 0 sent" in done.stdout
        # 6 buckets x 4 application checks, argocd_app over Argo CD's bucket, the fleet's
        # cert_expiry, and silent for each of the 3 environments
        assert "29 create" in done.stdout
    finally:
        assert stop is not None, done.stdout[-2000:]
        subprocess.run(stop.group(1), shell=True, check=True)

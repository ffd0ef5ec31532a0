"""The probe configuration, loaded by the real Telegraf, probing a local HTTPS site whose
self-signed certificate expires in days and a closed port; then site_down and tls_expiry run on
what it wrote."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once

from rubin_monitoring.models.checks import PROBES_BUCKET, CheckSettings
from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.services.checks import render_fleet_check
from rubin_monitoring.services.probes import probe_config, probe_config_toml
from rubin_monitoring.testing.flux import (
    create_bucket,
    create_task,
    query_alerts,
    query_rows,
    run_task_and_wait,
)
from rubin_monitoring.testing.influxd import free_port

pytestmark = pytest.mark.integration


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def https_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server (``127.0.0.1:PORT``) whose self-signed certificate expires in 5
    days; yields its address and the certificate (to trust it)."""
    cert, key = tmp_path / "site.pem", tmp_path / "site.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "5",
            "-subj",
            "/CN=probe.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_probe_config_drives_site_down_and_tls_expiry(
    telegraf_bin: Path, org: OrgUnderTest, https_site: tuple[str, Path]
) -> None:
    site, ca = https_site
    closed = f"127.0.0.1:{free_port()}"
    inventory = Inventory(
        (
            Environment("up", site, "values-up.yaml", ("mobu",)),
            Environment("down", closed, "values-down.yaml", ("mobu",)),
            Environment("nosite", None, "values-nosite.yaml", ("mobu",)),
        )
    )
    config = probe_config(
        inventory, influxdb_url=org.url, organization=org.name, timeout="3s", tls_ca=str(ca)
    )
    text = probe_config_toml(config)
    assert org.token not in text and "${INFLUX_TOKEN}" in text
    assert tomllib.loads(text) == config  # what Telegraf reads is exactly the mapping
    assert [probe["tags"]["cluster"] for probe in config["inputs"]["http_response"]] == [
        "up",
        "down",
    ]
    create_bucket(org, PROBES_BUCKET)
    create_bucket(org, "multiapp_")

    done = run_telegraf_once(text, {"INFLUX_TOKEN": org.token})
    # --once exits 1 when an input errs: the only error is the closed port's certificate.
    errors = [line for line in done.stderr.splitlines() if " E! [inputs." in line]
    assert len(errors) == 1 and f"https://{closed}" in errors[0], done.stderr
    assert done.returncode == 1
    rows: list[dict[str, str]] = []
    deadline = time.monotonic() + 10
    while len({r["_measurement"] for r in rows}) < 2 and time.monotonic() < deadline:
        rows = query_rows(org, f'from(bucket: "{PROBES_BUCKET}") |> range(start: -1h)')
        time.sleep(0.2)
    probed = {(r["_measurement"], r["cluster"]) for r in rows}
    assert {("http_response", "up"), ("http_response", "down"), ("x509_cert", "up")} <= probed

    # A forced run's now() is the current whole second: let the probes' points fall before it.
    time.sleep(1.5)
    findings = {}
    for check in ("site_down", "tls_expiry"):
        flux = render_fleet_check(check, task_name=check, offset="0s", settings=CheckSettings())
        run = run_task_and_wait(org, create_task(org, flux))
        findings[check] = query_alerts(org, at=run.scheduled_for, check=check)

    (down,) = findings["site_down"]
    assert down.cluster == "down"
    assert down.message == (
        f"Site https://{closed}/ of cluster down does not answer successfully: connection_failed."
    )
    (expiring,) = findings["tls_expiry"]
    assert expiring.cluster == "up"
    assert expiring.message.startswith(f"The certificate probe.test of https://{site} ")
    assert expiring.message.endswith("expires in 4 days.")  # 5 days less the seconds since

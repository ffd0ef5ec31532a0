"""Every job runs on a read-only root filesystem with only /tmp writable, as the chart's
containers do (``readOnlyRootFilesystem: true``, an emptyDir on /tmp).

Each command runs in a private mount namespace (``unshare --mount --propagation private``, which
needs root, as CI has) where ``/`` is bind-mounted onto itself and remounted read-only, and
``/tmp`` is a fresh, empty tmpfs; ``HOME=/tmp``; the job runs as the chart's user (1000), without
capabilities and with ``no_new_privs``. The configuration repository is read-only too,
reached as a ``file://`` URL, so the jobs fetch it into /tmp as they fetch GitHub in a pod. If the
namespace cannot be set up the test fails: it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from support.helm import CHART
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.flux import line_protocol, query_alerts, write_lines
from rubin_monitoring.testing.phalanx import PhalanxRepo
from rubin_monitoring.testing.slack_server import slack_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JOBS = yaml.safe_load((CHART / "values.yaml").read_text())["jobs"]
# The default checks of each application.
CHECKS = ("restarts", "not_running", "cpu", "oom_killed")
SOURCE = "/tmp/source"  # where the configuration repository appears, read-only
USER = 1000  # the chart's runAsUser and runAsGroup (and the Dockerfile's USER)
SETUP_FAILED = 97  # the sandbox script's exit code when the namespace is not what it should be

# Run by `unshare --mount --propagation private sh -c SANDBOX sh COMMAND...`. The source
# repository ($SOURCE_DIR) lies under the /tmp the tmpfs hides: it is opened before, and
# bind-mounted from its descriptor after (`--no-canonicalize`: from the descriptor, not its path).
# So is this checkout ($PROBE_DIR, with its .venv) when it lies under /tmp, as a CI clone may:
# it comes back, read-only, at its own path.
SANDBOX = r"""
fail() { echo "sandbox: $*" >&2; exit 97; }
mount --bind / / || fail "cannot bind-mount / onto itself"
mount -o remount,bind,ro / || fail "cannot remount / read-only"
exec 3<"$SOURCE_DIR" || fail "cannot open $SOURCE_DIR"
exec 4<"$PROBE_DIR" || fail "cannot open $PROBE_DIR"
mount -t tmpfs -o mode=1777,size=512m rubin-tmp /tmp || fail "cannot mount a tmpfs on /tmp"
case "$PROBE_DIR" in
    /tmp/*) mkdir -p "$PROBE_DIR" && mount --no-canonicalize --bind /proc/self/fd/4 "$PROBE_DIR" \
        && mount -o remount,bind,ro "$PROBE_DIR" || fail "cannot mount the checkout" ;;
esac
mkdir /tmp/source && mount --no-canonicalize --bind /proc/self/fd/3 /tmp/source \
    && mount -o remount,bind,ro /tmp/source || fail "cannot mount the source repository"
for probe in /rubin-probe "$PROBE_DIR/rubin-probe" /tmp/source/rubin-probe; do
    if touch "$probe" 2>/dev/null; then rm -f "$probe"; fail "$probe is writable (as root)"; fi
done
touch /tmp/rubin-probe && rm /tmp/rubin-probe || fail "/tmp is not writable"
# The pod's user: not root, no capabilities, no privilege escalation.
exec setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
"""


def unshare() -> str:
    found = shutil.which("unshare")
    if found is None or os.geteuid() != 0:
        pytest.fail(
            "the read-only root test needs root and util-linux's unshare (CI runs as root)",
            pytrace=False,
        )
    return found


def run_read_only(
    command: Sequence[str], settings: Mapping[str, str], source: Path
) -> subprocess.CompletedProcess[str]:
    """``command`` (a console script of this environment) in the read-only sandbox."""
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PROBE_DIR": str(ROOT),
        "SOURCE_DIR": str(source),
        "RUN_AS": str(USER),
        **settings,
    }
    sandbox = [unshare(), "--mount", "--propagation", "private", "sh", "-c", SANDBOX, "sh"]
    done = subprocess.run(
        [*sandbox, str(bin_dir / command[0]), *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if done.returncode == SETUP_FAILED or "unshare:" in done.stderr:
        pytest.fail(f"cannot set up the read-only sandbox: {done.stderr}", pytrace=False)
    return done


@pytest.fixture
def source(phalanx: PhalanxRepo) -> Iterator[Path]:
    phalanx.set_apps(
        {"argocd": True, "nublado": False, "mobu": True},
        {"idfdev": {"applications": {"nublado": True}}},
    )
    # The jobs' user owns it, as a server's repository is owned by someone (git refuses to read
    # another user's repository: "dubious ownership").
    for directory, _, files in os.walk(phalanx.path):
        for path in (directory, *(os.path.join(directory, name) for name in files)):
            os.chown(path, USER, USER, follow_symlinks=False)
    yield phalanx.path


def settings(org: OrgUnderTest, **extra: str) -> dict[str, str]:
    return org.env(PHALANX_REPO=f"file://{SOURCE}", PHALANX_REF="main", LOG_FORMAT="json", **extra)


def check(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode == 0, f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def test_the_sandbox_runs_as_the_charts_user() -> None:
    template = (CHART / "templates" / "cronjobs.yaml").read_text()
    assert f"runAsUser: {USER}" in template and f"runAsGroup: {USER}" in template
    assert f"USER {USER}:{USER}" in (ROOT / "Dockerfile").read_text()


def test_the_sandbox_refuses_writes_outside_tmp(source: Path) -> None:
    writable = ("/", str(ROOT), str(Path(sys.prefix)), os.path.expanduser("~root"))
    script = "; ".join(f"touch {path}/rubin-probe 2>/dev/null && echo {path}" for path in writable)
    done = run_read_only(["python", "-c", f"import os; os.system({script!r})"], {}, source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", f"writable outside /tmp: {done.stdout}"
    assert not any(Path(path, "rubin-probe").exists() for path in writable)
    # A job asked to write outside /tmp is refused before it does anything.
    fake = {"INFLUXDB_URL": "http://127.0.0.1:9", "INFLUXDB_TOKEN": "t", "INFLUXDB_ORG": "o"}
    done = run_read_only(["tokenmaker", "--secret-manifest", "/var/tokens.yaml"], fake, source)
    assert done.returncode == 2, done.stderr
    assert "--secret-manifest /var/tokens.yaml is not writable" in done.stderr


def test_every_chart_job_runs_on_a_read_only_root(org: OrgUnderTest, source: Path) -> None:
    """The chart's jobs in their order, each first with --dry-run, then for real; tokenmaker
    (one-off, by hand) writes its Secret manifest into /tmp. Before the notifier runs, one
    finding waits in multiapp_: it reaches the Slack stand-in and is recorded in alerted_."""
    order = [
        "bucketmaker",
        "bucketmapper",
        "tokenmaker",
        "taskmaker",
        "taskhealth",
        "dashboardmaker",
        "notifier",
    ]
    assert set(order) - {"tokenmaker"} == set(JOBS), "a job of the chart is not run here"
    with slack_server() as slack:
        for name in order:
            command = JOBS[name]["command"] if name in JOBS else ["tokenmaker"]
            if name == "tokenmaker":
                command = [*command, "--secret-manifest", "/tmp/tokens.yaml"]
            if name == "notifier":
                write_lines(org, "multiapp_", [finding()])
            env = settings(org, SLACK_WEBHOOK_URL=slack.url())
            if "--health" not in command:
                dry = ["rubin-monitoring", *command, "--dry-run"]
                check(run_read_only(dry, env, source), " ".join(dry))
            check(run_read_only(command, env, source), " ".join(command))
        (post,) = slack.delivered()
        assert "mobu-0" in post.text
    with org.server.client() as client:
        buckets = client.get("/api/v2/buckets", params={"orgID": org.id, "limit": 100})
        names = {bucket["name"] for bucket in buckets.json()["buckets"]}
        assert {"argocd", "mobu", "nublado", "multiapp_", "alerted_"} <= names
        tasks = client.get("/api/v2/tasks", params={"orgID": org.id, "limit": 500}).json()
        # 3 applications x the application checks, argocd_app over Argo CD's bucket, the fleet's
        # cert_expiry, and silent for the repository's environment
        task_names = sorted(task["name"] for task in tasks["tasks"])
        assert len(task_names) == 3 * len(CHECKS) + 3, task_names
        assert {"argocd argocd_app", "certificates cert_expiry"} <= set(task_names), task_names
        assert task_names.count("idfdev silent") == 1, task_names
    (record,) = query_alerts(org, bucket="alerted_")
    assert record


def finding() -> str:
    return line_protocol(
        "alert",
        {
            "check": "restarts",
            "application": "mobu",
            "cluster": "idfdev",
            "severity": "warning",
            "dedup_key": "restarts/idfdev/mobu/mobu/mobu-0/mobu",
        },
        {"message": "idfdev mobu: container mobu of pod mobu-0 restarted", "value": 1.0},
        datetime.now(UTC) - timedelta(seconds=30),
    )

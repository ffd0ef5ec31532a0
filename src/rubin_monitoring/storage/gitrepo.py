"""Check out the configuration repository: a shallow clone of one ref, or a local directory.

Git runs as a child process in its own process group, under one deadline for the whole
checkout (``timeout_seconds``): when it expires the whole group (git and its transport
helpers) is killed and the checkout fails with an :class:`InventoryError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..exceptions import InventoryError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0

_USERINFO = re.compile(r"(?<=://)[^/@]+@")


def redact_url(url: str) -> str:
    """The URL without credentials, safe to log."""
    return _USERINFO.sub("***@", url)


def _git_failure(stderr: str, status: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    return redact_url(meaningful[-1] if meaningful else f"git exited {status}")


class _GitFailed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Git:
    """Runs git commands under one deadline; a command still running at the deadline is killed."""

    def __init__(self, env: Mapping[str, str], timeout_seconds: float, shown: str) -> None:
        self.env = dict(env)
        self.timeout_seconds = timeout_seconds
        self.deadline = time.monotonic() + timeout_seconds
        self.shown = shown

    def _timed_out(self) -> InventoryError:
        return InventoryError(
            f"PHALANX_REPO: fetching {self.shown} timed out after {self.timeout_seconds:g} s"
        )

    def __call__(self, *args: str, cwd: Path) -> str:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        try:
            process = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as error:
            raise InventoryError(f"PHALANX_REPO: cannot run git: {error.strerror}") from None
        try:
            stdout, stderr = process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise self._timed_out() from None
        finally:
            if process.poll() is None:
                _kill(process)
        if process.returncode != 0:
            raise _GitFailed(_git_failure(stderr, process.returncode))
        return stdout


def _kill(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=5)
    process.kill()
    process.wait()


def _environment() -> dict[str, str]:
    # Variables that would point git at another repository than the one it is run in.
    ignored = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")
    env = {key: value for key, value in os.environ.items() if key not in ignored}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
    return env


@contextlib.contextmanager
def checkout(
    repo: str, ref: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
) -> Iterator[Path]:
    """Yield a directory holding ``ref`` of ``repo``; a local directory is used as it is.

    Fetching gives up after ``timeout_seconds`` with an :class:`InventoryError`.
    """
    local = Path(repo).expanduser()
    if "://" not in repo and local.is_dir():
        log.info("reading configuration from local directory %s", local)
        yield local.resolve()
        return
    shown = redact_url(repo)
    git = _Git(_environment(), timeout_seconds, shown)
    with tempfile.TemporaryDirectory(prefix="rubin-monitoring-") as tmp:
        work = Path(tmp)
        log.info("fetching %s at %s", shown, ref)
        try:
            git("init", "--quiet", "--template=", ".", cwd=work)
            git("fetch", "--quiet", "--no-tags", "--depth=1", repo, ref, cwd=work)
            git("checkout", "--quiet", "FETCH_HEAD", cwd=work)
        except _GitFailed as failure:
            detail = failure.detail
            if "couldn't find remote ref" in detail or "not our ref" in detail:
                raise InventoryError(f"PHALANX_REF: ref {ref!r} not found in {shown}") from None
            raise InventoryError(f"PHALANX_REPO: cannot fetch {shown}: {detail}") from None
        yield work

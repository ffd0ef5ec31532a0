"""Check out the configuration repository: a shallow clone of one ref, or a local directory."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import git

from ..exceptions import InventoryError

log = logging.getLogger(__name__)

_USERINFO = re.compile(r"(?<=://)[^/@]+@")


def redact_url(url: str) -> str:
    """The URL without credentials, safe to log."""
    return _USERINFO.sub("***@", url)


def _git_failure(error: git.GitCommandError) -> str:
    lines = [line.strip() for line in str(error.stderr or "").splitlines() if line.strip()]
    lines = [line.removeprefix("stderr: ").strip("' ") for line in lines]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    return redact_url(meaningful[-1] if meaningful else f"git exited {error.status}")


@contextlib.contextmanager
def checkout(repo: str, ref: str) -> Iterator[Path]:
    """Yield a directory holding ``ref`` of ``repo``; a local directory is used as it is."""
    local = Path(repo).expanduser()
    if "://" not in repo and local.is_dir():
        log.info("reading configuration from local directory %s", local)
        yield local.resolve()
        return
    shown = redact_url(repo)
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "PATH": os.environ.get("PATH", "")}
    with tempfile.TemporaryDirectory(prefix="rubin-monitoring-") as tmp:
        log.info("fetching %s at %s", shown, ref)
        try:
            clone = git.Repo.init(tmp)
            clone.create_remote("origin", repo)
            with clone.git.custom_environment(**env):
                clone.git.fetch("--depth=1", "origin", ref)
            clone.git.checkout("--quiet", "FETCH_HEAD")
        except git.GitCommandError as error:
            detail = _git_failure(error)
            if "couldn't find remote ref" in detail or "not our ref" in detail:
                raise InventoryError(f"PHALANX_REF: ref {ref!r} not found in {shown}") from None
            raise InventoryError(f"PHALANX_REPO: cannot fetch {shown}: {detail}") from None
        yield Path(tmp)

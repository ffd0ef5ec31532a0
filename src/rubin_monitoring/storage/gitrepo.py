"""Check out the configuration repository: a shallow clone of one ref, or a local directory.

Git runs as a child process in its own process group, under one deadline for the whole
checkout (``timeout_seconds``): when it expires the whole group (git and its transport
helpers) is killed and the checkout fails with an :class:`InventoryError`.

Credentials in an http(s) URL (``https://user:token@host/repo.git``, percent-encoded as URLs
require) never reach a command line, which any user can read in the process list: git is given
the URL without them, and they reach it through the environment of git's own processes
(readable only by their user and root). ``RUBIN_MONITORING_GIT_USERNAME`` and
``RUBIN_MONITORING_GIT_PASSWORD`` hold them, and a credential helper set in
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>`` (scoped to the URL's scheme
and host, replacing any configured helper, so nothing stores them) prints them when the server
asks (git sends them after the server's 401). A password in any other URL (``ssh://``) is
refused. Error messages show the URL with ``***`` for its credentials.
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
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import InventoryError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0

_USERINFO = re.compile(r"(?<=://)[^/?#]*@")
# What git accepts in a branch or tag name (roughly; git checks the rest), or a commit id:
# never an option (a leading "-"), a refspec (":"), a revision expression ("~", "^", "@{").
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*@\{)[^\x00-\x20\x7f~^:?*\[\\]+$")
_USERNAME_VARIABLE = "RUBIN_MONITORING_GIT_USERNAME"
_PASSWORD_VARIABLE = "RUBIN_MONITORING_GIT_PASSWORD"
# Run by git as `sh -c '<this> "$@"' '<this>' get|store|erase`, the request on its stdin:
# the values come from the environment, so the command line holds no secret.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; cat >/dev/null; '
    "printf 'username=%s\\npassword=%s\\n' "
    f'"${_USERNAME_VARIABLE}" "${_PASSWORD_VARIABLE}"; }}; f'
)


def redact_url(url: str) -> str:
    """The URL without credentials, safe to log."""
    return _USERINFO.sub("***@", url)


@dataclass(frozen=True)
class _Remote:
    """A repository URL split into what git may see and the credentials it must not."""

    url: str
    username: str | None = None
    password: str | None = None

    @property
    def secrets(self) -> list[str]:
        return [value for value in (self.username, self.password) if value and len(value) >= 4]


def _split_credentials(repo: str) -> _Remote:
    parts = urllib.parse.urlsplit(repo)
    if "@" not in parts.netloc:
        return _Remote(repo)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if parts.password is not None:
            raise InventoryError(
                "PHALANX_REPO: a password in the URL is only supported for http(s) URLs "
                f"({redact_url(repo)})"
            )
        return _Remote(repo)  # an ssh:// user name: not a secret, and ssh needs it
    host = parts.netloc.rpartition("@")[2]
    username = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    if any(char in value for value in (username, password) for char in "\r\n\0"):
        raise InventoryError(
            f"PHALANX_REPO: the credentials in {redact_url(repo)} contain a line break or NUL"
        )
    url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return _Remote(url, username, password)


def _credential_environment(remote: _Remote, env: dict[str, str]) -> None:
    """Add git configuration (by environment variables) that answers with the credentials."""
    if remote.username is None or remote.password is None:
        return
    parts = urllib.parse.urlsplit(remote.url)
    scope = f"{parts.scheme}://{parts.netloc}/"
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    settings = [("credential.helper", ""), (f"credential.{scope}.helper", _CREDENTIAL_HELPER)]
    for index, (key, value) in enumerate(settings, start=count):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(settings))
    env[_USERNAME_VARIABLE] = remote.username
    env[_PASSWORD_VARIABLE] = remote.password


def _git_failure(stderr: str, status: int, secrets: list[str]) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    detail = redact_url(meaningful[-1] if meaningful else f"git exited {status}")
    for secret in secrets:
        detail = detail.replace(secret, "***")
    return detail


class _GitFailed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Git:
    """Runs git commands under one deadline; a command still running at the deadline is killed."""

    def __init__(
        self, env: Mapping[str, str], timeout_seconds: float, shown: str, secrets: list[str]
    ) -> None:
        self.env = dict(env)
        self.secrets = secrets
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
            raise _GitFailed(_git_failure(stderr, process.returncode, self.secrets))
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


def _is_repository(directory: Path) -> bool:
    """Whether ``directory`` is the top of a Git work tree, or a bare repository."""
    bare = (directory / "HEAD").is_file() and (directory / "objects").is_dir()
    return bare or (directory / ".git").exists()


@contextlib.contextmanager
def _fetch(remote: _Remote, shown: str, ref: str | None, timeout_seconds: float) -> Iterator[Path]:
    """A temporary directory holding ``ref`` (default: HEAD) of ``remote``, fetched shallow."""
    env = _environment()
    _credential_environment(remote, env)
    git = _Git(env, timeout_seconds, shown, remote.secrets)
    with tempfile.TemporaryDirectory(prefix="rubin-monitoring-") as tmp:
        work = Path(tmp)
        log.info("fetching %s at %s", shown, ref or "its default branch")
        try:
            git("init", "--quiet", "--template=", ".", cwd=work)
            fetch = ("fetch", "--quiet", "--no-tags", "--depth=1", "--")
            git(*fetch, remote.url, ref or "HEAD", cwd=work)
            git("checkout", "--quiet", "FETCH_HEAD", cwd=work)
        except _GitFailed as failure:
            detail = failure.detail
            if "couldn't find remote ref" in detail or "not our ref" in detail:
                if ref is None:
                    raise InventoryError(
                        f"PHALANX_REPO: {shown} has no default branch (HEAD); set PHALANX_REF"
                    ) from None
                raise InventoryError(f"PHALANX_REF: ref {ref!r} not found in {shown}") from None
            raise InventoryError(f"PHALANX_REPO: cannot fetch {shown}: {detail}") from None
        yield work


@contextlib.contextmanager
def checkout(
    repo: str, ref: str | None = None, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
) -> Iterator[Path]:
    """Yield a directory holding the configuration repository ``repo`` at ``ref``.

    ``repo`` is a Git URL or a local directory:

    - a URL: ``ref`` (a branch, a tag or a full commit id; ``None``: the repository's default
      branch, its HEAD) is fetched shallow into a temporary directory;
    - a local directory, ``ref`` ``None``: the directory as it is, uncommitted changes included;
    - a local directory, ``ref`` given: the directory must be a Git repository (its top
      directory, or a bare repository), and ``ref`` is fetched from it as from a URL: only
      committed content is read. A directory that is not a repository is refused.

    Fetching gives up after ``timeout_seconds`` with an :class:`InventoryError`.
    """
    if ref is not None and not _REF.match(ref):
        shown_ref = repr(ref) if len(ref) <= 60 else repr(ref[:56]) + "..."
        raise InventoryError(f"PHALANX_REF: {shown_ref} is not a branch, tag or commit name")
    local = Path(repo).expanduser()
    if "://" not in repo and local.is_dir():
        if ref is None:
            log.info("reading configuration from local directory %s", local)
            yield local.resolve()
            return
        if not _is_repository(local):
            raise InventoryError(
                f"PHALANX_REF: {ref!r} given, but {local} is not a Git repository (or not its "
                "top directory); unset PHALANX_REF to read the directory as it is"
            )
        with _fetch(_Remote(local.resolve().as_uri()), str(local), ref, timeout_seconds) as work:
            yield work
        return
    with _fetch(_split_credentials(repo), redact_url(repo), ref, timeout_seconds) as work:
        yield work

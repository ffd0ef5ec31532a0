from __future__ import annotations

import base64
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rubin_monitoring.exceptions import InventoryError
from rubin_monitoring.storage.gitrepo import checkout, redact_url
from rubin_monitoring.testing.phalanx import PhalanxRepo


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.mark.timeout(30)
def test_a_server_that_never_answers_is_given_up_on(silent_server: int) -> None:
    url = f"http://user:s3cret@127.0.0.1:{silent_server}/repo.git"
    started = time.monotonic()
    with pytest.raises(InventoryError) as error, checkout(url, "main", timeout_seconds=1):
        pass
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message == (
        f"PHALANX_REPO: fetching http://***@127.0.0.1:{silent_server}/repo.git timed out after 1 s"
    )


def test_a_branch_or_a_commit_is_fetched(phalanx: PhalanxRepo) -> None:
    first = phalanx.set_apps({"argocd": True}, {"dev": {}})
    phalanx.set_apps({"argocd": True, "nublado": True}, {"dev": {}})
    with checkout(phalanx.url, "main") as root:
        assert "nublado" in (root / "environments/values.yaml").read_text()
    with checkout(phalanx.url, first) as root:
        assert "nublado" not in (root / "environments/values.yaml").read_text()


def test_a_missing_ref_is_one_line(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    with pytest.raises(InventoryError) as error, checkout(phalanx.url, "nope"):
        pass
    assert str(error.value) == f"PHALANX_REF: ref 'nope' not found in {phalanx.url}"


def command_lines_containing(secrets: list[str]) -> list[str]:
    """Command lines of running processes (what ``ps`` shows any user) with one of ``secrets``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if any(secret.encode() in cmdline for secret in secrets):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


class AuthServer(http.server.ThreadingHTTPServer):
    """Asks for Basic credentials, records those it gets and what ``ps`` showed meanwhile."""

    secrets: list[str]
    authorizations: list[str]
    leaks: list[str]


class AuthHandler(http.server.BaseHTTPRequestHandler):
    server: AuthServer

    def do_GET(self) -> None:
        self.server.leaks.extend(command_lines_containing(self.server.secrets))
        authorization = self.headers.get("Authorization")
        if authorization is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        else:
            self.server.authorizations.append(authorization)
            self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    server = AuthServer(("127.0.0.1", 0), AuthHandler)
    server.secrets = []
    server.authorizations = []
    server.leaks = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("userinfo", "username", "password", "secret"),
    [
        ("user:s3cret-pw", "user", "s3cret-pw", "s3cret-pw"),
        ("user:p%40ss%3Aword", "user", "p@ss:word", "p@ss:word"),
        ("ghp_t0kenAsUsername", "ghp_t0kenAsUsername", "", "ghp_t0kenAsUsername"),
    ],
)
def test_credentials_never_reach_a_command_line_or_an_error(
    auth_server: AuthServer, userinfo: str, username: str, password: str, secret: str
) -> None:
    auth_server.secrets = [secret, userinfo.rpartition(":")[2]]
    port = auth_server.server_address[1]
    url = f"http://{userinfo}@127.0.0.1:{port}/repo.git"
    with pytest.raises(InventoryError) as error, checkout(url, "main", timeout_seconds=20):
        pass
    expected = base64.b64encode(f"{username}:{password}".encode()).decode()
    assert auth_server.authorizations == [f"Basic {expected}"]
    assert auth_server.leaks == []
    message = str(error.value)
    assert message.startswith(f"PHALANX_REPO: cannot fetch http://***@127.0.0.1:{port}/repo.git: ")
    assert "403" in message
    assert secret not in message and userinfo not in message


def test_a_password_is_refused_where_git_cannot_take_it_from_a_helper() -> None:
    with pytest.raises(InventoryError) as error, checkout("ssh://git:hunter22@host/x.git", "main"):
        pass
    assert str(error.value) == (
        "PHALANX_REPO: a password in the URL is only supported for http(s) URLs "
        "(ssh://***@host/x.git)"
    )


def test_redaction_covers_an_unencoded_at_sign_in_the_password() -> None:
    assert redact_url("https://u:p@ss@host/x@y.git") == "https://***@host/x@y.git"
    assert redact_url("https://host/x@y.git") == "https://host/x@y.git"


def test_a_local_directory_without_a_ref_is_read_as_it_is(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    phalanx.write("environments/values.yaml", "applications:\n  uncommitted: true\n")
    with checkout(str(phalanx.path), None) as root:
        assert root == phalanx.path.resolve()
        assert "uncommitted" in (root / "environments/values.yaml").read_text()


def test_a_local_repository_with_a_ref_is_read_at_that_ref(phalanx: PhalanxRepo) -> None:
    first = phalanx.set_apps({"argocd": True}, {"dev": {}})
    phalanx.repo.git.checkout("-b", "next")
    phalanx.set_apps({"argocd": True, "nublado": True}, {"dev": {}})
    phalanx.write("environments/values.yaml", "applications:\n  uncommitted: true\n")
    for ref, expected in [("next", "nublado"), ("main", "argocd"), (first, "argocd")]:
        with checkout(str(phalanx.path), ref) as root:
            assert root != phalanx.path.resolve()
            text = (root / "environments/values.yaml").read_text()
            assert expected in text and "uncommitted" not in text
            if ref != "next":
                assert "nublado" not in text


def test_a_missing_ref_in_a_local_repository(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    with pytest.raises(InventoryError) as error, checkout(str(phalanx.path), "nope"):
        pass
    assert str(error.value) == f"PHALANX_REF: ref 'nope' not found in {phalanx.path}"


def test_a_ref_for_a_directory_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    with checkout(str(tmp_path), None) as root:
        assert root == tmp_path.resolve()
    with pytest.raises(InventoryError) as error, checkout(str(tmp_path), "main"):
        pass
    assert str(error.value) == (
        f"PHALANX_REF: 'main' given, but {tmp_path} is not a Git repository (or not its top "
        "directory); unset PHALANX_REF to read the directory as it is"
    )


def test_no_ref_means_the_default_branch_of_a_url(phalanx: PhalanxRepo) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    phalanx.repo.git.checkout("-b", "next")
    phalanx.set_apps({"nublado": True}, {"dev": {}})
    phalanx.repo.git.checkout("main")
    with checkout(phalanx.url, None) as root:
        assert "argocd" in (root / "environments/values.yaml").read_text()


def test_a_ref_is_never_taken_for_an_option(phalanx: PhalanxRepo, tmp_path: Path) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    marker = tmp_path / "ran"
    with (
        pytest.raises(InventoryError, match="PHALANX_REF"),
        checkout(phalanx.url, f"--upload-pack=touch {marker}; git-upload-pack"),
    ):
        pass
    assert not marker.exists()

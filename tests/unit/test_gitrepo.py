from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support.phalanx import PhalanxRepo

from rubin_monitoring.exceptions import InventoryError
from rubin_monitoring.storage.gitrepo import checkout


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

"""Start a real Kubernetes API server (no nodes, no controllers) for tests.

``scripts/provision-kube`` provides the binaries: kube-apiserver, and etcd (or kine, which speaks
etcd's protocol). Typical use::

    from support.kubeapi import kube_api_server

    with kube_api_server() as kube:
        kube.client.post("/api/v1/namespaces", json={...}).raise_for_status()

The server trusts one static bearer token (``kube.token``, user ``rubin-admin`` in group
``system:masters``) and authorizes with RBAC, so other users are bound only by the RBAC objects a
test creates. Without a controller manager nothing reconciles: no ``default`` service account
appears in a namespace, so the ``ServiceAccount`` admission plugin is off and Pods need none;
a Pod's status changes only through its ``/status`` subresource.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from support.binaries import cache_root, cached_binary, require_binary

__all__ = [
    "KINE_VERSION",
    "KUBERNETES_VERSION",
    "KubeAPI",
    "KubeUnavailable",
    "apiserver_binary",
    "kube_api_server",
    "storage_binary",
    "write_kubeconfig",
]

KUBERNETES_VERSION = "1.36.3"
KINE_VERSION = "0.17.5"
ADMIN_USER = "rubin-admin"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"


class KubeUnavailable(Exception):
    """No kube-apiserver or no etcd/kine binary: the reason says what to do."""


@dataclass(frozen=True)
class KubeAPI:
    """A running API server; ``client`` has the base URL, the admin token and the CA set."""

    url: str
    token: str
    ca_file: Path
    client: httpx.Client


def apiserver_binary() -> Path | None:
    """``$KUBE_APISERVER_BIN``, else the cached build of ``scripts/provision-kube``, else None."""
    return cached_binary("KUBE_APISERVER_BIN", f"kube-{KUBERNETES_VERSION}/kube-apiserver")


def storage_binary() -> Path | None:
    """``$ETCD_BIN``, else etcd on PATH, else the cached kine build, else None."""
    explicit = os.environ.get("ETCD_BIN")
    if explicit:
        return Path(explicit)
    etcd = shutil.which("etcd")
    if etcd is not None:
        return Path(etcd)
    kine = cache_root() / f"kine-{KINE_VERSION}" / "kine"
    return kine if kine.exists() else None


def _require(binary: Path | None, what: str) -> Path:
    hint = "run scripts/provision-kube, or set KUBE_APISERVER_BIN and ETCD_BIN"
    return require_binary(binary, what, hint, KubeUnavailable)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr}")


def _make_credentials(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 signed by it, a service-account signing key."""
    if shutil.which("openssl") is None:
        raise KubeUnavailable("openssl is needed to make the API server's certificates")
    pki.mkdir()
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=rubin-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "serving.key", "-out", "serving.csr",
        "-subj", "/CN=kube-apiserver",
        cwd=pki,
    )  # fmt: skip
    (pki / "serving.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
    )
    _openssl(
        "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "serving.ext", "-out", "serving.crt",
        cwd=pki,
    )  # fmt: skip
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key",
        cwd=pki,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _wait_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode} at start; its log:\n{_tail(log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} not listening on {port} after 60s; its log:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def _started(
    command: Sequence[str], log: Path, cwd: Path, stop_timeout: float
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        _stop(process, stop_timeout)


def _storage_command(binary: Path, data: Path, port: int) -> list[str]:
    if binary.name.startswith("kine"):
        return [
            str(binary),
            f"--listen-address=127.0.0.1:{port}",
            f"--endpoint=sqlite://{data / 'kine.db'}?_journal=WAL&cache=shared",
        ]
    peer = _free_port()
    return [
        str(binary),
        "--name=rubin-test",
        f"--data-dir={data / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--advertise-client-urls=http://127.0.0.1:{port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=rubin-test=http://127.0.0.1:{peer}",
        "--log-level=warn",
    ]


def _apiserver_command(binary: Path, data: Path, etcd_port: int, port: int) -> list[str]:
    pki = data / "pki"
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={data / 'certs'}",
        f"--tls-cert-file={pki / 'serving.crt'}",
        f"--tls-private-key-file={pki / 'serving.key'}",
        f"--token-auth-file={data / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # No controller manager makes each namespace's `default` service account.
        "--disable-admission-plugins=ServiceAccount",
        # The `kubernetes` Service's endpoints may not be a loopback address.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=0",
    ]


def _wait_ready(
    client: httpx.Client, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"kube-apiserver exited with {process.returncode} at start; its log:\n{_tail(log)}"
            )
        try:
            response = client.get("/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code}: {response.text[-500:]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.3)
    raise RuntimeError(
        f"kube-apiserver not ready after {timeout}s ({last}); its log:\n{_tail(log)}"
    )


@contextmanager
def kube_api_server(*, ready_timeout: float = 180) -> Iterator[KubeAPI]:
    """Start etcd (or kine) and kube-apiserver on free 127.0.0.1 ports; stop both at the end.

    Raises :class:`KubeUnavailable` when a binary is missing, ``RuntimeError`` (with the log)
    when a server does not start.
    """
    apiserver = _require(apiserver_binary(), "kube-apiserver")
    storage = _require(storage_binary(), "etcd (or kine)")
    data = Path(tempfile.mkdtemp(prefix="rubin-kube-"))
    try:
        _make_credentials(data / "pki")
        token = "rubin-test-admin-" + uuid.uuid4().hex
        (data / "tokens.csv").write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        etcd_port, port = _free_port(), _free_port()
        url = f"https://127.0.0.1:{port}"
        ca_file = data / "pki" / "ca.crt"
        # ExitStack unwinds in reverse: the client, the API server, and only then etcd (the API
        # server ignores SIGTERM once its storage is gone).
        with ExitStack() as stack:
            etcd_log = data / "storage.log"
            etcd = stack.enter_context(
                _started(_storage_command(storage, data, etcd_port), etcd_log, data, 20)
            )
            _wait_port(etcd_port, etcd, storage.name, etcd_log)
            api_log = data / "kube-apiserver.log"
            process = stack.enter_context(
                _started(_apiserver_command(apiserver, data, etcd_port, port), api_log, data, 20)
            )
            client = stack.enter_context(
                httpx.Client(
                    base_url=url,
                    headers={"Authorization": f"Bearer {token}"},
                    verify=ssl.create_default_context(cafile=str(ca_file)),
                    timeout=30,
                )
            )
            _wait_ready(client, process, api_log, ready_timeout)
            yield KubeAPI(url=url, token=token, ca_file=ca_file, client=client)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def write_kubeconfig(kube: KubeAPI, token_file: Path, path: Path) -> Path:
    """Write a kubeconfig at ``path`` (mode 0600) that reaches the lab API server with its CA
    and the bearer token in ``token_file`` (as a pod's in-cluster configuration would), and
    return ``path``. For programs that take a kubeconfig where a cluster gives them their
    service account (Telegraf's ``kube_config``)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {"server": kube.url, "certificate-authority": str(kube.ca_file)},
            }
        ],
        "users": [{"name": "lab", "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
        "current-context": "lab",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config))
    return path

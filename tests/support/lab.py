"""The generated Telegraf configuration pointed at the lab, and the lab's kubelet stand-in.

In a cluster, the configuration ``telegraf-config`` generates reaches Kubernetes through the
pod's in-cluster identity: the service account token and CA under
``/var/run/secrets/kubernetes.io/serviceaccount``, the API server at
``https://kubernetes.default.svc:443``, the node's kubelet at ``https://${NODE_NAME}:10250``.
:func:`lab_config` changes those connections, and only those, so the real Telegraf runs the
generated configuration against the lab::

    from support.lab import kubelet_stand_in, lab_config

    with kubelet_stand_in(token, pods) as kubelet:
        text = lab_config(generated, kube, token_file, kubeconfig, kubelet=kubelet.url,
                          proxy=proxy.url)

The kubelet stand-in answers ``/stats/summary`` with ``data/kubelet_stats_summary.json``, the
suite's one recorded kubelet response (written in the shape Telegraf v1.37.2's plugin parses,
``plugins/inputs/kubernetes/kubernetes_metrics.go``), and ``/pods`` with the pods given.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import tomli_w

from support.kubeapi import KubeAPI

__all__ = ["KUBELET_SUMMARY", "Kubelet", "kubelet_stand_in", "lab_config"]

KUBELET_SUMMARY = (
    Path(__file__).resolve().parents[1] / "integration" / "data" / ("kubelet_stats_summary.json")
)


@dataclass
class Kubelet:
    """A running stand-in: its ``url`` and the Authorization headers it was sent."""

    url: str
    authorizations: list[str] = field(default_factory=list)


@contextmanager
def kubelet_stand_in(token: str, pods: Sequence[Mapping[str, Any]]) -> Iterator[Kubelet]:
    """Serve the recorded ``/stats/summary`` and ``pods`` (Pod objects, as ``/pods`` lists
    them) on a free 127.0.0.1 port to the holder of ``token`` (others get 401)."""
    summary = KUBELET_SUMMARY.read_bytes()
    pod_list = json.dumps({"kind": "PodList", "apiVersion": "v1", "items": list(pods)}).encode()
    kubelet = Kubelet("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            kubelet.authorizations.append(self.headers.get("Authorization", ""))
            body = {"/stats/summary": summary, "/pods": pod_list}.get(self.path)
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(401)
                self.end_headers()
                return
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    kubelet.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kubelet
    finally:
        server.shutdown()
        server.server_close()


def lab_config(
    generated: str,
    kube: KubeAPI,
    token_file: Path,
    kubeconfig: Path,
    *,
    kubelet: str | None,
    proxy: str,
    agent: Mapping[str, Any] | None = None,
) -> str:
    """The generated configuration with its Kubernetes connections pointed at the lab: the API
    server's URL and CA with the ServiceAccount token in ``token_file`` (kube_inventory), the
    ``kubeconfig`` holding them (pod discovery), the kubelet stand-in at ``kubelet`` (None:
    inputs.kubernetes left out, for a node without one), and the control plane's certificate
    read at its in-cluster address through the CONNECT proxy at ``proxy`` (which maps it to
    the lab's API server) and verified with the lab's CA. ``agent`` options are merged into
    ``[agent]``. Nothing else changes."""
    config = tomllib.loads(generated)
    if agent:
        config["agent"].update(agent)
    (inventory,) = config["inputs"]["kube_inventory"]
    inventory.update(url=kube.url, bearer_token=str(token_file), tls_ca=str(kube.ca_file))
    if kubelet is None:
        del config["inputs"]["kubernetes"]
    else:
        (kubelet_input,) = config["inputs"]["kubernetes"]
        kubelet_input.update(url=kubelet, bearer_token=str(token_file))
        del kubelet_input["tls_ca"]  # the stand-in speaks plain HTTP
    for scrape in config["inputs"].get("prometheus", []):
        scrape["kube_config"] = str(kubeconfig)
    (certificate,) = config["inputs"]["x509_cert"]
    certificate.update(tls_ca=str(kube.ca_file), use_proxy=True, proxy_url=proxy)
    return tomli_w.dumps(config)

"""The Helm chart in ``cronjobs/``, checked by the real helm and a real Kubernetes API server.

``helm lint`` and ``helm template`` the chart with its default values and with
``cronjobs/ci/full-values.yaml`` (routes, resources, per-job settings). Every rendered object,
and the Secret ``tokenmaker --secret-manifest`` writes, is then created on the lab API server
with a server-side dry run and strict field validation, in a namespace that enforces the
``restricted`` Pod Security Standard: the server decodes each object against its schema (an
unknown or duplicated field is an error), runs admission, and stores nothing. A deliberately
wrong field is refused, which proves the checks are on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from support.cli import run_cli
from support.helm import CHART, FULL_VALUES, helm, render_chart
from support.kubeapi import KubeAPI

from rubin_monitoring.models.tokens import Role
from rubin_monitoring.storage.secret_manifest import secret_manifest_text
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}
YAML = {"Content-Type": "application/yaml"}
VALUE_SETS = {"default": (), "full": (FULL_VALUES,)}


@pytest.fixture(scope="module")
def namespace(kube_api: KubeAPI) -> Iterator[str]:
    """A real namespace enforcing (and warning about) the restricted Pod Security Standard."""
    name = f"monitoring-{uuid.uuid4().hex[:8]}"
    levels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": levels}}
    kube_api.client.post("/api/v1/namespaces", json=body).raise_for_status()
    yield name
    kube_api.client.delete(f"/api/v1/namespaces/{name}")


def documents(text: str) -> list[str]:
    """The YAML documents of ``text`` that hold an object, as written."""
    parts = [part for part in text.split("\n---") if yaml.safe_load(part)]
    return [part.removeprefix("---\n").lstrip("\n") for part in parts]


def collection_path(kube: KubeAPI, api_version: str, kind: str, namespace: str) -> str:
    """Where objects of ``kind`` are created, found by the server's own API discovery."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    response = kube.client.get(base)
    response.raise_for_status()
    for resource in response.json()["resources"]:
        if resource["kind"] == kind and "/" not in resource["name"]:
            assert resource["namespaced"], f"{kind} is not namespaced"
            return f"{base}/namespaces/{namespace}/{resource['name']}"
    raise AssertionError(f"the API server has no {kind} in {api_version}")


def dry_run_create(kube: KubeAPI, text: str, namespace: str) -> httpx.Response:
    """POST one object (YAML, as written) with a server-side dry run and strict validation."""
    head = yaml.safe_load(text)
    path = collection_path(kube, head["apiVersion"], head["kind"], namespace)
    return kube.client.post(path, params=DRY_RUN, content=text.encode(), headers=YAML)


def assert_accepted(response: httpx.Response, what: str) -> None:
    assert response.status_code in (200, 201), f"{what}: {response.status_code} {response.text}"
    # Strict validation fails unknown fields; the Pod Security warning would come back here.
    assert "warning" not in response.headers, f"{what}: {response.headers['warning']}"


def test_helm_lint_passes_strictly(helm_bin: Path) -> None:
    for files in VALUE_SETS.values():
        args = [arg for path in files for arg in ("--values", str(path))]
        done = helm(helm_bin, "lint", "--strict", str(CHART), *args)
        assert "0 chart(s) failed" in done.stdout, done.stdout


def test_helm_refuses_an_unknown_setting(helm_bin: Path) -> None:
    done = helm(
        helm_bin, "template", str(CHART), "--set", "config.INFLUXDB_URI=http://x", check=False
    )
    assert done.returncode != 0
    assert "INFLUXDB_URI" in done.stderr


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_every_rendered_object_is_accepted(
    helm_bin: Path, kube_api: KubeAPI, namespace: str, values: str
) -> None:
    rendered = documents(render_chart(helm_bin, *VALUE_SETS[values], namespace=namespace))
    kinds = sorted(yaml.safe_load(text)["kind"] for text in rendered)
    assert kinds.count("ConfigMap") == 2 and kinds.count("CronJob") >= 4, kinds
    for text in rendered:
        head = yaml.safe_load(text)
        response = dry_run_create(kube_api, text, namespace)
        assert_accepted(response, f"{head['kind']} {head['metadata']['name']}")
        assert response.json()["metadata"]["namespace"] == namespace


def test_tokenmakers_secret_is_accepted(kube_api: KubeAPI, namespace: str) -> None:
    tokens = {role.value: f"token-{uuid.uuid4().hex}" for role in Role}
    for text in (secret_manifest_text(tokens), secret_manifest_text(tokens, namespace=namespace)):
        response = dry_run_create(kube_api, text, namespace)
        assert_accepted(response, "the tokens Secret")
        created = response.json()
        assert created["metadata"]["name"] == "rubin-monitoring-tokens"
        assert set(created["data"]) == {f"{role.value}-token" for role in Role}


def test_each_job_pod_passes_the_restricted_pod_security_standard(
    helm_bin: Path, kube_api: KubeAPI, namespace: str
) -> None:
    """Pod Security admission only warns for a CronJob; for a Pod it enforces."""
    rendered = [yaml.safe_load(text) for text in documents(render_chart(helm_bin))]
    cronjobs = [doc for doc in rendered if doc["kind"] == "CronJob"]
    path = f"/api/v1/namespaces/{namespace}/pods"
    for cronjob in cronjobs:
        template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", **template}
        pod["metadata"] = {**template["metadata"], "name": cronjob["metadata"]["name"]}
        response = kube_api.client.post(path, params=DRY_RUN, json=pod)
        assert_accepted(response, f"the pod of {cronjob['metadata']['name']}")
    # The control: the same pod with privilege escalation allowed is refused.
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    response = kube_api.client.post(path, params=DRY_RUN, json=pod)
    assert response.status_code == 403, response.text
    assert "allowPrivilegeEscalation" in response.text


def test_the_receivers_manifests_are_accepted_under_the_restricted_standard(
    kube_api: KubeAPI, namespace: str, phalanx: PhalanxRepo
) -> None:
    """receiver-config --format manifests (with its Ingress): every object dry-run created
    with strict validation, and its Deployment's pod, on which the restricted Pod Security
    Standard is enforced."""
    phalanx.set_apps({"argocd": True, "mobu": True}, {"idfdev": {}, "summit": {}})
    env = {"INFLUXDB_URL": "https://influxdb.example.org", "INFLUXDB_ORG": "rubin",
           "PHALANX_REPO": phalanx.url}  # fmt: skip
    args = ["receiver-config", "--format", "manifests", "--namespace", namespace,
            "--ingress-host", "rw.example.org", "--ingress-tls-secret", "rw-tls"]  # fmt: skip
    run = run_cli(args, env)
    assert run.exit_code == 0, run.stderr
    texts = documents(run.stdout)
    kinds = [yaml.safe_load(text)["kind"] for text in texts]
    assert kinds == ["ConfigMap", "Deployment", "Service", "Ingress"]
    for text, kind in zip(texts, kinds, strict=True):
        assert_accepted(dry_run_create(kube_api, text, namespace), f"the receiver's {kind}")
    deployment = yaml.safe_load(texts[1])
    template = deployment["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", **template}
    pod["metadata"] = {**template["metadata"], "name": deployment["metadata"]["name"]}
    path = f"/api/v1/namespaces/{namespace}/pods"
    assert_accepted(kube_api.client.post(path, params=DRY_RUN, json=pod), "the receiver's pod")


def mistakes() -> dict[str, tuple[str, str]]:
    """Objects with one wrong field each, and the text the server's refusal must contain."""
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndatum: {a: b}\n"
    duplicate = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {}\ndata: {}\n"
    secret = secret_manifest_text({"notifier": "x"}).replace("stringData:", "stringdata:")
    return {
        "ConfigMap unknown field": (configmap, 'unknown field "datum"'),
        "ConfigMap duplicate field": (duplicate, 'key "data" already set'),
        "Secret misspelt field": (secret, 'unknown field "stringdata"'),
    }


@pytest.mark.parametrize("mistake", sorted(mistakes()))
def test_a_wrong_field_is_refused(kube_api: KubeAPI, namespace: str, mistake: str) -> None:
    text, message = mistakes()[mistake]
    response = dry_run_create(kube_api, text, namespace)
    assert response.status_code in (400, 422), f"{response.status_code} {response.text}"
    assert "strict decoding error" in response.json()["message"], response.text
    assert message in response.json()["message"], response.text


def test_a_wrong_field_in_a_rendered_cronjob_is_refused(
    helm_bin: Path, kube_api: KubeAPI, namespace: str
) -> None:
    rendered = documents(render_chart(helm_bin, namespace=namespace))
    cronjob = next(text for text in rendered if "kind: CronJob" in text)
    assert "readOnlyRootFilesystem: true" in cronjob
    wrong = cronjob.replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true")
    response = dry_run_create(kube_api, wrong, namespace)
    assert response.status_code in (400, 422), f"{response.status_code} {response.text}"
    assert response.json()["message"].endswith(
        'strict decoding error: unknown field "spec.jobTemplate.spec.template.spec.containers[0]'
        '.securityContext.readOnlyRootFileSystem"'
    ), response.text

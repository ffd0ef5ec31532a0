"""Run a real helm (the build of ``scripts/provision-helm``) from tests.

Typical use::

    from support.helm import helm

    rendered = helm(helm_bin, "template", "rubin-monitoring", str(CHART)).stdout

helm runs with its cache, configuration and data directories in a throwaway directory, so a test
never reads or writes the user's helm setup.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from support.binaries import cached_binary, require_binary

__all__ = [
    "CHART",
    "FULL_VALUES",
    "HELM_VERSION",
    "HelmUnavailable",
    "helm",
    "helm_binary",
    "render_chart",
    "require_helm",
]

HELM_VERSION = "3.22.0"


class HelmUnavailable(Exception):
    """No helm binary: the reason says what to do."""


def helm_binary() -> Path | None:
    """``$HELM_BIN``, else the cached build of ``scripts/provision-helm``, else None."""
    return cached_binary("HELM_BIN", f"helm-{HELM_VERSION}/helm")


def require_helm() -> Path:
    """The helm binary, or :class:`HelmUnavailable` saying how to get one."""
    hint = "run scripts/provision-helm or set HELM_BIN"
    return require_binary(helm_binary(), "helm", hint, HelmUnavailable)


def helm(binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``helm ARGS``; with ``check``, a non-zero exit fails with helm's output."""
    with tempfile.TemporaryDirectory(prefix="rubin-helm-") as home:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": os.path.join(home, "cache"),
            "HELM_CONFIG_HOME": os.path.join(home, "config"),
            "HELM_DATA_HOME": os.path.join(home, "data"),
        }
        done = subprocess.run(
            [str(binary), *args], env=env, capture_output=True, text=True, timeout=120
        )
    if check and done.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


CHART = Path(__file__).resolve().parents[2] / "cronjobs"
FULL_VALUES = CHART / "ci" / "full-values.yaml"


def render_chart(binary: Path, *values_files: Path, namespace: str = "rubin-monitoring") -> str:
    """``helm template`` of the chart in ``cronjobs/`` with ``values_files``: the manifests."""
    args = ["template", "rubin-monitoring", str(CHART), "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    return helm(binary, *args).stdout

"""tokenmaker's Kubernetes Secret manifest: one ``<role>-token`` key per new token value
(``telegraf-<environment>-token`` for each cluster's Telegraf), and ``receiver-<environment>-
password`` for each cluster's remote-write credential; written atomically with mode 0600."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from ..exceptions import ConfigError, RubinMonitoringError
from ..models.tokens import (
    DEFAULT_SECRET_NAME,
    Role,
    receiver_environment,
    telegraf_environment,
)

SECRET_KEY_SUFFIX = "-token"
PASSWORD_KEY_SUFFIX = "-password"


def in_role_order(tokens: Mapping[str, str]) -> list[tuple[str, str]]:
    """``tokens`` (role -> value): the environments' Telegraf roles by name, their receiver
    credentials by name, then the order of :class:`Role`, unknown roles last."""
    order = {role.value: index + 2 for index, role in enumerate(Role)}

    def key(item: tuple[str, str]) -> tuple[int, str]:
        if telegraf_environment(item[0]) is not None:
            return (0, item[0])
        if receiver_environment(item[0]) is not None:
            return (1, item[0])
        return (order.get(item[0], len(order) + 2), item[0])

    return sorted(tokens.items(), key=key)


def secret_key(role: str) -> str:
    """The Secret key of a role's token, ``<role>-token``; of an environment's remote-write
    credential (a password to its Prometheus), ``receiver-<environment>-password``."""
    if receiver_environment(role) is not None:
        return f"{role}{PASSWORD_KEY_SUFFIX}"
    return f"{role}{SECRET_KEY_SUFFIX}"


def secret_manifest_text(
    tokens: Mapping[str, str], name: str = DEFAULT_SECRET_NAME, namespace: str | None = None
) -> str:
    """A Kubernetes Secret with one ``stringData`` key per role, ``<role>-token`` (the keys
    the CronJobs of the Helm chart in ``cronjobs/`` read)."""
    metadata: dict[str, object] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "rubin-monitoring"}
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {secret_key(role): value for role, value in in_role_order(tokens)},
    }
    return yaml.safe_dump(document, sort_keys=False)


def check_manifest_path(path: Path) -> None:
    """Fail before any token is made if the manifest could not be written."""
    if path.is_dir():
        raise ConfigError(f"--secret-manifest {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"--secret-manifest {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--secret-manifest {path} is not writable")


def write_secret_manifest(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (a reader never sees half)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise RubinMonitoringError(
            f"cannot write the secret manifest {path}: {error.strerror}; the new tokens were "
            "made but not saved: run again with --rotate"
        ) from None

"""Where the tests find the real programs the ``scripts/provision-*`` scripts build: an
override variable, else the project's cache (``$RUBIN_MONITORING_CACHE``, else
``$XDG_CACHE_HOME/rubin-monitoring``, else ``~/.cache/rubin-monitoring``)."""

from __future__ import annotations

import os
from pathlib import Path


class BinaryUnavailable(Exception):
    """A program the tests need is not there: the message says how to get it."""


def cache_root() -> Path:
    """The provision scripts' cache directory."""
    root = os.environ.get("RUBIN_MONITORING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rubin-monitoring"
    )
    return Path(root)


def cached_binary(variable: str, relative: str) -> Path | None:
    """``$variable`` if set, else ``<cache>/<relative>`` if it exists, else None."""
    explicit = os.environ.get(variable)
    if explicit:
        return Path(explicit)
    path = cache_root() / relative
    return path if path.exists() else None


def require_binary(
    binary: Path | None, what: str, hint: str, unavailable: type[Exception] = BinaryUnavailable
) -> Path:
    """``binary`` if it is an executable file; else ``unavailable`` naming ``what`` and the
    ``hint`` (how to get it)."""
    if binary is None:
        raise unavailable(f"no {what} binary ({hint})")
    if not os.access(binary, os.X_OK):
        raise unavailable(f"{what} binary {binary} is missing or not executable ({hint})")
    return binary

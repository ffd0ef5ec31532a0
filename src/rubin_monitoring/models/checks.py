"""The alert checks the toolkit knows, and the settings their tasks are rendered with."""

from __future__ import annotations

from dataclasses import dataclass

CHECK_NAMES: tuple[str, ...] = ("restarts", "not_running", "cpu", "memory")
"""Every check the toolkit knows, in a stable order."""

DEFAULT_SEVERITY: dict[str, str] = {
    "restarts": "warning",
    "not_running": "critical",
    "cpu": "warning",
    "memory": "warning",
}
"""The ``severity`` tag each check writes."""

MAX_THRESHOLD = 1000.0


@dataclass(frozen=True)
class CheckSettings:
    """Which checks run and how; validated once, by :mod:`rubin_monitoring.config`."""

    checks: tuple[str, ...] = ("restarts", "not_running", "cpu")
    every: str = "5m"
    """Flux duration literal: how often each task runs."""
    window: str = "10m"
    """How far back each run looks."""
    cpu_threshold: float = 90.0
    """Percent of the container's CPU limit (mean usage over the window)."""
    memory_threshold: float = 90.0
    """Percent of the container's memory limit (mean working set over the window)."""
    pending_grace: str = "10m"
    """How long a container may be Pending or ContainerCreating before it is reported."""

"""Desired and observed Flux tasks.

Task names are not unique in InfluxDB, so a task's identity is the pair (bucket, check), kept
as exact fields of the ownership marker in its description:
``Alert check cpu of mobu (managed-by=rubin-monitoring bucket=mobu check=cpu)``. Tasks made by
release 0.1.0 wrote ``app=`` for the bucket; it is read as ``bucket=``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ownership import describe, parse_marker


def task_description(bucket: str, check: str) -> str:
    """The description of the toolkit's ``check`` task over ``bucket``."""
    return describe(f"Alert check {check} of {bucket}", {"bucket": bucket, "check": check})


def task_identity(description: str | None) -> tuple[str, str] | None:
    """(bucket, check) from a task description's marker, or None if it has none."""
    fields = parse_marker(description)
    if fields is None:
        return None
    bucket = fields.get("bucket", fields.get("app"))
    check = fields.get("check")
    if bucket is None or check is None:
        return None
    return (bucket, check)


@dataclass(frozen=True)
class TaskSpec:
    """A check task the toolkit wants: ``check`` over the application bucket ``bucket``."""

    bucket: str
    check: str
    name: str
    flux: str
    every_seconds: int
    offset_seconds: int

    @property
    def identity(self) -> tuple[str, str]:
        """(bucket, check): what makes this task the same task on every run."""
        return (self.bucket, self.check)

    @property
    def description(self) -> str:
        """The description with the ownership marker and identity fields."""
        return task_description(self.bucket, self.check)


@dataclass(frozen=True)
class ObservedTask:
    """A task as InfluxDB lists it (``owner_id`` is its ``ownerID``)."""

    id: str
    name: str
    flux: str
    every: str | None
    offset: str | None
    status: str
    description: str | None
    owner_id: str = ""
    last_run_status: str | None = None
    last_run_error: str | None = None
    latest_completed: str | None = None

    @property
    def identity(self) -> tuple[str, str] | None:
        """(bucket, check) named by the task's marker, or None. Ownership needs the owner
        too: see :meth:`owned_by`."""
        return task_identity(self.description)

    def owned_by(self, owner_id: str) -> bool:
        """The toolkit's task: marked, and owned by ``owner_id`` (the user of the token
        taskmaker runs with), which no description can fake."""
        return self.identity is not None and bool(owner_id) and self.owner_id == owner_id

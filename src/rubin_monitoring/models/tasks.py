"""Desired and observed Flux tasks.

Task names are not unique in InfluxDB, so a task's identity is (scope, check), kept as exact
fields of the ownership marker in its description. The scope is what the check watches:

* an application bucket: ``Alert check cpu of mobu (managed-by=rubin-monitoring bucket=mobu
  check=cpu)``; tasks made by release 0.1.0 wrote ``app=`` for the bucket, read the same way;
* an environment (a cluster): ``... (managed-by=rubin-monitoring cluster=idfdev check=silent)``;
* the fleet as a whole: ``... (managed-by=rubin-monitoring fleet=influxdb check=disk)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .ownership import describe, parse_marker


class Scope(StrEnum):
    """What a check task watches; the name of its marker field."""

    BUCKET = "bucket"
    CLUSTER = "cluster"
    FLEET = "fleet"


TaskIdentity = tuple[Scope, str, str]
"""(scope kind, scope, check)."""


def task_description(scope: str, check: str, kind: Scope = Scope.BUCKET) -> str:
    """The description of the toolkit's ``check`` task over ``scope`` (a bucket by default)."""
    return describe(f"Alert check {check} of {scope}", {kind.value: scope, "check": check})


def task_identity(description: str | None) -> TaskIdentity | None:
    """(kind, scope, check) from a task description's marker, or None if it has none."""
    fields = parse_marker(description)
    if fields is None or "check" not in fields:
        return None
    if "app" in fields and "bucket" not in fields:
        fields["bucket"] = fields.pop("app")
    scopes = [kind for kind in Scope if kind.value in fields]
    if len(scopes) != 1:
        return None
    return (scopes[0], fields[scopes[0].value], fields["check"])


@dataclass(frozen=True)
class TaskSpec:
    """A check task the toolkit wants: ``check`` over ``scope`` (by default an application
    bucket)."""

    scope: str
    check: str
    name: str
    flux: str
    every_seconds: int
    offset_seconds: int
    kind: Scope = Scope.BUCKET

    @property
    def identity(self) -> TaskIdentity:
        """(kind, scope, check): what makes this task the same task on every run."""
        return (self.kind, self.scope, self.check)

    @property
    def description(self) -> str:
        """The description with the ownership marker and identity fields."""
        return task_description(self.scope, self.check, self.kind)


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
    def identity(self) -> TaskIdentity | None:
        """(kind, scope, check) named by the task's marker, or None. Ownership needs the
        owner too: see :meth:`owned_by`."""
        return task_identity(self.description)

    def owned_by(self, owner_id: str) -> bool:
        """The toolkit's task: marked, and owned by ``owner_id`` (the user of the token
        taskmaker runs with), which no description can fake."""
        return self.identity is not None and bool(owner_id) and self.owner_id == owner_id

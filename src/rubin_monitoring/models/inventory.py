"""What the configuration repository says: environments and their enabled applications."""

from __future__ import annotations

from dataclasses import dataclass, field

from .names import quoted


@dataclass(frozen=True)
class Environment:
    """One Phalanx environment (a cluster): its name, fqdn, values file and enabled applications."""

    name: str
    fqdn: str | None
    file: str
    applications: tuple[str, ...]


@dataclass(frozen=True)
class InventoryProblem:
    """Something the repository says that the toolkit cannot serve, with the file that says it:
    an application that cannot be served (``application`` set), or an environment whose name
    or fqdn is invalid (``environment`` set, as written: messages show it safely).

    ``held`` names the applications whose existing objects every job keeps as they are while
    the problem lasts: not created, but never pruned either (an environment dropped for a bad
    name must not make its applications' buckets look like orphans).
    """

    file: str
    reason: str
    application: str | None = None
    environment: str | None = None
    held: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """What the problem is about, for a one-line message."""
        if self.application is not None:
            return f"application {quoted(self.application)}"
        return f"environment {quoted(self.environment)}" if self.environment else "environment"

    @property
    def bucket(self) -> str:
        """The bucket name the application would get ("" for an environment's problem)."""
        return bucket_name(self.application) if self.application is not None else ""

    def __str__(self) -> str:
        return f"{self.file}: {self.subject}: {self.reason}"


@dataclass(frozen=True)
class Inventory:
    """What the configuration repository enables, and what it says that cannot be served."""

    environments: tuple[Environment, ...]
    problems: tuple[InventoryProblem, ...] = field(default=())

    @property
    def applications(self) -> list[str]:
        """Union of enabled applications over environments, sorted, without rejected ones."""
        rejected = {problem.application for problem in self.problems}
        enabled = {app for env in self.environments for app in env.applications}
        return sorted(enabled - rejected)

    @property
    def buckets(self) -> list[str]:
        """The application buckets: one per enabled application, by bucket name."""
        return sorted({bucket_name(app) for app in self.applications})

    @property
    def held_buckets(self) -> frozenset[str]:
        """Buckets of the applications a problem holds: kept as they are, never pruned."""
        held = {app for problem in self.problems for app in problem.held}
        return frozenset(bucket_name(app) for app in held)

    @property
    def held_environments(self) -> frozenset[str]:
        """Names (as written) of the environments a problem holds back: their objects are
        kept as they are."""
        return frozenset(
            problem.environment
            for problem in self.problems
            if problem.environment is not None and problem.held
        )


def bucket_name(application: str) -> str:
    """The bucket an application's Telegraf writes to (the convention installations use)."""
    return application.replace("-", "_")

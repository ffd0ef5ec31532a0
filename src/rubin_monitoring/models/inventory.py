"""What the configuration repository says: environments and their enabled applications."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Environment:
    """One Phalanx environment (a cluster): its name, fqdn, values file and enabled applications."""

    name: str
    fqdn: str | None
    file: str
    applications: tuple[str, ...]


@dataclass(frozen=True)
class InventoryProblem:
    """An application that cannot get a bucket, with the file that enables it."""

    file: str
    application: str
    reason: str

    @property
    def bucket(self) -> str:
        """The bucket name the application would get."""
        return bucket_name(self.application)

    def __str__(self) -> str:
        return f"{self.file}: application {self.application!r}: {self.reason}"


@dataclass(frozen=True)
class Inventory:
    """What the configuration repository enables, and the applications that cannot get a bucket."""

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


def bucket_name(application: str) -> str:
    """The bucket an application's Telegraf writes to (the convention installations use)."""
    return application.replace("-", "_")

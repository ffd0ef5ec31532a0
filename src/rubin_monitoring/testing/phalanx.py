"""Build real Phalanx-style Git repositories with GitPython."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import git
import yaml


class PhalanxRepo:
    """A real Git repository in the Phalanx layout, built with GitPython."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "Test")
            config.set_value("user", "email", "test@example.com")

    @property
    def url(self) -> str:
        """The repository as a ``file://`` URL."""
        return self.path.as_uri()

    def write(self, relative: str, content: str | dict[str, Any]) -> None:
        """Write a file (a mapping is dumped as YAML)."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        target.write_text(text)

    def commit(self, message: str = "update") -> str:
        """Commit everything; the new commit's SHA."""
        self.repo.git.add(A=True)
        self.repo.index.commit(message)
        return self.repo.head.commit.hexsha

    def set_apps(
        self,
        defaults: dict[str, bool],
        environments: dict[str, dict[str, Any]],
        message: str = "applications",
    ) -> str:
        """Write ``values.yaml`` defaults and a ``values-<env>.yaml`` per environment; commit."""
        self.write("environments/values.yaml", {"applications": defaults})
        for env, values in environments.items():
            body = {"name": env, "fqdn": f"{env}.example.com", **values}
            self.write(f"environments/values-{env}.yaml", body)
        return self.commit(message)

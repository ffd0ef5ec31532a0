"""Desired and observed Flux tasks. A task's identity is (application, check), kept in its
description beside the ownership marker, because task names are not unique."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .buckets import OWNER_MARKER, is_owned

_APP = re.compile(r"\bapp=([^\s)]+)")
_CHECK = re.compile(r"\bcheck=([^\s)]+)")


def task_description(application: str, check: str) -> str:
    return f"Alert check {check} of {application} ({OWNER_MARKER} app={application} check={check})"


@dataclass(frozen=True)
class TaskSpec:
    application: str
    check: str
    name: str
    flux: str
    every_seconds: int
    offset_seconds: int

    @property
    def identity(self) -> tuple[str, str]:
        return (self.application, self.check)

    @property
    def description(self) -> str:
        return task_description(self.application, self.check)


@dataclass(frozen=True)
class ObservedTask:
    id: str
    name: str
    flux: str
    every: str | None
    offset: str | None
    status: str
    description: str | None
    last_run_status: str | None = None
    last_run_error: str | None = None
    latest_completed: str | None = None

    @property
    def owned(self) -> bool:
        return is_owned(self.description)

    @property
    def identity(self) -> tuple[str, str] | None:
        """(application, check) of an owned task, or None."""
        if not self.owned or self.description is None:
            return None
        app, check = _APP.search(self.description), _CHECK.search(self.description)
        if app is None or check is None:
            return None
        return (app.group(1), check.group(1))

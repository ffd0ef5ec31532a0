"""Silences: matchers that mute the alerts they match between a start and an end.

A silence is stored as points in the toolkit's ``silences_`` bucket (see
:mod:`rubin_monitoring.storage.silences`), one per change, all with the silence's ID; the latest
point of an ID is the silence's current state, so expiring one is writing it again with its end
set to now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .matchers import Matcher, matches_all


class SilenceState(StrEnum):
    """Where a silence is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Silence:
    """Alerts matching every one of ``matchers`` are muted from ``starts_at`` until
    ``ends_at`` (exclusive)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    updated_at: datetime | None = None
    """When the latest point of this silence was written (None: not stored yet)."""

    def state(self, now: datetime) -> SilenceState:
        """Pending before its start, active until its end, expired from then on."""
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def active(self, now: datetime) -> bool:
        """Whether the silence mutes alerts at ``now``."""
        return self.state(now) is SilenceState.ACTIVE

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels``."""
        return matches_all(self.matchers, labels)

    def to_json(self, now: datetime) -> dict[str, object]:
        """The silence as ``silence query --output json`` and the notifier's report show it."""
        return {
            "id": self.id,
            "matchers": [str(matcher) for matcher in self.matchers],
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
            "state": self.state(now).value,
        }

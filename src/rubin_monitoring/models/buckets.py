"""Desired and observed buckets and DBRP mappings."""

from __future__ import annotations

from dataclasses import dataclass

OWNER_MARKER = "managed-by=rubin-monitoring"


def is_owned(description: str | None) -> bool:
    """The one ownership check: objects the toolkit created carry the marker."""
    return description is not None and OWNER_MARKER in description


@dataclass(frozen=True)
class BucketSpec:
    name: str
    retention_seconds: int
    purpose: str

    @property
    def description(self) -> str:
        return f"{self.purpose} ({OWNER_MARKER})"


@dataclass(frozen=True)
class ObservedBucket:
    id: str
    name: str
    retention_seconds: int
    description: str | None
    system: bool = False

    @property
    def owned(self) -> bool:
        return not self.system and is_owned(self.description)


@dataclass(frozen=True)
class DbrpSpec:
    bucket_id: str
    database: str
    retention_policy: str


@dataclass(frozen=True)
class ObservedDbrp:
    id: str
    bucket_id: str
    database: str
    retention_policy: str
    default: bool

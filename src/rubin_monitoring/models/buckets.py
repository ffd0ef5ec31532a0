"""Desired and observed buckets and DBRP mappings."""

from __future__ import annotations

from dataclasses import dataclass

from .ownership import describe, is_marked


@dataclass(frozen=True)
class BucketSpec:
    """A bucket the toolkit wants: ``purpose`` becomes its description, with the marker."""

    name: str
    retention_seconds: int
    purpose: str

    @property
    def description(self) -> str:
        """``purpose`` followed by the ownership marker."""
        return describe(self.purpose)


@dataclass(frozen=True)
class ObservedBucket:
    """A bucket as InfluxDB lists it."""

    id: str
    name: str
    retention_seconds: int
    description: str | None
    system: bool = False

    @property
    def owned(self) -> bool:
        """The toolkit's: not a system bucket, and its description ends with the marker."""
        return not self.system and is_marked(self.description)


@dataclass(frozen=True)
class DbrpSpec:
    """A DBRP mapping the toolkit wants: database (bucket name) and retention policy on a bucket."""

    bucket_id: str
    database: str
    retention_policy: str


@dataclass(frozen=True)
class ObservedDbrp:
    """A physical DBRP mapping as InfluxDB lists it."""

    id: str
    bucket_id: str
    database: str
    retention_policy: str
    default: bool

"""Desired and observed buckets and DBRP mappings."""

from __future__ import annotations

from dataclasses import dataclass

from .ownership import describe, is_marked

HOUR = 3600
DAY = 24 * HOUR
MAX_AUTO_SHARD_GROUP = 30 * DAY


def auto_shard_group_seconds(retention_seconds: int) -> int:
    """The shard-group duration ``BUCKET_SHARD_DURATION=auto`` gives a bucket: half its
    retention, in whole hours (at least 1h, at most 30d; 30d for an infinite retention), so a
    bucket holds at most three shard groups where InfluxDB's default (1d for 2d-180d) holds
    retention/1d + 1: fewer shards, each with its fixed cost in memory, files and memory maps.
    The price: data stays up to retention + shard-group duration before its shard is dropped."""
    if retention_seconds == 0:
        return MAX_AUTO_SHARD_GROUP
    half = -(-retention_seconds // 2 // HOUR) * HOUR  # rounded up to the hour
    return max(HOUR, min(half, MAX_AUTO_SHARD_GROUP))


@dataclass(frozen=True)
class BucketSpec:
    """A bucket the toolkit wants: ``purpose`` becomes its description, with the marker."""

    name: str
    retention_seconds: int
    purpose: str
    shard_group_seconds: int | None = None
    """The span of each shard group; None: InfluxDB's own default for the retention."""

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
    shard_group_seconds: int | None = None

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

"""The lease's expiry: written to the millisecond, read back exactly (pure parts only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from rubin_monitoring.services.lease import Lease, LeaseState, lease_state
from rubin_monitoring.storage.leases import LeaseRecord

NOW = datetime(2026, 11, 22, 6, 0, 0, 900_000, tzinfo=UTC)


def record_of(lease: Lease) -> LeaseRecord:
    return LeaseRecord("id", lease.name, lease._properties())


def test_a_short_lease_is_not_cut_to_the_whole_second() -> None:
    """A 2.5 s lease taken at .9 s expires at .4 s three seconds later, not at a whole second
    (which would make it expire up to a second early)."""
    lease = Lease(cast(Any, None), "writers", "bucketmaker", ttl_seconds=2.5, clock=lambda: NOW)
    record = record_of(lease)
    assert record.properties["expires"] == "2026-11-22T06:00:03.400+00:00"
    assert lease_state(record, NOW + timedelta(seconds=2.45), 2.5) is LeaseState.HELD
    assert lease_state(record, NOW + timedelta(seconds=2.5), 2.5) is LeaseState.EXPIRED


def test_an_expiry_written_in_whole_seconds_is_still_read() -> None:
    properties = record_of(Lease(cast(Any, None), "writers", "x", clock=lambda: NOW)).properties
    older = LeaseRecord("id", "rubin-monitoring-lease-writers", {**properties})
    older.properties["expires"] = "2026-11-22T06:05:00+00:00"
    assert lease_state(older, NOW + timedelta(seconds=299), 300) is LeaseState.HELD
    assert lease_state(older, NOW + timedelta(seconds=300), 300) is LeaseState.EXPIRED


def test_an_expiry_beyond_the_ttl_is_not_a_lease() -> None:
    """Anyone who may write labels could write a lease that expires in 2099 and block every
    run forever; no holder renewing every TTL/3 sets an expiry past TTL (plus clock skew) from
    now, so such a label is INVALID (taken over), not HELD."""
    properties = record_of(Lease(cast(Any, None), "writers", "x", clock=lambda: NOW)).properties
    forged = LeaseRecord("id", "rubin-monitoring-lease-writers", {**properties})
    forged.properties["expires"] = "2099-01-01T00:00:00+00:00"
    assert lease_state(forged, NOW, 300) is LeaseState.INVALID
    near = LeaseRecord("id", "rubin-monitoring-lease-writers", {**properties})
    near.properties["expires"] = (NOW + timedelta(seconds=300 + 59)).isoformat()
    assert lease_state(near, NOW, 300) is LeaseState.HELD
    near.properties["expires"] = (NOW + timedelta(seconds=300 + 61)).isoformat()
    assert lease_state(near, NOW, 300) is LeaseState.INVALID

"""Silences in the toolkit's ``silences_`` bucket, through influxdb-client (as
:mod:`rubin_monitoring.storage.alerts`, whose error mapping and retries it shares).

Schema: measurement ``silence``, tag ``id`` (a UUID), string fields ``matchers`` (JSON, a list
of ``[label, op, value]``), ``starts_at`` and ``ends_at`` (RFC 3339, UTC), ``created_by`` and
``comment``; time = when the point was written. A silence is written once when it is added and
once more when it is expired (its end set to then); the latest point of an ID is its state. A
retried write stores the same point again (same series and time), so a dropped answer never
makes a second silence.

``silences_`` keeps points for ``SILENCES_RETENTION_SECONDS`` (31 days), longer than a silence
may last (30 days), so an active silence's latest point is always there; the read covers the
same span.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point

from ..config import SILENCES_BUCKET, SILENCES_RETENTION_SECONDS
from ..models.matchers import Matcher
from ..models.silences import Silence
from .alerts import AlertStore
from .retry import Availability

log = logging.getLogger(__name__)

MEASUREMENT = "silence"
FIELDS = ("matchers", "starts_at", "ends_at", "created_by", "comment")


def silence_point(silence: Silence, when: datetime) -> Point:
    """The point that stores ``silence``'s state as of ``when`` (millisecond precision)."""
    point = (
        Point(MEASUREMENT)
        .tag("id", silence.id)
        .field("matchers", json.dumps([matcher.to_json() for matcher in silence.matchers]))
        .field("starts_at", silence.starts_at.astimezone(UTC).isoformat())
        .field("ends_at", silence.ends_at.astimezone(UTC).isoformat())
        .field("created_by", silence.created_by)
        .field("comment", silence.comment)
    )
    timed: Point = point.time(when, "ms")
    return timed


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return moment


def silence_from_row(row: dict[str, Any]) -> Silence:
    """A silence from one pivoted row; raises ValueError for a row it cannot read."""
    raw = row.get("matchers")
    matchers = tuple(Matcher.from_json(item) for item in json.loads(str(raw)))
    if not matchers:
        raise ValueError("no matchers")
    return Silence(
        id=str(row["id"]),
        matchers=matchers,
        starts_at=_time(row.get("starts_at")),
        ends_at=_time(row.get("ends_at")),
        created_by=str(row.get("created_by") or ""),
        comment=str(row.get("comment") or ""),
        updated_at=row["_time"],
    )


class SilenceStore:
    """Reads and writes silences; needs read (``silences``) and write (``save``) on
    ``silences_`` and nothing else."""

    def __init__(
        self,
        client: InfluxDBClient,
        org: str,
        *,
        bucket: str = SILENCES_BUCKET,
        availability: Availability | None = None,
    ) -> None:
        # An AlertStore on this bucket: the same query and write APIs, retries and error mapping.
        self._store = AlertStore(
            client, org, findings_bucket=bucket, records_bucket=bucket, availability=availability
        )
        self.bucket = bucket

    def silences(self) -> list[Silence]:
        """Every silence's latest state (points of the last ``SILENCES_RETENTION_SECONDS``).
        A point that cannot be read (written by hand) is skipped with a warning."""
        flux = f"""
from(bucket: "{self.bucket}")
  |> range(start: -{SILENCES_RETENTION_SECONDS}s)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "id", "{'", "'.join(FIELDS)}"])
  |> group()
  |> sort(columns: ["_time"])
"""
        latest: dict[str, dict[str, Any]] = {}
        for row in self._store.rows(flux, self.bucket):
            key = str(row.get("id") or "")
            if key:
                latest[key] = row  # oldest first: the last row of an ID is its state
        silences = []
        for key, row in latest.items():
            try:
                silences.append(silence_from_row(row))
            except (ValueError, KeyError, TypeError) as error:
                log.warning("silence %s in %s cannot be read, ignored: %s", key, self.bucket, error)
        return silences

    def save(self, silence: Silence, when: datetime | None = None) -> None:
        """Write ``silence``'s current state (a retried write is the same point)."""
        self._store.write_points([silence_point(silence, when or datetime.now(UTC))])

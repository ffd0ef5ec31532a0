"""Findings in ``multiapp_`` and records in ``alerted_``: Flux queries and line-protocol writes
through the official client, influxdb-client.

The client parses Flux's annotated CSV (types included) and escapes line protocol; this module
maps its errors onto :mod:`rubin_monitoring.exceptions` (401/403 -> exit 3, unreachable ->
exit 3, a missing bucket or org -> exit 2). Its requests are retried by urllib3's
:class:`~urllib3.util.Retry` (429 and 5xx, honouring ``Retry-After``; connection errors), the
same policy :class:`rubin_monitoring.storage.http.InfluxHTTP` applies to the management API.
Both the query and the write are safe to repeat: a query reads, and a repeated write stores the
same points (same series and time) again.

Schema of ``alerted_`` (one point per alert per notification, written only after Slack said
``ok``): measurement ``alert``; tags ``dedup_key``, ``status`` (``firing`` or ``resolved``),
``route`` (the route's name, never its URL), ``check``, ``application``, ``cluster``,
``severity``; fields ``message`` (string) and ``value`` (float, when the finding had one);
time = when Slack accepted the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import urllib3
from influxdb_client.client.flux_csv_parser import FluxQueryException
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from ..config import ALERT_BUCKET, ALERTED_BUCKET
from ..exceptions import (
    ConfigError,
    InfluxDBAuthError,
    InfluxDBError,
    InfluxDBUnavailableError,
    RubinMonitoringError,
)
from ..models.alerts import Alert, AlertRecord, AlertStatus, Finding
from .http import RETRY_STATUSES, RetryPolicy, error_message_of, is_permission_failure
from .influxdb import org_not_found

MEASUREMENT = "alert"
TAGS = ("check", "application", "cluster", "severity", "dedup_key")
RECORD_TAGS = (*TAGS, "status", "route")


def client_retries(policy: RetryPolicy) -> urllib3.Retry:
    """urllib3's retry strategy for ``policy``: every method (queries and writes are POSTs that
    are safe to repeat), 429 and 5xx, ``Retry-After`` honoured."""
    return urllib3.Retry(
        total=policy.attempts - 1,
        connect=policy.attempts - 1,
        read=policy.attempts - 1,
        status=policy.attempts - 1,
        backoff_factor=policy.backoff_seconds,
        backoff_max=policy.max_wait_seconds,
        status_forcelist=sorted(RETRY_STATUSES),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def open_client(url: str, token: str, org: str, *, timeout: float) -> InfluxDBClient:
    """An influxdb-client for queries and writes, with the toolkit's retry policy."""
    return InfluxDBClient(
        url=url,
        token=token,
        org=org,
        timeout=int(timeout * 1000),
        retries=client_retries(RetryPolicy()),
    )


def record_point(alert: Alert, route: str, when: datetime) -> Point:
    """One ``alerted_`` point (millisecond precision); empty tags are left out."""
    point = Point(MEASUREMENT)
    tags = {
        "check": alert.check,
        "application": alert.application,
        "cluster": alert.cluster,
        "severity": alert.severity,
        "dedup_key": alert.dedup_key,
        "status": alert.status.value,
        "route": route,
    }
    for key, value in sorted(tags.items()):
        if value:
            point.tag(key, value)
    # A record's message is for people; one line keeps it readable in any client.
    point.field("message", " ".join(alert.message.splitlines()))
    if alert.value is not None:
        point.field("value", float(alert.value))
    timed: Point = point.time(when, "ms")
    return timed


def _text(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    return "" if value is None else str(value)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _status(text: str) -> AlertStatus:
    try:
        return AlertStatus(text or AlertStatus.FIRING.value)
    except ValueError:
        return AlertStatus.FIRING


class AlertStore:
    """Reads findings and records, writes records. Buckets are fixed by the architecture."""

    def __init__(
        self,
        client: InfluxDBClient,
        org: str,
        *,
        findings_bucket: str = ALERT_BUCKET,
        records_bucket: str = ALERTED_BUCKET,
    ) -> None:
        self.client = client
        self.org = org
        self.findings_bucket = findings_bucket
        self.records_bucket = records_bucket
        self._write = client.write_api(write_options=SYNCHRONOUS)
        self._query = client.query_api()

    @contextmanager
    def _errors(self, method: str, path: str, bucket: str) -> Iterator[None]:
        """Map the client's exceptions onto the toolkit's."""
        try:
            yield
        except ApiException as error:
            raise self._api_error(method, path, bucket, error) from None
        except FluxQueryException as error:
            raise InfluxDBError(method, path, 200, str(error.message)) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise InfluxDBUnavailableError(
                f"cannot reach InfluxDB at {self.client.url} ({method} {path}): "
                f"{type(error).__name__}"
            ) from None

    def _api_error(
        self, method: str, path: str, bucket: str, error: ApiException
    ) -> RubinMonitoringError:
        status = int(error.status or 0)
        message = error_message_of(str(error.body or ""), str(error.reason or ""))
        if is_permission_failure(status, message):
            return InfluxDBAuthError(method, path, status, message)
        text = message.lower()
        if status == 404 and "bucket" in text:
            return ConfigError(
                f"bucket {bucket} not found in organization {self.org!r} "
                "(run bucketmaker first, or give the token access to it)"
            )
        if "organization" in text and "not found" in text:
            return org_not_found(self.org)
        return InfluxDBError(method, path, status, message)

    def _rows(self, flux: str, bucket: str) -> list[dict[str, Any]]:
        with self._errors("POST", "/api/v2/query", bucket):
            tables = self._query.query(flux, org=self.org)
            return [record.values for table in tables for record in table.records]

    def findings(self, lookback_seconds: int) -> list[Finding]:
        """Every ``alert`` row of the last ``lookback_seconds``, oldest first."""
        flux = f"""
from(bucket: "{self.findings_bucket}")
  |> range(start: -{lookback_seconds}s)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}")
  |> filter(fn: (r) => r._field == "message" or r._field == "value")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "{'", "'.join(TAGS)}", "message", "value"])
  |> group()
  |> sort(columns: ["_time"])
"""
        return [
            Finding(
                time=row["_time"],
                check=_text(row, "check"),
                application=_text(row, "application"),
                cluster=_text(row, "cluster"),
                severity=_text(row, "severity"),
                dedup_key=_text(row, "dedup_key"),
                message=_text(row, "message"),
                value=_float(row.get("value")),
            )
            for row in self._rows(flux, self.findings_bucket)
        ]

    def records(self, since_seconds: int) -> list[AlertRecord]:
        """Every record of the last ``since_seconds``, oldest first."""
        flux = f"""
from(bucket: "{self.records_bucket}")
  |> range(start: -{since_seconds}s)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}" and r._field == "message")
  |> keep(columns: ["_time", "_value", "{'", "'.join(RECORD_TAGS)}"])
  |> group()
  |> sort(columns: ["_time"])
"""
        return [
            AlertRecord(
                time=row["_time"],
                dedup_key=_text(row, "dedup_key"),
                status=_status(_text(row, "status")),
                check=_text(row, "check"),
                application=_text(row, "application"),
                cluster=_text(row, "cluster"),
                severity=_text(row, "severity"),
                route=_text(row, "route"),
                message=_text(row, "_value"),
            )
            for row in self._rows(flux, self.records_bucket)
        ]

    def record(self, alerts: Iterable[Alert], route: str, when: datetime | None = None) -> None:
        """Write one record per alert; retried writes are idempotent (same series and time)."""
        moment = when or datetime.now(UTC)
        points = [record_point(alert, route, moment) for alert in alerts]
        if not points:
            return
        with self._errors("POST", "/api/v2/write", self.records_bucket):
            self._write.write(
                bucket=self.records_bucket,
                org=self.org,
                record=points,
                write_precision="ms",  # type: ignore[arg-type]  # the enum's values are str
            )

    # Shared with storage/silences.py, which reads and writes its bucket the same way.

    def rows(self, flux: str, bucket: str) -> list[dict[str, Any]]:
        """The rows of a Flux query on ``bucket`` (named in errors), errors mapped."""
        return self._rows(flux, bucket)

    def write_points(self, points: list[Point], bucket: str) -> None:
        """Write ``points`` (millisecond precision) into ``bucket``, errors mapped; a retried
        write stores the same points again."""
        if not points:
            return
        with self._errors("POST", "/api/v2/write", bucket):
            self._write.write(
                bucket=bucket,
                org=self.org,
                record=points,
                write_precision="ms",  # type: ignore[arg-type]  # the enum's values are str
            )

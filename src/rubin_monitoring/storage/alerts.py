"""Findings in ``multiapp_`` and records in ``alerted_``: Flux queries and line-protocol writes
through the official client, influxdb-client.

The client parses Flux's annotated CSV (types included) and escapes line protocol; this module
maps its errors onto :mod:`rubin_monitoring.exceptions` (401/403 -> exit 3, unreachable ->
exit 3, a missing bucket or org -> exit 2). Its requests are retried here, not by urllib3, with
the policy and the run's :class:`~rubin_monitoring.storage.http.Availability` budget that
:class:`rubin_monitoring.storage.http.InfluxHTTP` applies to the management API (429 and 5xx,
honouring ``Retry-After``; connection errors and timeouts). Both the query and the write are
safe to repeat: a query reads, and a repeated write stores the same points (same series and
time) again.

Schema of ``alerted_`` (one point per alert per notification, written only after Slack said
``ok``): measurement ``alert``; tags ``dedup_key``, ``status`` (``firing`` or ``resolved``),
``route`` (the route's name, never its URL), ``check``, ``application``, ``cluster``,
``severity``; fields ``message`` (string) and ``value`` (float, when the finding had one);
time = when Slack accepted the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

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
    InfluxDBServerError,
    InfluxDBUnavailableError,
    RubinMonitoringError,
)
from ..models.alerts import Alert, AlertRecord, AlertStatus, Finding
from .http import RETRY_STATUSES, error_message_of, is_permission_failure
from .influxdb import org_not_found
from .retry import Availability, RetryPolicy, TryAgain, parse_retry_after, retry_call

log = logging.getLogger(__name__)
T = TypeVar("T")

MEASUREMENT = "alert"
WRITE_CHECK_MEASUREMENT = "write_check"
"""What a notifier run writes to ``alerted_`` before it sends anything (never read as a record)."""
TAGS = ("check", "application", "cluster", "severity", "dedup_key")
RECORD_TAGS = (*TAGS, "status", "route")


def open_client(url: str, token: str, org: str, *, timeout: float) -> InfluxDBClient:
    """An influxdb-client for queries and writes that never retries by itself (the
    :class:`AlertStore` does, within the run's budget)."""
    return InfluxDBClient(
        url=url,
        token=token,
        org=org,
        timeout=int(timeout * 1000),
        retries=urllib3.Retry(total=0, raise_on_status=False),
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
        retry: RetryPolicy | None = None,
        availability: Availability | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.availability = availability or Availability()
        self.client = client
        self.org = org
        self.findings_bucket = findings_bucket
        self.records_bucket = records_bucket
        self._write = client.write_api(write_options=SYNCHRONOUS)
        self._query = client.query_api()

    def _call(self, method: str, path: str, bucket: str, call: Callable[[], T]) -> T:
        """``call()`` with the toolkit's errors, retried on 429, 5xx, connection errors and
        timeouts within the policy's attempts and the run's budget."""

        def attempt(number: int) -> T:
            if self.availability.gone:
                raise self.availability.gone_error(self.client.url, f"{method} {path}")
            started = self.availability.clock()
            try:
                with self._errors(method, path, bucket):
                    result = call()
            except InfluxDBUnavailableError as error:
                self.availability.failed(started)
                raise TryAgain(error) from None
            except InfluxDBError as error:
                if error.status not in RETRY_STATUSES:
                    self.availability.answered()
                    raise
                self.availability.failed(started)
                server = InfluxDBServerError(method, path, error.status, error.server_message)
                raise TryAgain(server, error.retry_after) from None
            self.availability.answered()
            return result

        def on_retry(error: Exception, number: int, wait: float) -> None:
            log.warning("%s %s failed (%s); retrying in %.1fs", method, path, error, wait)

        return retry_call(attempt, self.retry, availability=self.availability, on_retry=on_retry)

    @contextmanager
    def _errors(self, method: str, path: str, bucket: str) -> Iterator[None]:
        """Map the client's exceptions onto the toolkit's."""
        try:
            yield
        except ApiException as error:
            mapped = self._api_error(method, path, bucket, error)
            if isinstance(mapped, InfluxDBError) and error.headers:
                mapped.retry_after = parse_retry_after(error.headers.get("Retry-After"))
            raise mapped from None
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
        def query() -> list[dict[str, Any]]:
            tables = self._query.query(flux, org=self.org)
            return [record.values for table in tables for record in table.records]

        return self._call("POST", "/api/v2/query", bucket, query)

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

    def check_writable(self) -> None:
        """Write one ``write_check`` point into ``alerted_``: proof, before anything is sent,
        that the records of what is sent can be written."""
        point = Point(WRITE_CHECK_MEASUREMENT).field("ok", True).time(datetime.now(UTC), "ms")
        self._write_points([point])

    def _write_points(self, points: list[Point]) -> None:
        def write() -> None:
            self._write.write(
                bucket=self.records_bucket,
                org=self.org,
                record=points,
                write_precision="ms",  # type: ignore[arg-type]  # the enum's values are str
            )

        self._call("POST", "/api/v2/write", self.records_bucket, write)

    def record(self, alerts: Iterable[Alert], route: str, when: datetime | None = None) -> None:
        """Write one record per alert; retried writes are idempotent (same series and time)."""
        moment = when or datetime.now(UTC)
        points = [record_point(alert, route, moment) for alert in alerts]
        if points:
            self._write_points(points)

    # Shared with storage/silences.py, which reads and writes its own bucket the same way (an
    # AlertStore whose findings and records bucket are both silences_).

    def rows(self, flux: str, bucket: str) -> list[dict[str, Any]]:
        """The rows of a Flux query on ``bucket`` (named in errors), retried and errors mapped."""
        return self._rows(flux, bucket)

    def write_points(self, points: list[Point]) -> None:
        """Write ``points`` (millisecond precision) into the records bucket, retried and
        errors mapped; a retried write stores the same points again."""
        if points:
            self._write_points(points)

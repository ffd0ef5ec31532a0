"""Findings in ``multiapp_`` and records in ``alerted_``, read with Flux and written as line
protocol through the toolkit's one InfluxDB HTTP client (:class:`InfluxHTTP`).

Why not influxdb-client's QueryApi/WriteApi: :class:`InfluxHTTP` already carries the project's
retry policy and maps errors onto :mod:`rubin_monitoring.exceptions` (401/403 -> exit 3,
unreachable -> exit 3); a second client would need its own copy of both. The two queries here
end in ``group()``, so the answer is one plain CSV table that the standard library reads.

Schema of ``alerted_`` (one point per alert per notification, written only after Slack said
``ok``): measurement ``alert``; tags ``dedup_key``, ``status`` (``firing`` or ``resolved``),
``route`` (the route's name, never its URL), ``check``, ``application``, ``cluster``,
``severity``; fields ``message`` (string) and ``value`` (float, when the finding had one);
time = when Slack accepted the message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime

from ..config import ALERT_BUCKET, ALERTED_BUCKET
from ..exceptions import ConfigError, InfluxDBError
from ..models.alerts import Alert, AlertRecord, AlertStatus, Finding
from .http import InfluxHTTP
from .influxdb import org_not_found

MEASUREMENT = "alert"
TAGS = ("check", "application", "cluster", "severity", "dedup_key")
RECORD_TAGS = (*TAGS, "status", "route")


def parse_csv(text: str) -> list[dict[str, str]]:
    """Rows of Flux's CSV answer (header row, no annotations), across all its tables.

    Flux repeats the header, after an empty line, whenever the columns change. An error
    met while streaming comes as a table with ``error`` and ``reference`` columns.
    """
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row or not any(row):
            header = None
            continue
        if header is None:
            header = row
            continue
        record = dict(zip(header, row, strict=False))
        if "error" in header and "reference" in header and "_time" not in header:
            raise InfluxDBError("POST", "/api/v2/query", 200, record.get("error") or "error")
        rows.append(record)
    return rows


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _status(text: str | None) -> AlertStatus:
    try:
        return AlertStatus(text or AlertStatus.FIRING.value)
    except ValueError:
        return AlertStatus.FIRING


def _float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_string(text: str) -> str:
    # Line protocol has no newline escape; a record's message is for people, so flatten it.
    flat = " ".join(text.splitlines())
    return flat.replace("\\", "\\\\").replace('"', '\\"')


def record_line(alert: Alert, route: str, when: datetime) -> str:
    """One ``alerted_`` point as line protocol (millisecond precision)."""
    tags = {
        "check": alert.check,
        "application": alert.application,
        "cluster": alert.cluster,
        "severity": alert.severity,
        "dedup_key": alert.dedup_key,
        "status": alert.status.value,
        "route": route,
    }
    tag_text = "".join(
        f",{key}={_escape_tag(value)}" for key, value in sorted(tags.items()) if value
    )
    fields = [f'message="{_escape_string(alert.message)}"']
    if alert.value is not None:
        fields.append(f"value={float(alert.value)!r}")
    millis = int(when.timestamp() * 1000)
    return f"{MEASUREMENT}{tag_text} {','.join(fields)} {millis}"


class AlertStore:
    """Reads findings and records, writes records. Buckets are fixed by the architecture."""

    def __init__(
        self,
        http: InfluxHTTP,
        org: str,
        *,
        findings_bucket: str = ALERT_BUCKET,
        records_bucket: str = ALERTED_BUCKET,
    ) -> None:
        self.http = http
        self.org = org
        self.findings_bucket = findings_bucket
        self.records_bucket = records_bucket

    def _config_error(self, error: InfluxDBError, bucket: str) -> ConfigError | None:
        text = error.server_message.lower()
        if error.status == 404 and "bucket" in text:
            return ConfigError(
                f"bucket {bucket} not found in organization {self.org!r} "
                "(run bucketmaker first, or give the token access to it)"
            )
        if "organization" in text and "not found" in text:
            return org_not_found(self.org)
        return None

    def _query(self, flux: str, bucket: str) -> list[dict[str, str]]:
        body = {
            "query": flux,
            "type": "flux",
            "dialect": {"header": True, "annotations": [], "delimiter": ","},
        }
        try:
            response = self.http.request(
                "POST",
                "/api/v2/query",
                params={"org": self.org},
                json=body,
                headers={"Accept": "text/csv"},
            )
        except InfluxDBError as error:
            raise self._config_error(error, bucket) or error from None
        return parse_csv(response.text)

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
                time=_time(row["_time"]),
                check=row.get("check", ""),
                application=row.get("application", ""),
                cluster=row.get("cluster", ""),
                severity=row.get("severity", ""),
                dedup_key=row.get("dedup_key", ""),
                message=row.get("message", ""),
                value=_float(row.get("value")),
            )
            for row in self._query(flux, self.findings_bucket)
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
                time=_time(row["_time"]),
                dedup_key=row.get("dedup_key", ""),
                status=_status(row.get("status")),
                check=row.get("check", ""),
                application=row.get("application", ""),
                cluster=row.get("cluster", ""),
                severity=row.get("severity", ""),
                route=row.get("route", ""),
                message=row.get("_value", ""),
            )
            for row in self._query(flux, self.records_bucket)
        ]

    def record(self, alerts: Iterable[Alert], route: str, when: datetime | None = None) -> None:
        """Write one record per alert; retried writes are idempotent (same series and time)."""
        moment = when or datetime.now(UTC)
        body = "\n".join(record_line(alert, route, moment) for alert in alerts)
        if not body:
            return
        try:
            self.http.request(
                "POST",
                "/api/v2/write",
                params={"org": self.org, "bucket": self.records_bucket, "precision": "ms"},
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except InfluxDBError as error:
            raise self._config_error(error, self.records_bucket) or error from None

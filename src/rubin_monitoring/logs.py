"""Logging to stderr, as text for people or one JSON object a line for Kubernetes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from .models.names import one_line


class TextFormatter(logging.Formatter):
    """Time, level, logger and message on one line: a line break or control character in a
    message (a name from the repository or a server's answer) is escaped, so it cannot forge
    log lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's name
        record.message = one_line(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(log_format: str, debug: bool) -> None:
    """Send every log record to stderr as text or JSON lines; DEBUG also makes the HTTP libraries
    talk."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("httpx", "httpcore", "git", "urllib3", "influxdb_client"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)

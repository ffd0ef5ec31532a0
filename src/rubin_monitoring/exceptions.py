"""Error types. Each carries a one-line message for the user and the exit code it maps to."""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_CHANGES_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFLUXDB_UNAVAILABLE = 3
EXIT_LEASE_HELD = 4

# Gravest first: the code a run exits with when it met several kinds of error.
_GRAVITY = (EXIT_INFLUXDB_UNAVAILABLE, EXIT_BAD_INPUT, EXIT_LEASE_HELD, EXIT_CHANGES_FAILED)


def exit_code(errors: Iterable[RubinMonitoringError], *, failed: bool) -> int:
    """The one exit-code rule of every job: the gravest error's code (3 InfluxDB refused the
    token or went away, 2 bad input, 4 another run holds the lease, 1 anything else); else 1 if
    ``failed`` (a change or delivery failed, or a conflict needs a person); else 0."""
    codes = {error.exit_code for error in errors}
    for code in _GRAVITY:
        if code in codes:
            return code
    return EXIT_CHANGES_FAILED if failed else EXIT_OK


class RubinMonitoringError(Exception):
    """Base class: ``str(error)`` is the one line shown to the user."""

    exit_code = EXIT_CHANGES_FAILED


class ConfigError(RubinMonitoringError):
    """A setting is missing or invalid."""

    exit_code = EXIT_BAD_INPUT


class InventoryError(RubinMonitoringError):
    """The configuration repository cannot be read or parsed."""

    exit_code = EXIT_BAD_INPUT


class InfluxDBError(RubinMonitoringError):
    """InfluxDB answered with an error status after retries."""

    retry_after: float | None = None
    """Seconds the server asked to wait (``Retry-After``), when it said."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.server_message = message
        super().__init__(f"InfluxDB answered {status} to {method} {path}: {message}")


class InfluxDBAuthError(InfluxDBError):
    """The token was refused, or lacks a permission.

    InfluxDB 2.7 answers both with 401; a missing permission says ``<permission> is
    unauthorized`` (for example ``write:orgs/<id>/buckets is unauthorized``) or ``not authorized
    to ...``; some endpoints use 403 for it, and task creation 500 ``failed to create task:
    unauthorized``.
    """

    exit_code = EXIT_INFLUXDB_UNAVAILABLE

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(method, path, status, message)
        lacking = message.endswith(" is unauthorized") or message.startswith("not authorized")
        if status != 401 or lacking:
            hint = "the token lacks the permission for this request"
        else:
            hint = "the token was refused (invalid or inactive token)"
        RubinMonitoringError.__init__(
            self, f"InfluxDB answered {status} to {method} {path}: {hint} ({message})"
        )


class InfluxDBUnavailableError(RubinMonitoringError):
    """InfluxDB could not be reached after retries."""

    exit_code = EXIT_INFLUXDB_UNAVAILABLE


class InfluxDBServerError(InfluxDBError, InfluxDBUnavailableError):
    """InfluxDB kept answering with a server error (5xx) through the retries: it is not
    working, whatever this run asked (exit 3)."""

    exit_code = EXIT_INFLUXDB_UNAVAILABLE


class InterruptedRunError(RubinMonitoringError):
    """The run was stopped by a signal (SIGTERM from Kubernetes, SIGINT from a terminal): it
    stopped before its next change and released its lease. Exit 128 + the signal's number."""

    def __init__(self, signal_number: int, name: str) -> None:
        self.exit_code = 128 + signal_number
        super().__init__(
            f"stopped by {name} before its next change: what was done stays, the next run converges"
        )


class LeaseHeldError(RubinMonitoringError):
    """Another run of a writing job holds the lease; this run changed nothing."""

    exit_code = EXIT_LEASE_HELD

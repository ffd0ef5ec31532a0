"""Leases: two runs that write must never interleave.

Before a writing job changes anything it takes its lease, a label in InfluxDB
(:mod:`rubin_monitoring.storage.leases`) whose unique name the server enforces. The lease
expires ``ttl`` seconds after it was last renewed; a worker thread renews it every third of
that while the run works, so a killed run blocks the next one for at most ``ttl``. A run that
finds the lease held waits up to ``wait`` seconds, then gives up with
:class:`LeaseHeldError` (exit code 4) naming the holder's job and since when. A run that finds it
expired takes it over. A run whose lease was taken over (it was too slow to renew) stops before
its next change.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType

from ..exceptions import LeaseHeldError, RubinMonitoringError
from ..interrupts import deferred
from ..models.names import one_line, shown
from ..models.ownership import MARKER_KEY, MARKER_VALUE
from ..storage.leases import LeaseRecord, LeaseStore, LeaseTakenError

log = logging.getLogger(__name__)

LEASE_PREFIX = "rubin-monitoring-lease-"
WRITERS = "writers"
"""The lease of bucketmaker, bucketmapper, taskmaker and tokenmaker: one writer at a time."""
NOTIFIER = "notifier"


# How far a lease's expiry may lie beyond this run's LEASE_TTL from now (clocks differ).
CLOCK_SKEW_SECONDS = 60.0


class LeaseState(StrEnum):
    """What an existing lease means for a run that wants it."""

    HELD = "held"
    EXPIRED = "expired"
    INVALID = "invalid"
    """Its expiry lies further ahead than a holder renewing every TTL/3 could have set: not a
    lease a run holds (a label written by hand, or to block the fleet); taken over."""
    FOREIGN = "foreign"


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lease_state(record: LeaseRecord, now: datetime, ttl_seconds: float) -> LeaseState:
    """Whether an existing lease blocks a run. Pure. A label of the lease's name the toolkit
    did not make is ``FOREIGN`` (never deleted); one with no valid expiry is ``EXPIRED``; one
    that expires later than ``ttl_seconds`` (plus :data:`CLOCK_SKEW_SECONDS`) from now is
    ``INVALID``: no run renewing it could have set that."""
    if record.properties.get(MARKER_KEY) != MARKER_VALUE:
        return LeaseState.FOREIGN
    expires = _time(record.properties.get("expires"))
    if expires is None or expires <= now:
        return LeaseState.EXPIRED
    if expires > now + timedelta(seconds=ttl_seconds + CLOCK_SKEW_SECONDS):
        return LeaseState.INVALID
    return LeaseState.HELD


def held_message(record: LeaseRecord) -> str:
    """The one line a run that cannot get the lease prints (the label's texts shortened and
    escaped: anyone with label write can set them)."""
    props = record.properties
    since, job, expires = (shown(props.get(key, "?")) for key in ("since", "job", "expires"))
    return (
        f"another run holds the lease {record.name} since {since} "
        f"(job {job}, expires {expires} unless renewed); nothing was changed: run again later"
    )


class LeaseLostError(LeaseHeldError):
    """The lease was taken over by another run (this run was too slow to renew it)."""


class Lease:
    """A lease held for the duration of a ``with`` block."""

    def __init__(
        self,
        store: LeaseStore,
        scope: str,
        job: str,
        *,
        ttl_seconds: float = 300,
        wait_seconds: float = 30,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.name = LEASE_PREFIX + scope
        self.job = job
        self.ttl = ttl_seconds
        self.wait = wait_seconds
        self.clock = clock
        self.sleep = sleep
        self.holder = uuid.uuid4().hex
        self.record: LeaseRecord | None = None
        self._since = ""
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        """True once another run took the lease over."""
        return self._lost.is_set()

    def lost_error(self) -> LeaseLostError | None:
        """Why the run must stop (the lease was taken over), or None: ``should_stop`` of
        :func:`rubin_monitoring.services.reconcile.reconcile`."""
        if not self.lost:
            return None
        return LeaseLostError(f"lease {self.name} was taken over by another run")

    def _properties(self) -> dict[str, str]:
        now = self.clock()
        return {
            MARKER_KEY: MARKER_VALUE,
            "holder": self.holder,
            "job": self.job,
            "since": self._since or now.isoformat(timespec="seconds"),
            "expires": (now + timedelta(seconds=self.ttl)).isoformat(timespec="milliseconds"),
        }

    def acquire(self) -> None:
        """Take the lease, waiting up to ``wait`` seconds; raise :class:`LeaseHeldError`."""
        deadline = time.monotonic() + self.wait
        while True:
            self._since = ""
            try:
                self.record = self.store.create(self.name, self._properties())
                self._since = self.record.properties.get("since", "")
                log.debug("took lease %s", self.name)
                return
            except LeaseTakenError:
                current = self.store.find(self.name)
            if current is None:
                continue  # released in between
            state = lease_state(current, self.clock(), self.ttl)
            if state is LeaseState.INVALID:
                log.warning(
                    "taking over lease %s: it expires %s, further ahead than LEASE_TTL (%gs) "
                    "allows; no run holds it (job %s, since %s)",
                    self.name,
                    one_line(current.properties.get("expires", "?")),
                    self.ttl,
                    one_line(current.properties.get("job", "?")),
                    one_line(current.properties.get("since", "?")),
                )
                self.store.delete(current.id)
                continue
            if state is LeaseState.FOREIGN:
                raise LeaseHeldError(
                    f"a label named {self.name} exists that the toolkit did not make; it blocks "
                    "the lease: delete it if nothing uses it"
                )
            if state is LeaseState.EXPIRED:
                log.warning(
                    "taking over the expired lease %s of job %s (since %s)",
                    self.name,
                    current.properties.get("job", "?"),
                    current.properties.get("since", "?"),
                )
                self.store.delete(current.id)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LeaseHeldError(held_message(current))
            log.info("waiting for the lease: %s", held_message(current))
            self.sleep(min(2.0, remaining))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            record = self.record
            if record is None:
                return
            try:
                if not self.store.renew(record.id, self._properties()):
                    self._lost.set()
                    log.error("lease %s was taken over by another run; stopping", self.name)
                    return
            except RubinMonitoringError as error:
                log.warning("could not renew lease %s: %s", self.name, error)

    def release(self) -> None:
        """Stop renewing and delete the lease (unless it was lost); it expires anyway. A
        signal arriving meanwhile does not cut the release short."""
        with deferred():
            self._release()

    def _release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.record is not None and not self.lost:
            try:
                self.store.delete(self.record.id)
            except RubinMonitoringError as error:
                log.warning(
                    "could not release lease %s (it expires by itself): %s", self.name, error
                )
        self.record = None

    def __enter__(self) -> Lease:
        self.acquire()
        self._thread = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

"""``silence add|query|expire``: silences made, listed and ended at run time, in the shape
Alertmanager's ``amtool`` users know.

A silence needs no taskmaker run: the notifier reads ``silences_`` on every run, so a new
silence applies from the next run and an expired one stops applying then. Every bad input is a
:class:`ConfigError` (one line, exit 2) raised before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..config import MAX_SILENCE_SECONDS
from ..durations import parse_duration
from ..exceptions import ConfigError
from ..models.matchers import Matcher, parse_matcher
from ..models.silences import Silence, SilenceState

DEFAULT_DURATION = "1h"
MAX_AUTHOR = 100
MAX_COMMENT = 1000


class SilenceStoreLike(Protocol):
    """What the silence commands need from ``silences_`` (see storage/silences.py)."""

    def silences(self) -> list[Silence]:
        """Every silence's latest state."""

    def save(self, silence: Silence, when: datetime | None = None) -> None:
        """Write the silence's state."""


def _one_line(text: str, what: str, limit: int) -> str:
    value = " ".join(text.split())
    if not value:
        raise ConfigError(f"silence add: {what} is empty")
    if len(value) > limit:
        raise ConfigError(f"silence add: {what} is longer than {limit} characters")
    return value


def _end(duration: str | None, end: str | None, now: datetime) -> datetime:
    if duration is not None and end is not None:
        raise ConfigError("silence add: give --duration or --end, not both")
    limit = f"{MAX_SILENCE_SECONDS // 86400}d"
    if end is not None:
        try:
            moment = datetime.fromisoformat(end.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"invalid --end {end!r}: not an RFC 3339 time such as 2025-06-01T14:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise ConfigError(
                f"invalid --end {end!r}: give a time zone (2025-06-01T14:00:00Z, or +01:00)"
            )
        if moment <= now:
            raise ConfigError(f"invalid --end {end!r}: it is in the past")
        if moment - now > timedelta(seconds=MAX_SILENCE_SECONDS):
            raise ConfigError(f"invalid --end {end!r}: a silence may last at most {limit}")
        return moment.astimezone(UTC)
    text = (duration if duration is not None else DEFAULT_DURATION).strip()
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise ConfigError(f"invalid --duration: {error}") from None
    if seconds <= 0:
        raise ConfigError(f"invalid --duration {text!r}: must be above 0")
    if seconds > MAX_SILENCE_SECONDS:
        raise ConfigError(f"invalid --duration {text!r}: a silence may last at most {limit}")
    return now + timedelta(seconds=seconds)


def new_silence(
    matchers: Sequence[str],
    *,
    author: str,
    comment: str,
    duration: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
    silence_id: str | None = None,
) -> Silence:
    """A silence from ``matchers`` (``cluster=summit`` ...) that starts now and lasts
    ``duration`` (default 1h) or until ``end``, at most 30 days. Refused with one line (exit 2):
    no matcher, a bad matcher, duration or end, an empty author or comment, or matchers that
    would also match an alert without any label (a silence must name what it silences)."""
    moment = now or datetime.now(UTC)
    if not matchers:
        raise ConfigError(
            "silence add: give at least one matcher, e.g. cluster=summit application=nublado"
        )
    parsed: list[Matcher] = []
    for text in matchers:
        try:
            parsed.append(parse_matcher(text))
        except ValueError as error:
            raise ConfigError(f"invalid matcher: {error}") from None
    if all(matcher.matches({}) for matcher in parsed):
        raise ConfigError(
            "silence add: these matchers match every alert; at least one must require a value "
            "(e.g. cluster=summit)"
        )
    ends_at = _end(duration, end, moment)
    return Silence(
        id=silence_id or str(uuid.uuid4()),
        matchers=tuple(parsed),
        starts_at=moment,
        ends_at=ends_at,
        created_by=_one_line(author, "--author", MAX_AUTHOR),
        comment=_one_line(comment, "--comment", MAX_COMMENT),
    )


@dataclass(frozen=True)
class SilenceAdded:
    """What ``silence add`` did: the silence it stored (its ID goes alone to stdout)."""

    silence: Silence


@dataclass(frozen=True)
class SilenceList:
    """What ``silence query`` found, as of ``now``."""

    silences: list[Silence]
    now: datetime
    expired: bool = False
    """Whether expired silences were asked for too."""


def add_silence(store: SilenceStoreLike, silence: Silence) -> SilenceAdded:
    """Store ``silence``; its ID is what ``silence add`` prints."""
    store.save(silence, silence.starts_at)
    return SilenceAdded(silence)


def query_silences(
    store: SilenceStoreLike, *, expired: bool = False, now: datetime | None = None
) -> SilenceList:
    """The active and pending silences (with ``expired``, the expired ones still stored too),
    the soonest to end first."""
    moment = now or datetime.now(UTC)
    found = [
        item
        for item in store.silences()
        if expired or item.state(moment) is not SilenceState.EXPIRED
    ]
    return SilenceList(sorted(found, key=lambda item: (item.ends_at, item.id)), moment, expired)


@dataclass(frozen=True)
class ExpireResult:
    """What ``silence expire`` did with one ID."""

    id: str
    status: str
    """``expired``, or ``already expired`` (nothing written)."""
    silence: Silence


@dataclass(frozen=True)
class SilencesExpired:
    """What ``silence expire`` did, per ID, as of ``now``."""

    results: list[ExpireResult]
    now: datetime


def expire_silences(
    store: SilenceStoreLike, ids: Iterable[str], *, now: datetime | None = None
) -> SilencesExpired:
    """End each silence of ``ids`` now: its end is set to now and it is written again (so the
    notifier's next run sends what it muted). An ID that is not stored is refused (exit 2)
    before anything is written; an already expired silence is left as it is."""
    moment = now or datetime.now(UTC)
    wanted = list(dict.fromkeys(item.strip() for item in ids))
    if not wanted or not all(wanted):
        raise ConfigError("silence expire: give the ID of a silence (see silence query)")
    stored = {item.id: item for item in store.silences()}
    unknown = [item for item in wanted if item not in stored]
    if unknown:
        raise ConfigError(f"silence expire: no silence with ID {unknown[0]!r} (see silence query)")
    results = []
    for key in wanted:
        current = stored[key]
        if current.state(moment) is SilenceState.EXPIRED:
            results.append(ExpireResult(key, "already expired", current))
            continue
        ended = replace(current, starts_at=min(current.starts_at, moment), ends_at=moment)
        # The latest point wins: write after the stored one even if this clock is behind.
        written = moment
        if current.updated_at is not None:
            written = max(moment, current.updated_at + timedelta(milliseconds=1))
        store.save(ended, written)
        results.append(ExpireResult(key, "expired", ended))
    return SilencesExpired(results, moment)

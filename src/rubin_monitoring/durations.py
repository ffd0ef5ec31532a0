"""Duration literals as InfluxDB and Flux write them (``1w``, ``7d``, ``1h30m``, ``30s``)."""

from __future__ import annotations

import re
from itertools import pairwise

UNIT_ORDER = "wdhms"
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)(w|d|h|m|s)")
_EXAMPLE = "30s, 5m, 1h or 1h30m"


def parse_duration(text: str, *, units: str = UNIT_ORDER, what: str = "duration") -> int:
    """Seconds in a Flux duration literal of whole seconds (``30s``, ``5m``, ``1h30m``).

    Units are ``w``, ``d``, ``h``, ``m`` and ``s`` (or those in ``units``), larger units first,
    each at most once, as Flux requires. Raise :class:`ValueError` naming ``text`` otherwise.
    """
    allowed = "".join(unit for unit in UNIT_ORDER if unit in units)
    if not isinstance(text, str) or not text or _PART.sub("", text) != "":
        raise ValueError(f"{what} {text!r} is not a Flux duration such as {_EXAMPLE}")
    parts = _PART.findall(text)
    positions = [UNIT_ORDER.index(unit) for _, unit in parts]
    if any(later <= earlier for earlier, later in pairwise(positions)):
        raise ValueError(f"{what} {text!r} must list larger units first, each once ({_EXAMPLE})")
    for _, unit in parts:
        if unit not in allowed:
            raise ValueError(f"{what} {text!r} may only use the units {', '.join(allowed)}")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_retention(text: str) -> int:
    """A bucket retention in seconds: a duration, or ``0``/``inf`` for infinite (0)."""
    value = text.strip().lower()
    if value in ("0", "inf", "infinite"):
        return 0
    return parse_duration(value, what="retention")


def format_duration(seconds: int) -> str:
    """The shortest literal for ``seconds``, largest units first (``604800`` -> ``1w``)."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    if seconds == 0:
        return "0s"
    parts = []
    rest = seconds
    for unit, size in _UNIT_SECONDS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def retention_policy_name(seconds: int) -> str:
    """The DBRP retention-policy name for a bucket's retention (``inf`` for infinite)."""
    return "inf" if seconds == 0 else format_duration(seconds)

"""Duration literals as InfluxDB and Flux write them (``1w``, ``7d``, ``90m``, ``30s``)."""

from __future__ import annotations

import re

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)(w|d|h|m|s)")


def parse_duration(text: str) -> int:
    """Seconds in a literal such as ``7d`` or ``1h30m``; ``0`` and ``inf`` mean infinite (0)."""
    value = text.strip().lower()
    if value in ("0", "inf", "infinite"):
        return 0
    if not value or _PART.sub("", value) != "":
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 1h, 7d or 2w")
    return sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(value))


def format_duration(seconds: int) -> str:
    """The shortest literal for ``seconds``, largest units first (``604800`` -> ``1w``)."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    if seconds == 0:
        return "0s"
    parts = []
    rest = seconds
    for unit, size in _UNITS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def retention_policy_name(seconds: int) -> str:
    """The DBRP retention-policy name for a bucket's retention (``inf`` for infinite)."""
    return "inf" if seconds == 0 else format_duration(seconds)

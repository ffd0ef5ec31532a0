"""The one ownership rule: which InfluxDB objects the toolkit created, and so may change.

Every object the toolkit creates carries, at the very end of its description, a marker in
parentheses: ``(managed-by=rubin-monitoring)``, optionally followed by exact ``key=value``
fields, e.g. ``Alert check cpu of mobu (managed-by=rubin-monitoring bucket=mobu check=cpu)``.

The marker is parsed, never searched for: the parenthesised group must close the description,
open with exactly ``managed-by=rubin-monitoring``, and hold only ``key=value`` fields whose keys
are lowercase words and whose values contain no whitespace, ``=`` or parentheses. A description
that merely contains the words (``NOT managed-by=rubin-monitoring``, or the marker followed by
more text) is not a marker.

Where InfluxDB records who made an object, that counts too: a task is the toolkit's only if its
``ownerID`` is the user of the token taskmaker runs with, and a token only if it belongs to the
user tokenmaker gives it to (see :mod:`rubin_monitoring.services.tasks` and
:mod:`rubin_monitoring.services.tokens`). A description can be copied by typing; an owner ID
cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MARKER_KEY = "managed-by"
MARKER_VALUE = "rubin-monitoring"
OWNER_MARKER = f"{MARKER_KEY}={MARKER_VALUE}"

_KEY = r"[a-z][a-z0-9_]*"
_VALUE = r"[^\s=()]+"
_FIELDS = re.compile(rf"^{_KEY}={_VALUE}$")
_MARKER = re.compile(rf"\((?P<body>{re.escape(OWNER_MARKER)}(?: {_KEY}={_VALUE})*)\)$")


def marker(fields: Mapping[str, str] | None = None) -> str:
    """The parenthesised marker with ``fields`` in the given order, e.g.
    ``(managed-by=rubin-monitoring bucket=mobu check=cpu)``.

    Raises :class:`ValueError` for a key or value the parser would not read back exactly.
    """
    parts = [OWNER_MARKER]
    for key, value in (fields or {}).items():
        part = f"{key}={value}"
        if key == MARKER_KEY or not _FIELDS.match(part):
            raise ValueError(f"{part!r} cannot be an ownership field")
        parts.append(part)
    return "(" + " ".join(parts) + ")"


def describe(text: str, fields: Mapping[str, str] | None = None) -> str:
    """A description for an object the toolkit creates: ``text`` followed by the marker."""
    return f"{text} {marker(fields)}"


def parse_marker(description: str | None) -> dict[str, str] | None:
    """The marker's fields (without ``managed-by``) if ``description`` ends with a marker,
    else None. A key given twice makes the marker invalid (None)."""
    if not description:
        return None
    match = _MARKER.search(description)
    if match is None:
        return None
    fields: dict[str, str] = {}
    for part in match["body"].split(" ")[1:]:
        key, _, value = part.partition("=")
        if key in fields:
            return None
        fields[key] = value
    return fields


def is_marked(description: str | None) -> bool:
    """True when ``description`` ends with the toolkit's marker (see :func:`parse_marker`)."""
    return parse_marker(description) is not None

"""Label matchers, in the shape Alertmanager's ``amtool`` users know: ``cluster=summit``,
``check!=cpu``, ``application=~nublado|portal``, ``severity!~info|warning``.

An alert's labels are its ``cluster``, ``application``, ``check`` and ``severity`` tags, and
``pod``: the pod part of an application check's ``dedup_key``
(``<check>/<cluster>/<application>/<namespace>/<pod>/<container>``), empty for other checks.

* ``=`` and ``!=`` compare the whole value; ``*`` (any characters) and ``?`` (one) in the value
  are wildcards, as in ``IGNORE_PODS`` (no label value the toolkit writes contains them), so
  ``pod=prepull-*`` matches every image pre-pull pod;
* ``=~`` and ``!~`` take a regular expression that must match the whole value (anchored, as in
  Alertmanager).

Matchers are used by silences and by the routes file's inhibition rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .checks import BUCKET_CHECKS

LABELS: tuple[str, ...] = ("cluster", "application", "check", "severity", "pod")
"""The labels a matcher can name."""

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
MAX_VALUE = 1000


class MatchOp(StrEnum):
    """How a matcher compares: equal (glob), not equal (glob), regex, not regex."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


def _glob(value: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards, everything else literal."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in value)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``label`` ``op`` ``value``."""

    label: str
    op: MatchOp
    value: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(
                f"unknown label {self.label!r} in matcher {self}: use {', '.join(LABELS)}"
            )
        if len(self.value) > MAX_VALUE:
            raise ValueError(f"matcher {self.label}{self.op}...: value longer than {MAX_VALUE}")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                pattern = re.compile(self.value, re.DOTALL)
            except re.error as error:
                raise ValueError(f"matcher {self}: invalid regular expression ({error})") from None
        else:
            pattern = _glob(self.value)
        object.__setattr__(self, "_pattern", pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label's value (empty when absent) satisfies the matcher."""
        found = self._pattern.fullmatch(labels.get(self.label, "")) is not None
        return found if self.op in (MatchOp.EQ, MatchOp.RE) else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op.value}{self.value}"

    def to_json(self) -> list[str]:
        """``[label, op, value]``: how matchers are stored (no parsing needed to read them)."""
        return [self.label, self.op.value, self.value]

    @classmethod
    def from_json(cls, data: object) -> Matcher:
        """A matcher stored by :meth:`to_json`; raises ValueError for anything else."""
        if not (
            isinstance(data, list) and len(data) == 3 and all(isinstance(x, str) for x in data)
        ):
            raise ValueError(f"not a stored matcher: {data!r}")
        label, op, value = data
        try:
            operator = MatchOp(op)
        except ValueError:
            raise ValueError(f"not a matcher operator: {op!r}") from None
        return cls(label, operator, value)


def parse_matcher(text: str) -> Matcher:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``; the value may
    be in double quotes (``cluster="summit"``). Raises :class:`ValueError` with one line."""
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(
            f"matcher {text!r} is not label=value, label!=value, label=~regex or label!~regex "
            f"(labels: {', '.join(LABELS)})"
        )
    label, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return Matcher(label, MatchOp(op), value)


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Each of ``texts`` parsed (see :func:`parse_matcher`), in order."""
    return tuple(parse_matcher(text) for text in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches ``labels`` (an empty list matches everything)."""
    return all(matcher.matches(labels) for matcher in matchers)


def pod_of(check: str, dedup_key: str) -> str:
    """The pod an application check's ``dedup_key`` names, or ``""``."""
    if check not in BUCKET_CHECKS:
        return ""
    parts = dedup_key.split("/")
    return parts[4] if len(parts) == 6 else ""

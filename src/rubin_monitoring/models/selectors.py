"""Kubernetes label selectors (``app=hub,tier in (a,b),!canary``): parsed, validated, printed,
and complemented, all pure.

Telegraf matches a pod against ``kubernetes_label_selector`` with the apimachinery ``labels``
package, which reads this syntax. Set-based and equality requirements only: ``gt``/``lt``
(``replicas>1``) are refused, because their complement has no selector.

The complement is what lets annotation discovery skip the pods a catalog entry already
scrapes: a selector is a conjunction of requirements, its complement a disjunction, which a
selector cannot say; :func:`complement` writes the complement of a union of selectors as a
list of selectors that match disjoint sets of pods (so a pod is scraped by one of them at most).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

# apimachinery's validation: a qualified name (optional DNS-subdomain prefix and "/"), values of
# at most 63 characters from the same alphabet (or empty).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")
_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)$")
MAX_KEY_PREFIX = 253


class Operator(Enum):
    """A requirement's operator, as apimachinery spells it."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_NEGATION = {
    Operator.EQUALS: Operator.NOT_EQUALS,
    Operator.NOT_EQUALS: Operator.EQUALS,
    Operator.IN: Operator.NOT_IN,
    Operator.NOT_IN: Operator.IN,
    Operator.EXISTS: Operator.DOES_NOT_EXIST,
    Operator.DOES_NOT_EXIST: Operator.EXISTS,
}


class SelectorError(ValueError):
    """A selector that is not valid Kubernetes label-selector syntax (the message says why)."""


@dataclass(frozen=True)
class Requirement:
    """One requirement: ``key`` ``operator`` ``values`` (sorted; one for = and !=)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def negated(self) -> Requirement:
        """The requirement a label set meets exactly when it does not meet this one
        (``a!=1`` and ``a notin (...)`` also match pods without label ``a``, as Kubernetes
        defines them)."""
        return Requirement(self.key, _NEGATION[self.operator], self.values)

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a pod with ``labels`` meets the requirement (Kubernetes semantics)."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in (Operator.EQUALS, Operator.IN):
            return present and value in self.values
        if self.operator in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present or value not in self.values
        if self.operator is Operator.EXISTS:
            return present
        return not present

    def __str__(self) -> str:
        if self.operator in (Operator.EQUALS, Operator.NOT_EQUALS):
            return f"{self.key}{self.operator.value}{self.values[0]}"
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {self.operator.value} ({','.join(self.values)})"
        if self.operator is Operator.EXISTS:
            return self.key
        return f"!{self.key}"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements (every one must hold), in a canonical order."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a pod with ``labels`` is selected."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _split(text: str) -> list[str]:
    """``text`` cut at the commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("a ')' without its '('")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise SelectorError("a '(' without its ')'")
    parts.append(current)
    return parts


def _key(text: str) -> str:
    prefix, _, name = text.rpartition("/")
    if not _KEY.match(text) or len(prefix) > MAX_KEY_PREFIX or len(name) > 63:
        raise SelectorError(f"{text!r} is not a valid label key")
    return text


def _value(text: str) -> str:
    if not _VALUE.match(text):
        raise SelectorError(f"{text!r} is not a valid label value")
    return text


def _requirement(text: str) -> Requirement:
    text = text.strip()
    if not text:
        raise SelectorError("an empty requirement (two commas in a row, or a trailing comma)")
    if any(op in text for op in ("<", ">")):
        raise SelectorError(f"{text!r}: gt/lt requirements are not supported")
    matched = _SET.match(text)
    if matched:
        values = [value.strip() for value in matched["values"].split(",")]
        if values == [""]:
            raise SelectorError(f"{text!r}: an empty set of values")
        operator = Operator.IN if matched["op"] == "in" else Operator.NOT_IN
        unique = tuple(sorted({_value(value) for value in values}))
        return Requirement(_key(matched["key"]), operator, unique)
    matched = _EQUALITY.match(text)
    if matched:
        operator = Operator.NOT_EQUALS if matched["op"] == "!=" else Operator.EQUALS
        return Requirement(_key(matched["key"]), operator, (_value(matched["value"]),))
    if text.startswith("!"):
        return Requirement(_key(text[1:].strip()), Operator.DOES_NOT_EXIST)
    if re.match(r"^\S+$", text):
        return Requirement(_key(text), Operator.EXISTS)
    raise SelectorError(
        f"{text!r} is not a requirement (key=value, key!=value, "
        "key in (a,b), key notin (a,b), key or !key)"
    )


def _canonical(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    unique = set(requirements)
    return tuple(sorted(unique, key=lambda r: (r.key, r.operator.value, r.values)))


def parse_selector(text: str) -> Selector:
    """The selector ``text`` says; :class:`SelectorError` if it is not valid. An empty text
    (which would select every pod) is refused too."""
    if not text.strip():
        raise SelectorError("empty (it would select every pod)")
    return Selector(_canonical(_requirement(part) for part in _split(text)))


def _satisfiable(requirements: Sequence[Requirement]) -> bool:
    """False when the requirements contradict each other on some key (so the conjunction
    selects nothing); True otherwise."""
    for key, group in itertools.groupby(sorted(requirements, key=lambda r: r.key), lambda r: r.key):
        del key
        allowed: set[str] | None = None
        forbidden: set[str] = set()
        must_exist = must_not_exist = False
        for requirement in group:
            if requirement.operator in (Operator.EQUALS, Operator.IN):
                values = set(requirement.values)
                allowed = values if allowed is None else allowed & values
                must_exist = True
            elif requirement.operator in (Operator.NOT_EQUALS, Operator.NOT_IN):
                forbidden |= set(requirement.values)
            elif requirement.operator is Operator.EXISTS:
                must_exist = True
            else:
                must_not_exist = True
        if must_exist and must_not_exist:
            return False
        if allowed is not None and not allowed - forbidden:
            return False
    return True


def _negation(selector: Selector) -> list[list[Requirement]]:
    """Not (r1 and r2 and ... rn), as n disjoint conjunctions: not r1; r1 and not r2; ..."""
    requirements = selector.requirements
    return [
        [*requirements[:index], requirement.negated()]
        for index, requirement in enumerate(requirements)
    ]


def complement(selectors: Sequence[Selector], *, limit: int = 64) -> list[Selector]:
    """Selectors matching, together, exactly the pods none of ``selectors`` matches, and each
    pod by one of them at most. With no selectors, one empty selector (every pod); when the
    selectors leave no pod out, none. Contradictory combinations are left out.
    :class:`SelectorError` if it would take more than ``limit`` selectors (many entries with
    many requirements in one namespace)."""
    combined: list[list[Requirement]] = [[]]
    for selector in selectors:
        combined = [
            [*first, *second]
            for first in combined
            for second in _negation(selector)
            if _satisfiable([*first, *second])
        ]
        if len(combined) > limit:
            raise SelectorError(
                f"the complement of these selectors takes more than {limit} selectors"
            )
    return [Selector(_canonical(requirements)) for requirements in combined]

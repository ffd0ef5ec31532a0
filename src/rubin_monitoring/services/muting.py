"""What keeps an alert from being sent although it fires: inhibition and silences. Pure.

The notifier applies them in Alertmanager's order, before it looks at what was already sent:

1. **Inhibition** (:func:`inhibit`): a firing alert that an inhibition rule's source matches
   mutes the alerts its target matches (with the rule's ``equal`` labels the same). Every
   current firing alert can be a source, whether or not it is itself inhibited or silenced.
2. **Silences** (:func:`silence`): an active silence whose matchers all match an alert mutes it.

A muted alert is reported, not sent, and not recorded in ``alerted_``: once the silence ends or
the source stops firing, the next run sends it (unless it was sent within the repeat interval
before it was muted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ..models.alerts import Alert, AlertStatus, InhibitedAlert, InhibitRule, SilencedAlert
from ..models.matchers import matches_all
from ..models.silences import Silence


def inhibit(
    alerts: Sequence[Alert], rules: Iterable[InhibitRule]
) -> tuple[list[Alert], list[InhibitedAlert]]:
    """``alerts`` split into those no rule inhibits and those inhibited (each with the first
    rule and source that does, as :meth:`InhibitRule.inhibits` decides). Resolved notices are
    never inhibited. Sources are indexed by their ``equal`` labels, so a flood of alerts costs
    one pass per rule, not one per pair."""
    labelled = [(alert, alert.labels) for alert in alerts]
    firing = [(alert, labels) for alert, labels in labelled if alert.status is AlertStatus.FIRING]
    indexed: list[tuple[InhibitRule, dict[tuple[str, ...], list[tuple[Alert, dict[str, str]]]]]]
    indexed = []
    for rule in rules:
        by_equal: dict[tuple[str, ...], list[tuple[Alert, dict[str, str]]]] = {}
        for alert, labels in firing:
            if matches_all(rule.source, labels):
                key = tuple(labels[label] for label in rule.equal)
                by_equal.setdefault(key, []).append((alert, labels))
        indexed.append((rule, by_equal))
    kept: list[Alert] = []
    inhibited: list[InhibitedAlert] = []
    for alert, labels in labelled:
        found = None
        if alert.status is AlertStatus.FIRING:
            found = _inhibitor(alert, labels, indexed)
        if found is None:
            kept.append(alert)
        else:
            inhibited.append(found)
    return kept, inhibited


def _inhibitor(
    target: Alert,
    labels: dict[str, str],
    indexed: Sequence[
        tuple[InhibitRule, dict[tuple[str, ...], list[tuple[Alert, dict[str, str]]]]]
    ],
) -> InhibitedAlert | None:
    for rule, by_equal in indexed:
        if not matches_all(rule.target, labels):
            continue
        both = matches_all(rule.source, labels)
        for source, source_labels in by_equal.get(tuple(labels[k] for k in rule.equal), ()):
            if source.dedup_key == target.dedup_key:
                continue
            if both and matches_all(rule.target, source_labels):
                continue  # matches both sides, as the target does
            return InhibitedAlert(target, rule.name, source.dedup_key)
    return None


def silence(
    alerts: Sequence[Alert], silences: Iterable[Silence], now: datetime
) -> tuple[list[Alert], list[SilencedAlert]]:
    """``alerts`` split into those no silence active at ``now`` matches and those silenced
    (each with the silence that ends last among those matching it)."""
    active = sorted(
        (item for item in silences if item.active(now)),
        key=lambda item: item.ends_at,
        reverse=True,
    )
    kept: list[Alert] = []
    silenced: list[SilencedAlert] = []
    for alert in alerts:
        labels = alert.labels
        match = next((item for item in active if item.matches(labels)), None)
        if match is None:
            kept.append(alert)
        else:
            silenced.append(SilencedAlert(alert, match.id))
    return kept, silenced

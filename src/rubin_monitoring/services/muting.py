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
from ..models.silences import Silence


def inhibit(
    alerts: Sequence[Alert], rules: Iterable[InhibitRule]
) -> tuple[list[Alert], list[InhibitedAlert]]:
    """``alerts`` split into those no rule inhibits and those inhibited (each with the first
    rule and source that does). Resolved notices are never inhibited."""
    rules = list(rules)
    sources = [alert for alert in alerts if alert.status is AlertStatus.FIRING]
    kept: list[Alert] = []
    inhibited: list[InhibitedAlert] = []
    for alert in alerts:
        found = None
        if alert.status is AlertStatus.FIRING:
            found = next(
                (
                    InhibitedAlert(alert, rule.name, source.dedup_key)
                    for rule in rules
                    for source in sources
                    if rule.inhibits(source, alert)
                ),
                None,
            )
        if found is None:
            kept.append(alert)
        else:
            inhibited.append(found)
    return kept, inhibited


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

"""The alert every producer raises, and the one call producers make (`AlertSink.submit`).

An alert is generic: who raised it (`kind`: budget, detector, guardrail, slo, ...), the
rule that fired, a severity, a one-line summary for people, a dedup key (PagerDuty and the
history use it to fold repeats), optional labels and runbook, and the producer's own facts
in `details` (a budget alert: window, pct, spent_usd, ...). Producers never import the
delivery code: they are handed an `AlertSink`.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal, Protocol

import msgspec

Severity = Literal["info", "warning", "critical"]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str  # what raised it: budget | detector | guardrail | slo | ...
    rule_id: str  # the rule, budget or detector that fired
    severity: Severity
    summary: str
    dedup_key: str
    notify: tuple[str, ...]  # target names from gateway-notification-targets
    ts: float
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    runbook_url: str | None = None
    runbook: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The alert as webhooks receive it and the history stores it: flat, the producer's
        details beside the common fields (`message` is the summary: the name receivers
        and stored rows have always had). Labels and runbook appear only when set."""
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "rule_id": self.rule_id,
            **self.details,
            "notify": list(self.notify),
            "message": self.summary,
            "ts": self.ts,
            "severity": self.severity,
            "dedup_key": self.dedup_key,
        }
        if self.labels:
            data["labels"] = dict(self.labels)
        if self.runbook_url is not None:
            data["runbook_url"] = self.runbook_url
        if self.runbook is not None:
            data["runbook"] = self.runbook
        return data


class AlertSink(Protocol):
    def submit(self, alert: Alert) -> None:
        """Hand an alert over for delivery; returns at once (producers call it from the
        request path)."""
        ...


class CollectingAlertSink:
    """Keeps the latest alerts in memory: for tests, and for a gateway with no targets."""

    def __init__(self, limit: int = 500) -> None:
        self.alerts: deque[Alert] = deque(maxlen=limit)

    def submit(self, alert: Alert) -> None:
        self.alerts.append(alert)

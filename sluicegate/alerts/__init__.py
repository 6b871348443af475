"""Alerts: raised by anything (budgets today; detectors, guardrails and SLOs later),
delivered here to notification targets, deduplicated downstream by `dedup_key`, and kept
in a history.

alert.py       Alert (plain data), AlertSink Protocol (what producers call), a collecting sink
targets.py     gateway-notification-targets document: Slack, PagerDuty, webhook targets
payloads.py    one payload builder per target kind (registered by kind)
delivery.py    Notifier: background delivery with retries, history, the alert store
store.py       AlertRow, AlertStore Protocol; MemoryAlertStore, SqlAlertStore

A producer imports only `alert.py`; the composition root builds the `Notifier` and hands
it to producers as their `AlertSink`.
"""

from sluicegate.alerts.alert import Alert, AlertSink, CollectingAlertSink

__all__ = ["Alert", "AlertSink", "CollectingAlertSink"]

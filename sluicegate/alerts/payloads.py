"""What each kind of notification target receives: one builder per kind, looked up by the
target's `kind` when the notifier sends (a new kind is a model in targets.py, a builder
here and one line in `PAYLOADS`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import orjson

from sluicegate.alerts.alert import Alert
from sluicegate.alerts.targets import NotificationTarget, PagerDutyTarget, WebhookTarget

Payload = tuple[bytes, dict[str, str]]  # body, headers
PayloadBuilder = Callable[[Any, Alert, str], Payload]  # (target, alert, source)

_JSON = {"Content-Type": "application/json"}


def slack(target: Any, alert: Alert, source: str) -> Payload:
    return orjson.dumps({"text": alert.summary}), dict(_JSON)


def pagerduty(target: PagerDutyTarget, alert: Alert, source: str) -> Payload:
    """Events API v2 `trigger`; PagerDuty folds repeats with the alert's dedup key."""
    event = {
        "routing_key": target.routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.summary[:1024],
            "source": source,
            "severity": alert.severity,
            "component": alert.kind,
            "custom_details": alert.to_dict(),
        },
    }
    return orjson.dumps(event), dict(_JSON)


def webhook(target: WebhookTarget, alert: Alert, source: str) -> Payload:
    return orjson.dumps(alert.to_dict()), {**_JSON, **target.headers}


PAYLOADS: Mapping[str, PayloadBuilder] = MappingProxyType(
    {"slack": slack, "pagerduty": pagerduty, "webhook": webhook}
)


def payload_for(target: NotificationTarget, alert: Alert, source: str) -> Payload:
    return PAYLOADS[target.kind](target, alert, source)

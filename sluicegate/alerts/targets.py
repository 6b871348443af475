"""The `gateway-notification-targets` document: names used in `notify:` lists
(`slack:#ai-budget-alerts`) mapped to endpoints, one model per target kind (pydantic v2,
unknown fields refused). The config registry imports `NotificationTargetsDocument` from
here; `payloads.py` has one builder per kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_URL = r"^https?://"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackTarget(_Strict):
    """A Slack-compatible incoming webhook: receives `{"text": ...}`."""

    kind: Literal["slack"]
    url: Annotated[str, Field(pattern=_URL)]


class PagerDutyTarget(_Strict):
    """PagerDuty Events API v2."""

    kind: Literal["pagerduty"]
    url: Annotated[str, Field(pattern=_URL)] = "https://events.pagerduty.com/v2/enqueue"
    routing_key: Annotated[str, Field(min_length=1)]


class WebhookTarget(_Strict):
    """Any HTTP endpoint: receives the alert as JSON, with these extra headers."""

    kind: Literal["webhook"]
    url: Annotated[str, Field(pattern=_URL)]
    headers: dict[str, str] = {}


NotificationTarget = Annotated[
    SlackTarget | PagerDutyTarget | WebhookTarget, Field(discriminator="kind")
]


class NotificationTargetsDocument(_Strict):
    """Names used in `notify:` lists (`slack:#ai-budget-alerts`) mapped to endpoints."""

    name: Annotated[str, Field(min_length=1)]
    type: Literal["gateway-notification-targets"]
    description: str | None = None
    targets: dict[str, NotificationTarget]

    @model_validator(mode="after")
    def _names_match_kinds(self) -> NotificationTargetsDocument:
        for name, target in self.targets.items():
            prefix = name.split(":", 1)[0] if ":" in name else None
            if prefix in ("slack", "pagerduty", "webhook") and prefix != target.kind:
                raise ValueError(f"target '{name}' is named {prefix}: but has kind {target.kind}")
        return self


Targets = Mapping[str, NotificationTarget] | Iterable[NotificationTargetsDocument]
"""What a notifier is given: a name -> target map, or the documents themselves."""


def target_map(targets: Targets) -> dict[str, NotificationTarget]:
    """One name -> target map; a later document's name wins over an earlier one's."""
    if isinstance(targets, Mapping):
        return dict(targets)
    merged: dict[str, NotificationTarget] = {}
    for doc in targets:
        merged.update(doc.targets)
    return merged

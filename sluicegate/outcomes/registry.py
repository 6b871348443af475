"""Every webhook receiver kind, by name: a new sender (an incident tool, another
helpdesk) is a module with a `KIND` and one line here."""

from __future__ import annotations

from sluicegate.outcomes import github, helpdesk
from sluicegate.outcomes.webhooks import WebhookKind

WEBHOOK_KINDS: tuple[WebhookKind, ...] = (github.KIND, helpdesk.KIND)

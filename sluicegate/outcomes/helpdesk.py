"""A helpdesk's "ticket solved" webhook: a solved or closed ticket is a `ticket_closed`
outcome.

The body is shaped like Zendesk's ticket JSON (what a Zendesk trigger's webhook action
sends when its JSON body is written with ticket placeholders; other helpdesks can send
the same shape):

    {"ticket": {"id": 35436, "status": "solved", "url": "https://...",
                "updated_at": "2026-05-01T12:00:00Z",
                "custom_fields": [{"id": 360001234, "value": "sess-42"}]}}

The session id is the value of the custom field whose `id` (or `name`, when the sender
includes one) is the configured `helpdesk_session_field`. The sender proves itself with
the shared secret in `X-Sluice-Webhook-Secret` (compared in constant time). A ticket is
one outcome: its id is the external id, so solving it again is stored once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from sluicegate.errors import InvalidRequest
from sluicegate.identity.envelope import is_envelope_value
from sluicegate.model.storable import first_unstorable
from sluicegate.outcomes.intake import decode_json, outcome_time
from sluicegate.outcomes.model import NewOutcome, OutcomeKind, OutcomeSource
from sluicegate.outcomes.webhooks import (
    Received,
    Verdict,
    WebhookKind,
    WebhookSettings,
    refuse,
    same_secret,
)

SECRET_HEADER = "x-sluice-webhook-secret"
CLOSED_STATUSES = frozenset({"solved", "closed"})
MAX_FIELDS = 1000

_Id = int | Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class _CustomField(msgspec.Struct):
    id: _Id
    value: Any = None
    name: str | None = None


class _Ticket(msgspec.Struct):
    id: _Id
    status: Annotated[str, msgspec.Meta(max_length=64)]
    url: str | None = None
    updated_at: str | None = None
    custom_fields: Annotated[list[_CustomField], msgspec.Meta(max_length=MAX_FIELDS)] = []


class _Delivery(msgspec.Struct):
    ticket: _Ticket


class HelpdeskReceiver:
    def __init__(self, secret: str, session_field: str) -> None:
        self._secret = secret
        self._field = session_field

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        sent = headers.get(SECRET_HEADER)
        if sent is None:
            raise refuse(
                "no X-Sluice-Webhook-Secret header: send SLUICEGATE_HELPDESK_WEBHOOK_SECRET in it",
                "secret_missing",
            )
        if not same_secret(sent, self._secret):
            raise refuse("X-Sluice-Webhook-Secret is not the configured secret", "secret_invalid")

    def read(self, headers: Mapping[str, str], body: bytes) -> Received:
        ticket = decode_json(body, _Delivery).ticket
        ticket_id = str(ticket.id)
        if first_unstorable(ticket_id) is not None:
            raise InvalidRequest(
                "ticket.id holds a character that cannot be stored", param="ticket.id"
            )
        status = ticket.status.strip().lower()
        if status not in CLOSED_STATUSES:
            return Received.ignored(
                f"ticket {ticket_id} is {status!r}: only solved or closed tickets are outcomes"
            )
        session = self._session(ticket.custom_fields)
        if session is None:
            return Received.ignored(
                f"ticket {ticket_id} has no session: its custom field {self._field!r} is "
                "missing or empty"
            )
        if not is_envelope_value(session):
            return Received.ignored(
                f"ticket {ticket_id}: the session id {session[:64]!r} is not one a request "
                "can carry (1-128 letters, digits and . _ - : @ / + = # ~)"
            )
        return Received(
            Verdict.OUTCOME,
            outcome=NewOutcome(
                source=OutcomeSource.HELPDESK,
                external_id=ticket_id,
                kind=OutcomeKind.TICKET_CLOSED,
                session_id=session,
                url=_url(ticket.url),
                ts=_updated_at(ticket.updated_at),
                extra={"ticket_id": ticket_id, "status": status},
            ),
        )

    def _session(self, fields: list[_CustomField]) -> str | None:
        for field in fields:
            if str(field.id) == self._field or field.name == self._field:
                return _text(field.value)
        return None


def _text(value: Any) -> str | None:
    """A custom field's value as a session id: text, or a number written as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _url(value: str | None) -> str | None:
    """Zendesk's `{{ticket.url}}` has no scheme (`acme.zendesk.com/agent/tickets/1`)."""
    if not value or first_unstorable(value) is not None:
        return None
    if not value.startswith(("https://", "http://")):
        value = "https://" + value
    return value[:2048]


def _updated_at(value: str | None) -> float | None:
    """When the ticket was solved, if the sender says; else it is received now."""
    if not value:
        return None
    try:
        return outcome_time(value, "ticket.updated_at", time.time())
    except InvalidRequest:
        return None


def _build(settings: WebhookSettings) -> HelpdeskReceiver | None:
    if not settings.helpdesk_secret:
        return None
    return HelpdeskReceiver(settings.helpdesk_secret, settings.helpdesk_session_field)


KIND = WebhookKind(
    name="helpdesk",
    secret_env="SLUICEGATE_HELPDESK_WEBHOOK_SECRET",
    build=_build,
    auth_header="X-Sluice-Webhook-Secret",
    auth_description="the shared secret, as configured",
)

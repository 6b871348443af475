"""Outcomes in: `POST /api/outcomes` and `GET /api/outcomes` (behind the admin gate, with
roles), and one webhook route per receiver kind, `POST /api/outcomes/<name>`, which the
gate lets through without an admin key (`webhook_paths`): the sender proves itself.

Who may do what: recording needs `admin` or `platform`; listing also `finance`, and a
`team-lead` sees the outcomes of sessions that have a ledger row of one of its teams.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.errors import InvalidRequest, NotFound, PayloadTooLarge
from sluicegate.ledger.store import render_ts
from sluicegate.outcomes.intake import MAX_BODY_BYTES, checked_id, decode_outcome
from sluicegate.outcomes.model import (
    Outcome,
    OutcomeFilters,
    OutcomeKind,
    OutcomeSource,
    Recorded,
)
from sluicegate.outcomes.registry import WEBHOOK_KINDS
from sluicegate.outcomes.store import MAX_PAGE, OutcomeStore
from sluicegate.outcomes.webhooks import (
    Verdict,
    WebhookKind,
    WebhookReceiver,
    WebhookSettings,
    webhook_path,
)
from sluicegate.server.admin_api import json_response, parse_time
from sluicegate.server.roles import Role, analytics_scope, require_role
from sluicegate.server.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]

RECORDERS = (Role.PLATFORM,)  # and admin
READERS = (Role.PLATFORM, Role.FINANCE, Role.TEAM_LEAD)  # and admin; team leads scoped


def webhook_settings(settings: Settings) -> WebhookSettings:
    return WebhookSettings(
        github_secret=settings.github_webhook_secret,
        helpdesk_secret=settings.helpdesk_webhook_secret,
        helpdesk_session_field=settings.helpdesk_session_field,
    )


def webhook_paths() -> frozenset[str]:
    """The paths `AdminGate` lets through without an admin key."""
    return frozenset(webhook_path(kind.name) for kind in WEBHOOK_KINDS)


def outcome_routes(store: OutcomeStore, settings: WebhookSettings) -> list[Route]:
    api = OutcomesApi(store)
    return [
        Route("/api/outcomes", api.record, methods=["POST"]),
        Route("/api/outcomes", api.list, methods=["GET"]),
        *(
            Route(
                webhook_path(kind.name),
                webhook(kind, kind.build(settings), store),
                methods=["POST"],
            )
            for kind in WEBHOOK_KINDS
        ),
    ]


def outcome_view(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the API returns it: times as ISO-8601 UTC, and as unix seconds in
    `ts_unix` and `received_at_unix`."""
    view: dict[str, Any] = msgspec.to_builtins(outcome)
    view["ts"], view["ts_unix"] = render_ts(outcome.ts), outcome.ts
    view["received_at"] = render_ts(outcome.received_at)
    view["received_at_unix"] = outcome.received_at
    return view


class OutcomesApi:
    def __init__(self, store: OutcomeStore) -> None:
        self._store = store

    async def record(self, request: Request) -> Response:
        require_role(request, *RECORDERS)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"an outcome is at most {MAX_BODY_BYTES} bytes of JSON")
        recorded = await self._store.record(decode_outcome(body))
        return _recorded_response(recorded, outcome_view(recorded.outcome))

    async def list(self, request: Request) -> Response:
        scope = analytics_scope(require_role(request, *READERS))
        q = request.query_params
        filters = OutcomeFilters(
            source=_choice(q.get("source"), OutcomeSource, "source"),
            kind=_choice(q.get("kind"), OutcomeKind, "kind"),
            session_id=_optional_id(q.get("session_id"), "session_id"),
            workflow_tag=_optional_id(q.get("workflow_tag"), "workflow_tag"),
            since=parse_time(q.get("since"), "since"),
            until=parse_time(q.get("until"), "until"),
            teams=scope.teams,
        )
        page = await self._store.list(filters, _limit(q.get("limit")), q.get("cursor") or None)
        return json_response(
            {"data": [outcome_view(o) for o in page.data], "next_cursor": page.next_cursor}
        )


def webhook(kind: WebhookKind, receiver: WebhookReceiver | None, store: OutcomeStore) -> Handler:
    """The route of one receiver kind: 404 when not configured, 401 when the sender does
    not prove itself, then 201/200 (recorded / already recorded), 202 (ignored, with the
    reason) or 200 (a ping)."""

    async def receive(request: Request) -> Response:
        if receiver is None:
            raise NotFound(
                f"the {kind.name} webhook is not configured: set {kind.secret_env} where "
                "the gateway runs (see docs/outcomes.md)",
                code="webhook_not_configured",
            )
        body = await request.body()
        receiver.verify(request.headers, body)
        received = receiver.read(request.headers, body)
        if received.verdict is Verdict.PING:
            return json_response({"status": "ping", "reason": received.reason})
        if received.outcome is None:
            return json_response({"status": "ignored", "reason": received.reason}, status=202)
        recorded = await store.record(received.outcome)
        status = "recorded" if recorded.created else "already_recorded"
        payload = {"status": status, "outcome": outcome_view(recorded.outcome)}
        return _recorded_response(recorded, payload)

    return receive


def _recorded_response(recorded: Recorded, payload: dict[str, Any]) -> Response:
    """201 for an outcome stored now; 200 for one stored before (same source and
    external id), which is returned as it was stored."""
    return json_response(payload, status=201 if recorded.created else 200)


_Choice = TypeVar("_Choice", OutcomeSource, OutcomeKind)


def _choice(value: str | None, enum: type[_Choice], param: str) -> _Choice | None:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(member.value for member in enum)
        raise InvalidRequest(f"{param} must be one of {names}", param=param) from None


def _optional_id(value: str | None, param: str) -> str | None:
    return checked_id(value, param) if value else None


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 50
    digits = value.isascii() and value.isdigit() and len(value) <= 6
    if not digits or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}", param="limit")
    return int(value)

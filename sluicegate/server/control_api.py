"""Control-room JSON endpoints that read live state: budgets, alerts, routing targets.
Who may call each is `access.ACCESS`; budgets are narrowed here to what the caller's
role may see (`visible_budgets`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.errors import InvalidRequest
from sluicegate.model.admin import AdminPrincipal, Role
from sluicegate.server.admin_api import json_response
from sluicegate.server.roles import caller

if TYPE_CHECKING:  # app.py builds these routes from the gateway it composes
    from sluicegate.server.app import Gateway


def control_routes(gateway: Gateway) -> list[Route]:
    async def budgets(request: Request) -> Response:
        await gateway.pipeline.drain()  # read-your-writes: settle what has answered
        rows = await gateway.policy.budget_status()
        return json_response({"data": visible_budgets(caller(request), rows)})

    async def alerts(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            raise InvalidRequest("limit must be an integer", param="limit") from None
        rows = await gateway.alert_store.list(limit=min(max(limit, 1), 1000))
        return json_response({"data": msgspec.to_builtins(rows)})

    async def targets(request: Request) -> Response:
        return json_response({"data": await gateway.router.status()})

    return [
        Route("/api/budgets", budgets, methods=["GET"]),
        Route("/api/alerts", alerts, methods=["GET"]),
        Route("/api/targets", targets, methods=["GET"]),
    ]


def visible_budgets(principal: AdminPrincipal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An admin sees every budget; a team lead only those confined to its own teams; a
    member none (its own spend is in its panels; `GET /api/budgets` refuses it anyway);
    other roles every budget but those whose scope names users (one person's spend)."""
    if principal.role is Role.ADMIN:
        return rows
    if principal.role is Role.MEMBER:
        return []
    shown = [row for row in rows if not row["names_users"]]
    if principal.role is Role.TEAM_LEAD:
        own = set(principal.teams)
        shown = [row for row in shown if row["teams"] is not None and set(row["teams"]) <= own]
    return shown

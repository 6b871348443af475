"""Control-room JSON endpoints that read live state: budgets, alerts, routing targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.errors import InvalidRequest
from sluicegate.server.admin_api import json_response

if TYPE_CHECKING:  # app.py builds these routes from the gateway it composes
    from sluicegate.server.app import Gateway


def control_routes(gateway: Gateway) -> list[Route]:
    async def budgets(request: Request) -> Response:
        await gateway.pipeline.drain()  # read-your-writes: settle what has answered
        return json_response({"data": await gateway.policy.budget_status()})

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

"""The control room's panels over HTTP.

    GET /api/analytics           the panels: name, title, layer, question
    GET /api/analytics/{panel}   one panel's answer (analytics/panels/base.PanelAnswer)

Every role may call both; what a caller sees is narrowed by `roles.analytics_scope`
(analytics/scope.py), and a per-user view by someone other than the user is audited.
Bad parameters are 400s naming the parameter, an unknown panel a 404, a view the role
may not have a 403, all in the admin error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.base import BudgetStatus, Panel, PanelAnswer, PanelContext
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import scoped
from sluicegate.errors import NotFound
from sluicegate.model.admin import AdminPrincipal
from sluicegate.server.admin_api import json_response
from sluicegate.server.control_api import visible_budgets
from sluicegate.server.roles import (
    analytics_scope,
    caller,
    path_and_query,
    record_people_view,
)

if TYPE_CHECKING:  # app.py builds these routes from the gateway it composes
    from sluicegate.server.app import Gateway

SETTLE_WAIT_S = 2.0  # how long a read waits for the ledger to land what was just served


def describe(panel: Panel) -> dict[str, Any]:
    return {
        "name": panel.name,
        "title": panel.title,
        "layer": str(panel.layer),
        "question": panel.question,
        "path": f"/api/analytics/{panel.name}",
    }


def budget_status(gateway: Gateway, principal: AdminPrincipal) -> BudgetStatus:
    """The budgets' live spend as `GET /api/budgets` would show it to this caller, after
    the settlements already queued (waited for at most SETTLE_WAIT_S)."""

    async def read() -> list[dict[str, Any]]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(gateway.pipeline.drain()), SETTLE_WAIT_S)
        return visible_budgets(principal, await gateway.policy.budget_status())

    return read


def find_panel(name: str) -> Panel:
    """The registered panel of this name; 404 naming the panels there are."""
    found = PANELS.get(name)
    if found is None:
        raise NotFound(
            f"no analytics panel {name[:64]!r}; panels: {', '.join(PANELS)}",
            param="panel",
            code="panel_not_found",
        )
    return found


async def panel_answer(
    gateway: Gateway,
    reader: AnalyticsReader,
    principal: AdminPrincipal,
    found: Panel,
    params: list[tuple[str, str]],
    asked_at: str,
) -> PanelAnswer[Any]:
    """One panel's answer for `principal`, narrowed to its scope: the one path from query
    parameters to figures, taken by the API and the web UI alike. A people view is
    audited first under `asked_at` (the path and query it was asked at)."""
    query = parse_query(
        params,
        panel=found.name,
        default_group_by=found.default_group_by(gateway.analytics),
        default_limit=found.default_limit,
        now=time.time(),
    )
    asked = scoped(query, analytics_scope(principal))
    if asked.people_view:  # before reading: no trail, no figures
        await record_people_view(gateway.audit, principal, asked_at)
    with contextlib.suppress(TimeoutError):  # answer from what has landed
        await asyncio.wait_for(asyncio.shield(gateway.writer.flush()), SETTLE_WAIT_S)
    rolled_up = query.metadata_keys() & set(gateway.analytics.rollup_metadata_keys)
    context = PanelContext(
        reader,
        gateway.analytics,
        gateway.live.snapshot,
        budget_status=budget_status(gateway, principal),
        # a key configured later has rows only from then on: earlier windows read raw
        rolled_up_since=await reader.rolled_up_since(rolled_up) if rolled_up else None,
        catalog=gateway.catalog,
    )
    return await found.answer(context, asked)


def analytics_routes(gateway: Gateway) -> list[Route]:
    reader = AnalyticsReader(gateway.engine)

    async def panels(request: Request) -> Response:
        caller(request)  # every role may list them
        return json_response({"data": [describe(p) for p in PANELS.values()]})

    async def panel(request: Request) -> Response:
        principal = caller(request)
        found = find_panel(request.path_params["panel"])
        answer = await panel_answer(
            gateway,
            reader,
            principal,
            found,
            request.query_params.multi_items(),
            path_and_query(request),
        )
        return json_response(msgspec.to_builtins(answer))

    return [
        Route("/api/analytics", panels, methods=["GET"]),
        Route("/api/analytics/{panel}", panel, methods=["GET"]),
    ]

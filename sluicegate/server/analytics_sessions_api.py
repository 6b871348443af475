"""The sessions behind a session panel's figures, over HTTP.

    GET /api/analytics/{panel}/sessions   a page of sessions by id (session_listing.py)

Admins only (`access.ACCESS`): a session id is the key to every request of one person's
session. Never a user id in the answer. The panel's own window and filters apply
(`since`, `until`, `team=`, `project=`, `workflow_tag=`, `client_tool=`), plus `traced`
(true/false), `limit` (1-1000, default 100) and `cursor` (the last answer's
`next_cursor`). A panel without sessions is a 404; a bad parameter a 400 naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.base import PanelContext
from sluicegate.analytics.panels.session_listing import ListsSessions, session_ask
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import scoped
from sluicegate.errors import InvalidRequest, NotFound
from sluicegate.server.admin_api import json_response
from sluicegate.server.analytics_api import SETTLE_WAIT_S
from sluicegate.server.roles import analytics_scope, caller

if TYPE_CHECKING:  # app.py builds these routes from the gateway it composes
    from sluicegate.server.app import Gateway

PAGE_PARAMS = ("limit", "cursor", "traced")


def listing_panels() -> dict[str, ListsSessions]:
    return {name: p for name, p in PANELS.items() if isinstance(p, ListsSessions)}


def session_routes(gateway: Gateway) -> list[Route]:
    reader = AnalyticsReader(gateway.engine)
    panels = listing_panels()

    async def sessions(request: Request) -> Response:
        principal = caller(request)
        name = request.path_params["panel"]
        found = panels.get(name)
        if found is None:
            raise NotFound(
                f"no analytics panel {name[:64]!r} lists sessions; these do: {', '.join(panels)}",
                param="panel",
                code="panel_not_found",
            )
        page, rest = _split(request.query_params.multi_items())
        ask = session_ask(page.get("limit"), page.get("cursor"), page.get("traced"))
        panel = PANELS[name]
        query = parse_query(
            rest,
            panel=name,
            default_group_by=panel.default_group_by(gateway.analytics),
            default_limit=panel.default_limit,
            now=time.time(),
        )
        asked = scoped(query, analytics_scope(principal))
        with contextlib.suppress(TimeoutError):  # list what has landed
            await asyncio.wait_for(asyncio.shield(gateway.writer.flush()), SETTLE_WAIT_S)
        context = PanelContext(reader, gateway.analytics, gateway.live.snapshot)
        listed = await found.sessions(context, asked, ask)
        return json_response(msgspec.to_builtins(listed))

    return [Route("/api/analytics/{panel}/sessions", sessions, methods=["GET"])]


def _split(params: list[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The page's parameters, and the rest (the panel's window and filters)."""
    page: dict[str, str] = {}
    rest = []
    for name, value in params:
        if name == "group_by":
            raise InvalidRequest("group_by: a session listing is not grouped", param=name)
        if name not in PAGE_PARAMS:
            rest.append((name, value))
        elif name in page:
            raise InvalidRequest(f"{name}: give it once", param=name)
        else:
            page[name] = value
    return page, rest

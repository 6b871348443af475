"""The request explorer over the ledger: the rows `GET /api/requests` returns to this
caller (an admin, audited; a member, its own), newest first, filtered by the page's query
parameters, a page at a time by cursor. Each row opens to the whole record: its
envelope, usage and cost, attempts, policy events and guardrail events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.panels import PANELS
from sluicegate.server.admin_api import AdminApi
from sluicegate.server.roles import path_and_query

if TYPE_CHECKING:
    from sluicegate.ui.app import Caller, Ui

# the listing's filters, as `/api/requests` names them: (query parameter, label)
REQUEST_FILTERS = (
    ("since", "since"),
    ("until", "until"),
    ("team", "team"),
    ("project", "project"),
    ("workflow_tag", "workflow"),
    ("session_id", "session"),
    ("user_id", "user"),
    ("model", "model"),
    ("status", "status"),
)
PAGE_SIZE = "50"
SUMMARY = (  # the listing's columns: (title, row field)
    ("request", "request_id"),
    ("team", "team"),
    ("project", "project"),
    ("workflow", "workflow_tag"),
    ("model", "model"),
    ("status", "status_code"),
    ("tokens in", "input_tokens"),
    ("tokens out", "output_tokens"),
    ("cost $", "cost_usd"),
    ("latency ms", "latency_ms"),
)
DETAIL_LISTS = ("attempts", "policy_events", "guardrail_events")


def request_routes(ui: Ui) -> list[Route]:
    api = AdminApi(
        keys=ui.gateway.keys,
        ledger=ui.gateway.ledger_store,
        writer=ui.gateway.writer,
        audit=ui.gateway.audit,
    )

    async def explorer(request: Request, caller: Caller) -> Response:
        asked = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
        page = await api.request_page(
            caller.principal, {"limit": PAGE_SIZE, **asked}, path_and_query(request)
        )
        after = None
        if page.next_cursor:
            after = "/ui/requests?" + urlencode({**asked, "cursor": page.next_cursor})
        return ui.pages.render(
            "requests.html",
            caller=caller,
            panels=list(PANELS.values()),
            rows=page.data,
            form=asked,
            filters=REQUEST_FILTERS,
            summary=SUMMARY,
            detail_lists=DETAIL_LISTS,
            next_page=after,
            scalar=_scalars,
        )

    return [Route("/requests", ui.signed_in(explorer), methods=["GET"])]


def _scalars(row: dict[str, Any]) -> list[tuple[str, Any]]:
    """The record's plain fields, in the ledger's order, those with a value."""
    return [
        (k, v)
        for k, v in row.items()
        if k not in DETAIL_LISTS and v not in (None, "", {}, []) and not isinstance(v, list)
    ]

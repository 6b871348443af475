"""One page per registered panel (`analytics/panels/PANELS`), and its table as CSV.

The filters are the page's query parameters, the API's own (`since`, `until`,
`group_by`, `limit`, a dimension's name = value), so a view's URL can be shared; the
form's empty fields are dropped and its `tag` field (KEY=VALUE) becomes `metadata.KEY`.
The figures are the API's answer for this caller, read in process through
`panel_answer` (never a second implementation of a panel's figures).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.cells import value_at
from sluicegate.analytics.dimensions import METADATA_PREFIX
from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.errors import InvalidRequest
from sluicegate.model.admin import Role
from sluicegate.server.analytics_api import find_panel, panel_answer
from sluicegate.server.roles import path_and_query
from sluicegate.ui.chart import chart_of
from sluicegate.ui.checklist import checklist
from sluicegate.ui.proposals import proposals
from sluicegate.ui.render import SECURITY_HEADERS

if TYPE_CHECKING:
    from sluicegate.ui.app import Caller, Ui

# the filter fields every panel page offers: (query parameter, label)
FILTER_FIELDS = (
    ("team", "team"),
    ("project", "project"),
    ("workflow_tag", "workflow"),
    ("model", "model"),
    ("client_tool", "tool"),
)
TAG_FIELD = "tag"  # KEY=VALUE: a metadata tag
# who sees the overview's checklist: it reads config (budgets, rules) across the whole
# organisation, which a team lead or a member is not shown
CHECKLIST_ROLES = frozenset({Role.ADMIN, Role.PLATFORM, Role.FINANCE, Role.SECURITY})


def empty_hints(panel: str, base_url: str) -> list[str]:
    """Why a panel may have nothing to show, and how to get data into it."""
    traffic = (
        "Send model calls through this gateway (POST /v1/chat/completions or /v1/messages) "
        "with the X-Sluice-Team, X-Sluice-Project, X-Sluice-Workflow-Tag and "
        "X-Sluice-Session-ID headers, or widen the time window."
    )
    if panel in ("outcomes", "leverage"):
        return [
            "No outcomes joined to sessions in this window yet.",
            f"Record one: POST {base_url}/api/outcomes with an admin token (Authorization: "
            'Bearer ...) and {"external_id", "kind", "session_id"}.',
            f"Or wire GitHub: a webhook to {base_url}/api/outcomes/github signed with "
            "X-Hub-Signature-256 (SLUICEGATE_GITHUB_WEBHOOK_SECRET), or a helpdesk: "
            f"{base_url}/api/outcomes/helpdesk with the header X-Sluice-Webhook-Secret.",
            traffic,
        ]
    return ["No requests in this window match.", traffic]


def api_params(query: QueryParams) -> list[tuple[str, str]]:
    """The API's query parameters from the page's: empty fields dropped, the tag field as
    `metadata.KEY`."""
    params = []
    for name, value in query.multi_items():
        if not value.strip():
            continue
        if name == TAG_FIELD:
            key, sep, tag_value = value.partition("=")
            if not sep or not key.strip():
                raise InvalidRequest("tag: give KEY=VALUE, e.g. customer_id=acme", param="tag")
            params.append((METADATA_PREFIX + key.strip(), tag_value.strip()))
        else:
            params.append((name, value.strip()))
    return params


def table_csv(columns: Sequence[dict[str, str]], rows: list[Any], totals: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c["title"] for c in columns])
    for row in [*rows, totals]:
        writer.writerow([_plain(row, c["key"]) for c in columns])
    return out.getvalue()


def _plain(row: Any, key: str) -> str:
    """A CSV value: the figure itself (not rounded for display), empty for none."""
    value = value_at(row, key)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def panel_routes(ui: Ui) -> list[Route]:
    reader = AnalyticsReader(ui.gateway.engine)

    async def answer_for(request: Request, caller: Caller) -> dict[str, Any]:
        found = find_panel(request.path_params["panel"])
        answer = await panel_answer(
            ui.gateway,
            reader,
            caller.principal,
            found,
            api_params(request.query_params),
            path_and_query(request),
        )
        return dict(msgspec.to_builtins(answer))

    async def home(request: Request, caller: Caller) -> Response:
        items = None
        if caller.principal.role in CHECKLIST_ROLES:

            async def read(name: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
                answer = await panel_answer(
                    ui.gateway, reader, caller.principal, find_panel(name), list(params), "/ui/"
                )
                return dict(msgspec.to_builtins(answer))

            items = await checklist(read, ui.gateway.live.snapshot, ui.gateway.settings.self_url)
        return ui.pages.render(
            "home.html", caller=caller, panels=list(PANELS.values()), checklist=items
        )

    async def panel(request: Request, caller: Caller) -> Response:
        answer = await answer_for(request, caller)
        query = request.url.query
        return ui.pages.render(
            "panel.html",
            caller=caller,
            panels=list(PANELS.values()),
            answer=answer,
            chart=chart_of(answer.get("series"), answer["window"]),
            form=dict(request.query_params),
            filter_fields=FILTER_FIELDS,
            csv_url=f"/ui/panels/{answer['panel']}/csv" + (f"?{query}" if query else ""),
            empty=empty_hints(answer["panel"], ui.gateway.settings.self_url)
            if not answer["rows"]
            else None,
            with_controls=[r for r in answer["rows"] if r.get("controls")],
            proposals=proposals(answer, query),
        )

    async def panel_csv(request: Request, caller: Caller) -> Response:
        answer = await answer_for(request, caller)
        body = table_csv(answer["columns"], answer["rows"], answer["totals"])
        headers = {
            **SECURITY_HEADERS,
            "content-disposition": f'attachment; filename="{answer["panel"]}.csv"',
        }
        return Response(body, media_type="text/csv", headers=headers)

    return [
        Route("/", ui.signed_in(home), methods=["GET"]),
        Route("/panels/{panel}", ui.signed_in(panel), methods=["GET"]),
        Route("/panels/{panel}/csv", ui.signed_in(panel_csv), methods=["GET"]),
    ]

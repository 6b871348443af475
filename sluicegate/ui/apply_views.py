"""Review and apply a config change a panel proposes (principle 5, action queues).

    GET  /ui/panels/{panel}/apply?q=QUERY&group=G&served=M   the proposal, its diff
                                   against the live documents
    GET  /ui/panels/{panel}/apply/what-if?(the same)  its 7-day what-if, an HTML fragment
                                   the page loads after it (htmx)
    POST /ui/panels/{panel}/apply  (q, group, served, live_version, digest): apply it

The proposal is recomputed on the server from the panel's answer for this caller (the
URL names the row, never the document). Each part follows the API's own rule in
`server/access.py`: the diff for who may `GET /api/config`, the what-if for who may
`POST /api/config/what-if` (run by `WhatIf.run`, with its own row bound, deadline and
one-at-a-time limit: a refusal or a timeout is said on the page), the Apply button and
the POST for who may `POST /api/config`. The apply is `admin_config.apply_config`, the
function behind `POST /api/config`: validated, versioned, recorded as this principal.

A stale proposal is refused (409), never applied over a change its reviewer did not see:
the form carries the version the diff was made against and the proposal's digest; the
apply is refused when the recomputed document differs, or when a document it writes is
no longer what it was in that version (checked inside the config service's write, so a
change landing meanwhile is caught too).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.config.diff import keyed
from sluicegate.config.problems import ConfigStale
from sluicegate.config.service import Expected
from sluicegate.errors import InvalidRequest, SluiceError
from sluicegate.model.admin import Role
from sluicegate.server.access import ACCESS, Rule
from sluicegate.server.admin_config import MAX_VERSION, applied_by_name, apply_config
from sluicegate.server.analytics_api import find_panel, panel_answer
from sluicegate.server.roles import forbidden
from sluicegate.ui.panel_views import api_params
from sluicegate.ui.proposals import Proposal, find_proposal, proposal_fields
from sluicegate.whatif.window import replay_window

if TYPE_CHECKING:
    from sluicegate.ui.app import Caller, Ui

WHAT_IF_WINDOW = "7d"
ACTOR = "web UI"  # recorded beside the principal, as the CLI records its user
READERS = ACCESS[("GET", "/api/config")]
WRITERS = ACCESS[("POST", "/api/config")]
WHAT_IF_ROLES = ACCESS[("POST", "/api/config/what-if")]


def may(role: Role, rule: Rule) -> bool:
    return role is Role.ADMIN or role in rule


def apply_routes(ui: Ui) -> list[Route]:
    reader = AnalyticsReader(ui.gateway.engine)
    service = ui.gateway.config

    async def proposal_for(request: Request, caller: Caller, fields: dict[str, str]) -> Proposal:
        fields = proposal_fields(fields)
        panel = request.path_params["panel"]
        query = fields.get("q", "")
        answer = await panel_answer(
            ui.gateway,
            reader,
            caller.principal,
            find_panel(panel),
            api_params(QueryParams(query)),
            f"/ui/panels/{panel}" + (f"?{query}" if query else ""),
        )
        return find_proposal(dict(msgspec.to_builtins(answer)), fields)

    async def what_if(proposal: Proposal, who: str) -> tuple[dict[str, Any] | None, str | None]:
        """The report, or why there is none (busy, past its deadline, refused)."""
        try:
            window = replay_window(WHAT_IF_WINDOW, time.time())
            report = await ui.gateway.what_if.run(proposal.yaml, window, applied_by=who)
        except SluiceError as exc:
            return None, f"{exc.status} {exc.code or exc.error_type}: {exc.message}"
        return dict(msgspec.to_builtins(report)), None

    async def review(request: Request, caller: Caller) -> Response:
        proposal = await proposal_for(request, caller, dict(request.query_params))
        role, who = caller.principal.role, applied_by_name(caller.principal, ACTOR)
        dry_run = None
        if may(role, READERS):
            dry_run = await apply_config(
                service, ui.gateway.live, proposal.yaml, applied_by=who, dry_run=True
            )
        return ui.pages.render(
            "config_apply.html",
            caller=caller,
            panels=list(PANELS.values()),
            proposal=proposal,
            dry_run=dry_run,
            may_read=may(role, READERS),
            may_what_if=may(role, WHAT_IF_ROLES),
            may_apply=may(role, WRITERS) and dry_run is not None,
        )

    async def review_what_if(request: Request, caller: Caller) -> Response:
        """The what-if part of the review page, loaded after it (htmx), so the page is
        usable at once however long the replay takes; a refusal or a timeout is the
        fragment's text (200: htmx swaps in only a 2xx answer)."""
        if not may(caller.principal.role, WHAT_IF_ROLES):
            forbidden(caller.principal, "POST", "/api/config/what-if", set(WHAT_IF_ROLES))
        proposal = await proposal_for(request, caller, dict(request.query_params))
        report, error = await what_if(proposal, applied_by_name(caller.principal, ACTOR))
        return ui.pages.render("_what_if.html", report=report, report_error=error)

    async def apply(request: Request, caller: Caller) -> Response:
        if not may(caller.principal.role, WRITERS):
            forbidden(caller.principal, "POST", request.url.path, set(WRITERS))
        form: dict[str, str] = request.state.form
        proposal = await proposal_for(request, caller, form)
        if form.get("digest") != proposal.digest:
            raise ConfigStale(
                "the proposed document is no longer the one reviewed (the traffic or the "
                "config changed since the page was shown): review it again; nothing was "
                "applied"
            )
        reviewed = await reviewed_documents(_version(form.get("live_version")))
        expected: Expected = {key: reviewed.get(key) for key in proposal.keys}
        result = await apply_config(
            service,
            ui.gateway.live,
            proposal.yaml,
            applied_by=applied_by_name(caller.principal, ACTOR),
            comment=f"{proposal.panel}: {proposal.group} off {proposal.served} (web UI)",
            expected=expected,
        )
        return ui.pages.render(
            "config_applied.html",
            caller=caller,
            panels=list(PANELS.values()),
            proposal=proposal,
            result=result,
        )

    async def reviewed_documents(version: int) -> dict[Any, Any]:
        """The documents of the version the reviewer's diff was made against."""
        if version == 0:  # nothing was applied then
            return {}
        return keyed((await service.get(version)).documents)

    return [
        Route("/panels/{panel}/apply", ui.signed_in(review), methods=["GET"]),
        Route("/panels/{panel}/apply", ui.signed_in(apply), methods=["POST"]),
        Route("/panels/{panel}/apply/what-if", ui.signed_in(review_what_if), methods=["GET"]),
    ]


def _version(value: str | None) -> int:
    if value is None or not value.isascii() or not value.isdigit():
        raise InvalidRequest("live_version: the form's version is missing", param="live_version")
    number = int(value)
    if number > MAX_VERSION:
        raise InvalidRequest(f"live_version: a version is 0 to {MAX_VERSION}", param="live_version")
    return number

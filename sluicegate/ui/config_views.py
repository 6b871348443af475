"""The config pages: the live documents, the history of versions, one version's
documents, and the diff between two versions. Read-only here; who may read them is the
rule of `GET /api/config` in `server/access.py` (the same table the API checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.panels import PANELS
from sluicegate.config.diff import diff_sets, join_diffs, keyed, render_all
from sluicegate.errors import InvalidRequest
from sluicegate.model.admin import Role
from sluicegate.server.access import ACCESS
from sluicegate.server.roles import forbidden

if TYPE_CHECKING:
    from sluicegate.ui.app import Caller, Ui

HISTORY_SHOWN = 50
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit INTEGER


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _version(value: str | None, param: str) -> int:
    if value is None or not value.isascii() or not value.isdigit() or not value:
        raise InvalidRequest(f"{param}: give a version number", param=param)
    number = int(value)
    if not 1 <= number <= MAX_VERSION:
        raise InvalidRequest(f"{param}: a version is 1 to {MAX_VERSION}", param=param)
    return number


def config_routes(ui: Ui) -> list[Route]:
    service = ui.gateway.config
    readers = ACCESS[("GET", "/api/config")]

    def may_read(request: Request, caller: Caller) -> None:
        role = caller.principal.role
        if role is not Role.ADMIN and role not in readers:
            forbidden(caller.principal, request.method, request.url.path, set(readers))

    def page(caller: Caller, template: str, **values: Any) -> Response:
        return ui.pages.render(
            template, caller=caller, panels=list(PANELS.values()), when=_when, **values
        )

    async def live(request: Request, caller: Caller) -> Response:
        may_read(request, caller)
        current = await service.current()
        history = await service.history(HISTORY_SHOWN)
        return page(
            caller,
            "config.html",
            current=current,
            yaml=render_all(current.documents) if current.documents else "",
            live_version=ui.gateway.live.version,
            live_error=ui.gateway.live.last_error,
            history=history,
        )

    async def version(request: Request, caller: Caller) -> Response:
        may_read(request, caller)
        found = await service.get(_version(request.path_params["version"], "version"))
        return page(
            caller,
            "config_version.html",
            version=found,
            yaml=render_all(found.documents) if found.documents else "",
        )

    async def diff(request: Request, caller: Caller) -> Response:
        may_read(request, caller)
        old = await service.get(_version(request.query_params.get("from"), "from"))
        new = await service.get(_version(request.query_params.get("to"), "to"))
        changes = diff_sets(
            keyed(old.documents),
            keyed(new.documents),
            before_label=f"v{old.version}",
            after_label=f"v{new.version}",
        )
        return page(
            caller, "config_diff.html", old=old, new=new, changes=changes, text=join_diffs(changes)
        )

    return [
        Route("/config", ui.signed_in(live), methods=["GET"]),
        Route("/config/versions/{version}", ui.signed_in(version), methods=["GET"]),
        Route("/config/diff", ui.signed_in(diff), methods=["GET"]),
    ]

"""The control room's web UI (docs/ui.md): server-rendered Jinja2 pages under /ui/, with
vendored htmx and uPlot, signed in with the admin API's own credentials and roles.

`ui_app(gateway)` is what the composition root mounts at /ui."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluicegate.ui.app import Ui
from sluicegate.ui.apply_views import apply_routes
from sluicegate.ui.config_views import config_routes
from sluicegate.ui.panel_views import panel_routes
from sluicegate.ui.request_views import request_routes
from sluicegate.ui.session_store import SqlUiSessionStore
from sluicegate.ui.sessions import CredentialCheck, SessionPolicy, UiSessions

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from sluicegate.server.app import Gateway


def ui_app(gateway: Gateway, credentials: CredentialCheck) -> Starlette:
    policy = SessionPolicy(
        ttl_s=gateway.settings.ui_session_hours * 3600.0,
        secure_cookies=gateway.settings.ui_secure_cookie,
    )
    sessions = UiSessions(
        SqlUiSessionStore(gateway.engine), credentials, gateway.keys, gateway.tokens, policy
    )
    ui = Ui(gateway, sessions)
    return ui.app([*panel_routes(ui), *apply_routes(ui), *request_routes(ui), *config_routes(ui)])

"""The control room's web UI, served under /ui/ by the gateway's own process: a Starlette
app the composition root mounts (`server/app.py`), built from the gateway's parts.

    GET  /ui/                      the panels (the overview)
    GET  /ui/sign-in, POST         sign in with an admin key or admin API token
    POST /ui/sign-out              end the session (server-side too)
    GET  /ui/panels/{panel}        one panel: actions, tables, chart; filters in the URL
    GET  /ui/panels/{panel}/csv    what the panel's main table shows, as CSV
    GET  /ui/panels/{panel}/apply  review a config change the panel proposes; POST applies
    GET  /ui/static/...            the package's CSS and vendored scripts

Every page but sign-in needs a live session (`sessions.py`); every POST carries the
session's CSRF token. What a page shows comes from the same code, with the same role
scoping, as `/api/` (`server/analytics_api.panel_answer`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sluicegate.errors import InvalidRequest, PermissionDenied, SluiceError
from sluicegate.model.admin import AdminPrincipal
from sluicegate.ui.forms import read_form
from sluicegate.ui.render import SECURITY_HEADERS, STATIC_DIR, Pages
from sluicegate.ui.sessions import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    UiSessions,
    csrf_matches,
    csrf_token,
)

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway

SIGN_IN_PATH = "/ui/sign-in"
HOME_PATH = "/ui/"
SIGN_IN_FORM_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a signed-in page is for, and the CSRF token its forms carry."""

    principal: AdminPrincipal
    session_id: str
    csrf: str


SignedInPage = Callable[[Request, Caller], Awaitable[Response]]


class Ui:
    def __init__(self, gateway: Gateway, sessions: UiSessions) -> None:
        self.gateway = gateway
        self.sessions = sessions
        self.pages = Pages()

    # --- sessions and forms -------------------------------------------------------------
    def signed_in(self, page: SignedInPage) -> Callable[[Request], Awaitable[Response]]:
        """`page` for a live session (else to sign-in), with the CSRF token checked on a
        POST, and any SluiceError it raises rendered as an error page."""

        async def endpoint(request: Request) -> Response:
            session_id = request.cookies.get(SESSION_COOKIE)
            try:
                principal = await self.sessions.principal(session_id)
            except SluiceError as exc:
                return self.pages.error(exc)
            if principal is None or session_id is None:
                if request.method != "GET":
                    return self.pages.error(_signed_out())
                return _see_other(f"{SIGN_IN_PATH}?next={quote(_local(request))}")
            caller = Caller(principal, session_id, csrf_token(session_id))
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    if not csrf_matches(caller.csrf, form.get("csrf_token")):
                        raise PermissionDenied(
                            "the form's CSRF token is missing or not this session's: "
                            "reload the page and try again",
                            code="csrf_failed",
                        )
                    request.state.form = form
                return await page(request, caller)
            except SluiceError as exc:
                return self.pages.error(exc, caller=caller)

        return endpoint

    def set_session_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(self.sessions.policy.ttl_s),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
        )

    def _secure(self, request: Request) -> bool:
        return request.url.scheme == "https" or self.sessions.policy.secure_cookies

    # --- sign-in and sign-out -----------------------------------------------------------
    async def sign_in_form(self, request: Request) -> Response:
        try:
            signed_in = await self.sessions.principal(request.cookies.get(SESSION_COOKIE))
        except SluiceError as exc:  # the database is away: say so rather than a blank form
            return self.pages.error(exc)
        if signed_in is not None:
            return _see_other(_next(request.query_params.get("next")))
        return self._sign_in_page(
            request, request.query_params.get("next"), status=200, message=None
        )

    def _sign_in_page(
        self, request: Request, next_path: str | None, *, status: int, message: str | None
    ) -> Response:
        token = csrf_token(_random_id())
        response = self.pages.render(
            "sign_in.html",
            status=status,
            csrf=token,
            next=_next(next_path),
            message=message,
        )
        response.set_cookie(
            SIGN_IN_COOKIE,
            token,
            max_age=SIGN_IN_FORM_TTL_S,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        form: dict[str, str] = {}
        try:
            form = await read_form(request)
            if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE), form.get("csrf_token")):
                raise PermissionDenied(
                    "the sign-in form's CSRF token does not match: reload the page",
                    code="csrf_failed",
                )
            session_id, _ = await self.sessions.sign_in(form.get("token", "").strip())
        except SluiceError as exc:
            return self._sign_in_page(
                request, form.get("next"), status=exc.status, message=exc.message
            )
        response = _see_other(_next(form.get("next")))
        self.set_session_cookie(response, request, session_id)
        response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
        return response

    async def sign_out(self, request: Request, caller: Caller) -> Response:
        await self.sessions.sign_out(caller.session_id)
        response = _see_other(SIGN_IN_PATH)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    # --- the app ------------------------------------------------------------------------
    def app(self, page_routes: list[Route]) -> Starlette:
        routes = [
            Route("/sign-in", self.sign_in_form, methods=["GET"]),
            Route("/sign-in", self.sign_in, methods=["POST"]),
            Route("/sign-out", self.signed_in(self.sign_out), methods=["POST"]),
            *page_routes,
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={404: self._not_found, 405: self._not_allowed},
        )

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        response = self.pages.error(
            InvalidRequest(f"no page {request.url.path}", code="page_not_found")
        )
        response.status_code = 404
        return response

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        response = self.pages.error(
            InvalidRequest(f"{request.method} is not allowed here", code="method_not_allowed")
        )
        response.status_code = 405
        return response


def _signed_out() -> PermissionDenied:
    return PermissionDenied(
        "not signed in (or the session ended): sign in again", code="signed_out"
    )


def _see_other(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def _local(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this UI only (never another site)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME_PATH


def _random_id() -> str:
    return secrets.token_urlsafe(32)

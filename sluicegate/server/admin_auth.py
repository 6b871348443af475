"""The one door to the admin API: every path under /api/ is authenticated here, before
routing, and every error under /api/ (refused key, bad request, unknown route, wrong
method) has one JSON shape, which is also the answer for an unknown path outside /api/
and /v1/ (`route_error`):

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}   (+ "problems"
                                                                           for config)

`AdminGate` sits in front of the gateway's app: a request under /api/ is resolved into an
`AdminPrincipal` by an `AdminAuthenticator` (the admin key, or an admin API token with its
role), checked against the route's access rule (`access.py`: 403 for a role the route
does not admit), and handed to the admin app (`admin_app`: the admin routes, with their
errors rendered in that shape) with the principal in `request.state.principal`; anything
else goes to the main app untouched.

A few paths are self-authenticating (`self_authenticating`): webhooks whose sender proves
itself with a signature or a shared secret the route checks, so no admin key is asked and
no principal set. Everything else the gate does still applies to them: the body is read
whole, bounded in size and time, NULs are refused, and errors have the admin shape.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, cast

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluicegate.config.problems import ConfigValidationError
from sluicegate.errors import (
    ConfigError,
    InvalidRequest,
    PayloadTooLarge,
    PermissionDenied,
    SluiceError,
)
from sluicegate.identity.admin_tokens import AdminTokenService
from sluicegate.identity.keys import KeyService
from sluicegate.model.admin import BOOTSTRAP_ADMIN, AdminPrincipal
from sluicegate.server.access import RouteAccess
from sluicegate.server.errors import internal_error, unknown_route
from sluicegate.server.wire_routes import api_key_from, read_body

ADMIN_PREFIX = "/api"
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdminAuthenticator(Protocol):
    def resolve(self, scope: Scope) -> AdminPrincipal:
        """The caller of this request; raises AuthenticationError (401) or
        PermissionDenied (403)."""
        ...


class AdminKeyAuth:
    """The admin key (`SLUICEGATE_ADMIN_KEY`), role admin, or a live admin API token
    (`sga-...`), its own role and scope, as a bearer token or x-api-key. An unknown or
    revoked token is a 401; a valid virtual (model-call) key is a 403 naming the key;
    anything else a 401."""

    def __init__(self, keys: KeyService, tokens: AdminTokenService | None = None) -> None:
        self._keys = keys
        self._tokens = tokens

    def resolve(self, scope: Scope) -> AdminPrincipal:
        return self.principal_of(api_key_from(Request(scope)))

    def principal_of(self, raw: str | None) -> AdminPrincipal:
        """The principal a credential stands for (the web UI's sign-in asks the same)."""
        if self._keys.is_admin_key(raw):
            return BOOTSTRAP_ADMIN
        if self._tokens is not None and raw is not None and self._tokens.is_token(raw):
            return self._tokens.authenticate(raw)
        principal = self._keys.authenticate(raw)  # 401 for unknown keys, 403 otherwise
        raise PermissionDenied(f"key {principal.key_id} is not an admin key", code="admin_required")


class AdminGate:
    """Routes /api/... through authentication to the admin app, everything else to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        admin: ASGIApp,
        auth: AdminAuthenticator,
        *,
        access: RouteAccess | None = None,
        max_body_bytes: int = 10 * 1024 * 1024,
        body_timeout_s: float | None = None,
        self_authenticating: Collection[str] = (),
    ) -> None:
        """`access`: the role rule of each admin route; None admits every principal to
        every route (an app whose only principal is the admin key). `self_authenticating`:
        exact paths under /api/ whose routes authenticate the sender themselves
        (webhooks); see the module's docstring."""
        self._app = app
        self._admin = admin
        self._auth = auth
        self._access = access
        self._limit = max_body_bytes
        self._body_timeout_s = body_timeout_s
        self._open = frozenset(self_authenticating)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _under_admin(scope["path"]):
            await self._app(scope, receive, send)
            return
        state = dict(scope.get("state", {}))
        try:
            _refuse_nul(scope)
            if scope["path"] not in self._open:
                principal = self._auth.resolve(scope)
                if self._access is not None:
                    self._access.check(scope, principal)
                state["principal"] = principal
        except SluiceError as exc:
            await admin_error(exc)(scope, receive, send)
            return
        if scope["method"] in _WITH_BODY:
            try:
                receive = await self._read_whole_body(scope, receive)
            except SluiceError as exc:
                await admin_error(exc)(scope, receive, send)
                return
        await self._admin({**scope, "state": state}, receive, send)

    async def _read_whole_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the body here, bounded in size and time (a half-sent admin request is cut
        off with 408 like a model call), and replay it to the route."""
        body, too_large = await read_body(scope, receive, self._limit, self._body_timeout_s)
        if too_large:
            raise PayloadTooLarge(f"the request body is over {self._limit} bytes")
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


def admin_app(routes: Sequence[BaseRoute], *, middleware: Sequence[Middleware] = ()) -> Starlette:
    """The admin routes as one app whose every error has the admin error shape."""
    return Starlette(
        routes=list(routes),
        middleware=list(middleware),
        exception_handlers={
            SluiceError: _sluice_error,
            HTTPException: route_error,
            Exception: server_error,
        },
    )


def admin_error(exc: SluiceError) -> Response:
    error: dict[str, Any] = {
        "message": exc.message,
        "type": exc.code if isinstance(exc, ConfigError) and exc.code else exc.error_type,
        "param": exc.param,
        "code": exc.code,
    }
    if isinstance(exc, ConfigValidationError):
        error["problems"] = exc.problems
    return _json({"error": error}, exc.status)


async def _sluice_error(request: Request, exc: Exception) -> Response:
    return admin_error(cast(SluiceError, exc))  # registered for SluiceError only


async def route_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such route, or not with this method), as JSON:
    under /v1/ in the OpenAI format, anywhere else in the admin error shape. The gateway's
    main app uses it too, so that no path answers in plain text."""
    exc = cast(HTTPException, exc)  # registered for HTTPException only
    path = request.url.path
    wire_error = unknown_route(request.method, path, exc.status_code)
    if wire_error is not None:
        wire_error.headers.update(exc.headers or {})  # Allow, on a 405
        return wire_error
    if exc.status_code == 405:
        kind, code = "invalid_request_error", "method_not_allowed"
        message = f"{request.method} is not allowed on {path}"
    elif exc.status_code == 404:
        kind, code = "not_found_error", "route_not_found"
        where = "admin API route" if _under_admin(path) else "route"
        message = f"no {where} {path}"
    else:
        kind, code, message = "api_error", None, str(exc.detail)
    error = {"message": message, "type": kind, "param": None, "code": code}
    return _json({"error": error}, exc.status_code, dict(exc.headers or {}))


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected exception, answered as JSON (Starlette's ServerErrorMiddleware sends
    this, then re-raises, so the server still logs the traceback). The gateway's main app
    uses it too."""
    return internal_error(request.url.path)


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json"
    )


def _refuse_nul(scope: Scope) -> None:
    """No admin path or query parameter may hold a NUL: no id, name or filter has one,
    and PostgreSQL cannot even compare text with it (checked here, once, for every admin
    route, so that it is a 400 and not a database error)."""
    if "\x00" in scope["path"]:
        raise InvalidRequest("the path holds a NUL character (%00)")
    if b"%00" in scope.get("query_string", b""):
        raise InvalidRequest("a query parameter holds a NUL character (%00)")


def _under_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

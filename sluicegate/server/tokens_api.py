"""Admin API tokens and the audit trail over HTTP (who may call each route: `access.py`;
authentication and the error body: `admin_auth`, as for every /api/ route).

    POST   /api/tokens              {"name", "role", "teams", "user_id"} -> 201, the token
                                    (`token`) in this answer only
    GET    /api/tokens              ?state=active|revoked|all&limit=&cursor= (never secrets)
    DELETE /api/tokens/{token_id}   revoke (idempotent)
    GET    /api/audit               ?action=&principal=&token_id=&since=&until=&limit=&cursor=
                                    newest first
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.audit.store import MAX_PAGE, AuditAction, AuditFilters, SqlAuditStore
from sluicegate.errors import InvalidRequest
from sluicegate.identity.admin_tokens import AdminTokenService, public_view, token_spec
from sluicegate.server.admin_api import json_body, json_response, parse_time
from sluicegate.server.roles import caller, path_and_query

_TOKEN_FIELDS = frozenset({"name", "role", "teams", "user_id", "expires_at"})
_STATES = {"all": None, "active": "active", "expired": "expired", "revoked": "revoked"}
_ACTIONS = frozenset(action.value for action in AuditAction)
MAX_FILTER = 256


class TokensApi:
    def __init__(self, tokens: AdminTokenService, audit: SqlAuditStore) -> None:
        self._tokens = tokens
        self._audit = audit

    def routes(self) -> list[Route]:
        return [
            Route("/api/tokens", self.create, methods=["POST"]),
            Route("/api/tokens", self.list, methods=["GET"]),
            Route("/api/tokens/{token_id}", self.revoke, methods=["DELETE"]),
            Route("/api/audit", self.audit, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        data = await json_body(request)
        unknown = sorted(set(data) - _TOKEN_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]!r}", param=unknown[0])
        spec = token_spec(
            name=_string(data.get("name"), "name", required=True) or "",
            role=_string(data.get("role"), "role", required=True) or "",
            teams=_strings(data.get("teams"), "teams"),
            user_id=_string(data.get("user_id"), "user_id"),
            expires_at=_time(data.get("expires_at"), "expires_at"),
            now=self._tokens.now(),
        )
        row, raw = await self._tokens.create(spec, caller(request), path_and_query(request))
        return json_response({**public_view(row, self._tokens.now()), "token": raw}, status=201)

    async def list(self, request: Request) -> Response:
        q = request.query_params
        state = q.get("state", "all")
        if state not in _STATES:
            raise InvalidRequest("state must be active, expired, revoked or all", param="state")
        page = await self._tokens.list(
            _limit(q.get("limit")), q.get("cursor"), state=_STATES[state]
        )
        now = self._tokens.now()
        return json_response(
            {"data": [public_view(row, now) for row in page.rows], "next_cursor": page.next_cursor}
        )

    async def revoke(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        row = await self._tokens.revoke(token_id, caller(request), path_and_query(request))
        return json_response(public_view(row, self._tokens.now()))

    async def audit(self, request: Request) -> Response:
        q = request.query_params
        action = q.get("action")
        if action is not None and action not in _ACTIONS:
            raise InvalidRequest(f"action must be one of {', '.join(AuditAction)}", param="action")
        filters = AuditFilters(
            action=AuditAction(action) if action is not None else None,
            principal=_filter(q.get("principal"), "principal"),
            token_id=_filter(q.get("token_id"), "token_id"),
            since=parse_time(q.get("since"), "since"),
            until=parse_time(q.get("until"), "until"),
        )
        page = await self._audit.page(filters, _limit(q.get("limit")), q.get("cursor"))
        return json_response({"data": page.data, "next_cursor": page.next_cursor})


def _time(value: object, param: str) -> float | None:
    """Unix seconds or ISO-8601 (a time to come: an age like `7d` means ago here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"{param} must be unix seconds or an ISO-8601 time", param=param)
    return parse_time(str(value), param)


def _string(value: object, param: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string", param=param)
    return value


def _strings(value: object, param: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{param} must be a list of strings", param=param)
    return value


def _filter(value: str | None, param: str) -> str | None:
    if value is not None and len(value) > MAX_FILTER:
        raise InvalidRequest(f"{param} must be at most {MAX_FILTER} characters", param=param)
    return value


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}", param="limit")
    return int(value)

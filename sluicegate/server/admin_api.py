"""The admin JSON API under /api: keys and the request ledger (budgets, alerts and targets
are in control_api.py, config in admin_config.py, admin tokens in tokens_api.py).

Authentication, role checks and the error body are not done here: every /api/ route sits
behind `admin_auth.AdminGate` (the admin key or an admin token; the route's role rule in
`access.py`), and a `SluiceError` a handler raises is rendered by `admin_auth.admin_app`
in the one admin error shape, which is what the CLI prints. Ledger rows name users: an
admin's listing is recorded in the audit trail first, and a member sees its own rows only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.errors import InvalidRequest, PermissionDenied
from sluicegate.identity.keys import KeyService, public_view
from sluicegate.ledger.store import MAX_PAGE, LedgerStore, RequestFilters, RequestPage
from sluicegate.ledger.writer import LedgerWriter
from sluicegate.model.admin import AdminPrincipal
from sluicegate.server.roles import (
    AuditRecorder,
    analytics_scope,
    caller,
    path_and_query,
    record_people_view,
)
from sluicegate.wire.common import request_object

_RELATIVE = re.compile(r"^(\d{1,9})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Bounds on what one key may carry: it is loaded into every replica's memory and shown in
# every key listing.
MAX_TEXT = 256  # user_id, team, project, name, a model name, a metadata key
MAX_MODELS = 1000
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE = 1024
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z, the last second a datetime can show
MAX_GRACE_SECONDS = 10 * 365 * 86400


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return request_object(raw) if raw else {}


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds, ISO-8601, or a relative age such as `15m`, `1h`, `7d`; a time between
    1970 and the year 9999 (nan or inf would make a key that never expires)."""
    if value is None or value == "":
        return None
    seconds = _seconds(value, param)
    if not 0.0 <= seconds <= MAX_TIME:  # also false for nan
        raise InvalidRequest(
            f"{param}: {value!r} is not a time between 1970 and 9999 "
            f"(unix seconds 0 to {MAX_TIME:.0f})",
            param=param,
        )
    return seconds


def _seconds(value: str, param: str) -> float:
    match = _RELATIVE.match(value)
    if match:
        return time.time() - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"{param}: {value!r} is not a time (unix seconds, ISO-8601, "
            "or an age like 15m / 1h / 7d)",
            param=param,
        ) from None


def _text(value: object, param: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string", param=param)
    if len(value) > limit or "\x00" in value:
        raise InvalidRequest(
            f"{param} must be at most {limit} characters, without NUL", param=param
        )
    return value


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else _text(value, name)


def _models(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_MODELS:
        raise InvalidRequest(
            f"models must be a list of at most {MAX_MODELS} model names", param="models"
        )
    return [_text(model, "models") for model in value]


def _metadata(value: object) -> dict[str, str]:
    """An object of string values (stored and shown as given; not interpreted)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA_ENTRIES:
        raise InvalidRequest(
            f"metadata must be an object of at most {MAX_METADATA_ENTRIES} string values",
            param="metadata",
        )
    return {
        _text(key, "metadata"): _text(item, f"metadata.{key}", MAX_METADATA_VALUE)
        for key, item in value.items()
    }


def _optional_float(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"{name} must be a number of seconds or a time", param=name)
    return parse_time(str(value), name)


# A key's string fields: its label and its envelope values (defaults, or pins when named
# in `pinned`).
_KEY_STRINGS = ("name", "user_id", "team", "project", "workflow_tag", "environment", "cost_center")


def _string_list(data: dict[str, Any], name: str, what: str) -> list[str]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{name} must be {what}", param=name)
    return value


class AdminApi:
    def __init__(
        self,
        *,
        keys: KeyService,
        ledger: LedgerStore,
        writer: LedgerWriter,
        audit: AuditRecorder,
    ):
        self._keys = keys
        self._ledger = ledger
        self._writer = writer
        self._audit = audit

    def routes(self) -> list[Route]:
        return [
            Route("/api/keys", self.create_key, methods=["POST"]),
            Route("/api/keys", self.list_keys, methods=["GET"]),
            Route("/api/keys/{key_id}/rotate", self.rotate_key, methods=["POST"]),
            Route("/api/keys/{key_id}", self.revoke_key, methods=["DELETE"]),
            Route("/api/requests", self.requests, methods=["GET"]),
        ]

    async def create_key(self, request: Request) -> Response:
        data = await json_body(request)
        unknown = set(data) - {*_KEY_STRINGS, "pinned", "models", "expires_at", "metadata"}
        if unknown:
            raise InvalidRequest(f"unknown field {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
        row, raw = await self._keys.create(
            **{field: _optional_text(data, field) for field in _KEY_STRINGS},
            pinned=_string_list(data, "pinned", "a list of envelope field names"),
            models=_models(data.get("models")),
            expires_at=_optional_float(data, "expires_at"),
            metadata=_metadata(data.get("metadata")),
        )
        return json_response({**public_view(row, time.time()), "key": raw}, status=201)

    async def list_keys(self, request: Request) -> Response:
        now = time.time()
        rows = await self._keys.list()
        return json_response({"data": [public_view(r, now) for r in rows]})

    async def rotate_key(self, request: Request) -> Response:
        data = await json_body(request)
        grace = data.get("grace_seconds", 3600)
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not 0 <= grace <= MAX_GRACE_SECONDS
        ):
            raise InvalidRequest(
                f"grace_seconds must be a number from 0 to {MAX_GRACE_SECONDS} (ten years)",
                param="grace_seconds",
            )
        row, raw = await self._keys.rotate(request.path_params["key_id"], float(grace))
        return json_response({**public_view(row, time.time()), "key": raw})

    async def revoke_key(self, request: Request) -> Response:
        row = await self._keys.revoke(request.path_params["key_id"])
        return json_response(public_view(row, time.time()))

    async def requests(self, request: Request) -> Response:
        page = await self.request_page(
            caller(request), request.query_params, path_and_query(request)
        )
        return json_response({"data": page.data, "next_cursor": page.next_cursor})

    async def request_page(
        self, principal: AdminPrincipal, q: Mapping[str, str], asked_at: str
    ) -> RequestPage:
        """A page of ledger rows for `principal` (the API's listing and the web UI's
        explorer alike): an admin's listing is audited under `asked_at` before any row
        is read, a member sees its own rows only, any other role none."""
        user_id = _own_rows(principal, q.get("user_id"))
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            raise InvalidRequest("limit must be an integer", param="limit") from None
        status = q.get("status")
        filters = RequestFilters(
            project=q.get("project"),
            team=q.get("team"),
            user_id=user_id,
            session_id=q.get("session_id"),
            workflow_tag=q.get("workflow_tag"),
            key_id=q.get("key_id"),
            model=q.get("model"),
            # str.isdigit is true for '²' too, which int() refuses; the store checks the rest
            status=int(status) if status and status.isascii() and status.isdigit() else status,
            since=parse_time(q.get("since"), "since"),
            until=parse_time(q.get("until"), "until"),
        )
        await record_people_view(self._audit, principal, asked_at)  # no trail, no rows
        await self._writer.flush()  # read-your-writes for the caller
        return await self._ledger.query(filters, min(max(limit, 1), MAX_PAGE), q.get("cursor"))


def _own_rows(principal: AdminPrincipal, asked: str | None) -> str | None:
    """The user_id filter to apply: the one asked for, or, for a caller scoped to one
    user (a member), that user whatever was asked (another user's id is a 403)."""
    scope = analytics_scope(principal)
    if not scope.may_see_people:
        raise PermissionDenied("ledger rows name users", code="role_forbidden")
    if scope.user_id is None:
        return asked
    if asked is not None and asked != scope.user_id:
        raise PermissionDenied(
            f"a member token sees its own user's requests only ({scope.user_id})",
            param="user_id",
            code="role_forbidden",
        )
    return scope.user_id

"""Config as code over HTTP, under /api/config (authentication and the error body are
`admin_auth`'s, as for every /api/ route).

    POST   /api/config                 apply a YAML or JSON body (?dry_run=true, ?replace=true,
                                       ?comment=...); 400 with every problem when invalid;
                                       the answer lists `warnings` (unpriced models, undefined
                                       alert targets, unknown providers, models that would
                                       stop resolving); ?strict=true refuses any (400)
    GET    /api/config                 the latest version and its documents
    GET    /api/config/history         ?limit=50
    GET    /api/config/versions/{n}    one version and its documents
    POST   /api/config/rollback        {"version": N} (?dry_run=true, ?strict=true)
    DELETE /api/config/{type}/{name}   a new version without that document (?dry_run=true,
                                       ?strict=true)

Replicas may change the config at the same time: a change is rebased onto whatever was
written meanwhile (see ConfigService); one that keeps losing that race is a 409 with type
`config_conflict`, nothing applied, safe to send again.

After a change is written, this replica's LiveConfig reloads at once, so the applier sees
the change immediately; other replicas pick it up on their next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.config.live import LiveConfig
from sluicegate.config.parse import Format
from sluicegate.config.service import ApplyResult, ConfigService, ConfigVersion, Expected
from sluicegate.errors import InvalidRequest, PayloadTooLarge

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_HISTORY = 1000
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit INTEGER
ACTOR_HEADER = "x-sluice-actor"  # who ran the CLI, recorded next to the admin principal

GetService = Callable[[Request], ConfigService]
GetLive = Callable[[Request], LiveConfig]
Handler = Callable[[Request], Awaitable[Response]]

_JSON_TYPES = ("application/json", "text/json")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def config_routes(get_service: GetService, get_live: GetLive) -> list[Route]:
    api = _ConfigApi(get_service, get_live)
    table: list[tuple[str, Handler, str]] = [
        ("/api/config", api.apply, "POST"),
        ("/api/config", api.show, "GET"),
        ("/api/config/history", api.history, "GET"),
        ("/api/config/versions/{version:int}", api.version, "GET"),
        ("/api/config/rollback", api.rollback, "POST"),
        ("/api/config/{type}/{name}", api.delete, "DELETE"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in table]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


class _ConfigApi:
    def __init__(self, get_service: GetService, get_live: GetLive):
        self._service = get_service
        self._live = get_live

    async def apply(self, request: Request) -> Response:
        text = await body_text(request)
        live = self._live(request)
        result = await apply_config(
            self._service(request),
            live,
            text,
            applied_by=applied_by(request),
            dry_run=flag(request, "dry_run"),
            comment=request.query_params.get("comment") or None,
            replace=flag(request, "replace"),
            format=body_format(request),
            strict=flag(request, "strict"),
        )
        return json_response({**result_payload(result), **_live_payload(live)})

    async def show(self, request: Request) -> Response:
        current = await self._service(request).current()
        return json_response({**_version_payload(current), **_live_payload(self._live(request))})

    async def version(self, request: Request) -> Response:
        found = await self._service(request).get(_version(request.path_params["version"]))
        return json_response(_version_payload(found))

    async def history(self, request: Request) -> Response:
        limit = _int(request.query_params.get("limit", "50"), "limit")
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidRequest(f"limit must be between 1 and {MAX_HISTORY}", param="limit")
        versions = await self._service(request).history(limit)
        return json_response({"versions": [_version_payload(v, documents=False) for v in versions]})

    async def rollback(self, request: Request) -> Response:
        body = await _json_object(request)
        version = body.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidRequest('body must be {"version": N} with N >= 1', param="version")
        result = await self._service(request).rollback(
            _version(version),
            applied_by(request),
            dry_run=flag(request, "dry_run") or body.get("dry_run") is True,
            strict=flag(request, "strict"),
        )
        return await self._result(request, result)

    async def delete(self, request: Request) -> Response:
        result = await self._service(request).delete(
            request.path_params["type"],
            request.path_params["name"],
            applied_by(request),
            comment=request.query_params.get("comment") or None,
            dry_run=flag(request, "dry_run"),
            strict=flag(request, "strict"),
        )
        return await self._result(request, result)

    async def _result(self, request: Request, result: ApplyResult) -> Response:
        live = self._live(request)
        await reload_after(live, result)
        return json_response({**result_payload(result), **_live_payload(live)})


async def apply_config(
    service: ConfigService,
    live: LiveConfig,
    text: str,
    *,
    applied_by: str,
    dry_run: bool = False,
    comment: str | None = None,
    replace: bool = False,
    format: Format = "auto",
    strict: bool = False,
    expected: Expected | None = None,
) -> ApplyResult:
    """What `POST /api/config` (and so `sluicegate apply`) does, and the web UI's apply
    from an action queue with it: validate, version, record who, then load it here."""
    result = await service.apply(
        text,
        applied_by=applied_by,
        dry_run=dry_run,
        comment=comment,
        replace=replace,
        format=format,
        strict=strict,
        expected=expected,
    )
    await reload_after(live, result)
    return result


async def reload_after(live: LiveConfig, result: ApplyResult) -> None:
    """After a change is written, this replica's LiveConfig loads it at once."""
    if result.applied:
        try:
            await live.reload_now()
        except Exception:  # written; the poller will load it when the store answers
            log.warning("version %d written but not reloaded here", result.version, exc_info=True)


def applied_by(request: Request) -> str:
    """The authenticated principal, plus the CLI user's own name when it sends one."""
    principal = getattr(request.state, "principal", None)
    return applied_by_name(principal, request.headers.get(ACTOR_HEADER, ""))


def applied_by_name(principal: object, actor: str) -> str:
    """Who a version is recorded as applied by: the principal's name (else its user or key
    id), and `actor` (who ran the CLI, or the web UI) when it says more."""
    if isinstance(principal, str) and principal:
        who = principal
    else:
        who = next(
            (
                value
                for value in (
                    getattr(principal, attr, None) for attr in ("name", "user_id", "key_id")
                )
                if isinstance(value, str) and value
            ),
            "admin",
        )
    actor = actor.strip()[:80]
    return f"{who} ({actor})" if actor and actor != who else who


def result_payload(result: ApplyResult) -> dict[str, Any]:
    return {
        "version": result.version,
        "previous_version": result.previous_version,
        "changed": result.changed,
        "applied": result.applied,
        "dry_run": result.dry_run,
        "message": result.message,
        "diff": result.diff,
        "documents": [
            {"type": d.type, "name": d.name, "action": d.action} for d in result.documents
        ],
        "warnings": [warning.to_dict() for warning in result.warnings],
    }


def _version_payload(version: ConfigVersion, *, documents: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "version": version.version,
        "applied_at": version.applied_at,
        "applied_by": version.applied_by,
        "comment": version.comment,
        "document_count": len(version.documents),
    }
    if documents:
        payload["documents"] = version.documents
    else:
        payload["documents"] = [
            {"type": d.get("type"), "name": d.get("name")} for d in version.documents
        ]
    return payload


def _live_payload(live: LiveConfig) -> dict[str, Any]:
    error = live.last_error
    return {"live_version": live.version, "live_error": error.message if error else None}


async def body_text(request: Request) -> str:
    body = await _capped_body(request, MAX_CONFIG_BYTES)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the config body must be UTF-8 text") from None


async def _capped_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to pass `limit`: from its declared
    length before a byte is read, else while it streams in, so an oversized body is never
    held whole."""
    too_large = PayloadTooLarge(
        f"the config body is over the limit of {limit} bytes ({limit // 1024 // 1024} MiB)"
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_object(request: Request) -> dict[str, Any]:
    text = await body_text(request)
    try:
        data = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


def body_format(request: Request) -> Format:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return "json" if content_type in _JSON_TYPES else "auto"


def flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidRequest(f"{name} must be true or false, not {value!r}", param=name)


def _version(version: int) -> int:
    """A version number the store can hold; past it there is no such version (400, not a
    database error)."""
    if not 1 <= version <= MAX_VERSION:
        raise InvalidRequest(
            f"version must be between 1 and {MAX_VERSION}, not {version}", param="version"
        )
    return version


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, not {value!r}", param=name) from None

"""Render the one exception tree in the error format of the API the client spoke."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from sluicegate.errors import (
    InternalError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    SluiceError,
    UpstreamHTTPError,
)
from sluicegate.model.request import ClientApi
from sluicegate.wire.registry import WIRES, ClientWire

# The model-call paths answer POST only (on the hot path, ahead of the router).
_POST_ONLY = frozenset(wire.path for wire in WIRES.values())


class _MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


def error_headers(exc: SluiceError) -> dict[str, str]:
    headers = {"x-sluice-request-id": exc.request_id or ""}
    attempts = exc.attempt_count
    if attempts is not None:
        headers["x-sluice-attempts"] = str(attempts)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
    if isinstance(exc, LimitExceeded):
        headers["x-sluice-rule-id"] = exc.rule_id
        headers.update({k.lower(): v for k, v in exc.headers.items()})
    if isinstance(exc, UpstreamHTTPError):
        headers["x-sluice-upstream-status"] = str(exc.upstream_status)
    return headers


def error_response(wire: ClientWire, exc: SluiceError) -> Response:
    body = wire.codec.render_error(exc, exc.request_id or "")
    if isinstance(exc, LimitExceeded):
        body = _naming_rule(body, exc)
    return Response(
        body, status_code=exc.status, headers=error_headers(exc), media_type="application/json"
    )


def _naming_rule(body: bytes, exc: LimitExceeded) -> bytes:
    """A policy refusal names its rule and code inside the error object of either API
    (the Anthropic format has no `code` of its own; extra fields are ignored by SDKs)."""
    data = orjson.loads(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error["code"] = error.get("code") or exc.code
        error["rule_id"] = exc.rule_id
    return orjson.dumps(data)


def unknown_route(method: str, path: str, status: int) -> Response | None:
    """Starlette's own 404/405 for a path under /v1/, in the OpenAI error format (the
    format of /v1/models and the admin API too); None for other paths, which the caller
    answers in the admin error shape."""
    if not path.startswith("/v1/"):
        return None
    exc: SluiceError
    if status == 405 or path in _POST_ONLY:
        exc = _MethodNotAllowed(f"{method} is not allowed on {path}")
    else:
        exc = NotFound(f"no API route {path}", code="route_not_found")
    response = error_response(WIRES[ClientApi.OPENAI_CHAT], exc)
    if path in _POST_ONLY:
        response.headers["allow"] = "POST"
    return response


def internal_error(path: str) -> Response:
    """The answer to an unexpected exception (a bug) on a routed path: still JSON with an
    `error` object, in Anthropic's format under /v1/messages and the OpenAI format (which
    is also the admin shape) elsewhere, never Starlette's plain-text page."""
    anthropic = path.startswith(WIRES[ClientApi.ANTHROPIC_MESSAGES].path)
    wire = WIRES[ClientApi.ANTHROPIC_MESSAGES if anthropic else ClientApi.OPENAI_CHAT]
    return error_response(wire, InternalError("internal error; the gateway's log has the cause"))

"""The path every emulated API request takes before its endpoint runs:

read body (at most `limits.MAX_BODY_BYTES`) -> count it -> check auth (and
anthropic-version) -> apply faults (delay, error) -> body must be a JSON object -> endpoint
-> request errors in the API's own shape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sluicegate.emulator import ids
from sluicegate.emulator.faults import RequestFaults
from sluicegate.emulator.limits import MAX_BODY_BYTES
from sluicegate.emulator.sse import sse_response
from sluicegate.emulator.state import EmulatorState
from sluicegate.emulator.wire_errors import (
    Api,
    RequestInvalid,
    default_message,
    error_response,
    invalid_request_response,
)

log = logging.getLogger(__name__)


@dataclass
class ApiCall:
    """One API request as an endpoint sees it, with helpers that add the API's headers."""

    api: Api
    request: Request
    body: dict[str, Any]
    model: str | None
    request_id: str
    faults: RequestFaults
    state: EmulatorState
    started: float

    def headers(self) -> dict[str, str]:
        if self.api is Api.ANTHROPIC:
            return {"request-id": self.request_id}
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        return {
            "x-request-id": self.request_id,
            "openai-processing-ms": str(elapsed_ms),
            "openai-version": "2020-10-01",
        }

    def json(self, payload: Any) -> Response:
        return Response(
            orjson.dumps(payload), media_type="application/json", headers=self.headers()
        )

    def stream(self, events: Iterable[bytes]) -> Response:
        return sse_response(events, self.faults, self.headers())


Handler = Callable[[ApiCall], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def api_of_models_request(request: Request) -> Api:
    """GET /v1/models is shared; the Anthropic SDK always sends anthropic-version."""
    return Api.ANTHROPIC if "anthropic-version" in request.headers else Api.OPENAI


class Gate:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def endpoint(self, handler: Handler, api: Api | Callable[[Request], Api]) -> Endpoint:
        async def run(request: Request) -> Response:
            chosen = api if isinstance(api, Api) else api(request)
            return await self.handle(request, handler, chosen)

        return run

    async def handle(self, request: Request, handler: Handler, api: Api) -> Response:
        started = time.monotonic()
        request_id = ids.anthropic_request_id() if api is Api.ANTHROPIC else ids.openai_request_id()
        body, body_problem = await _json_object(request)
        model = body.get("model") if isinstance(body.get("model"), str) else None
        self.state.count_request(model)
        call = ApiCall(
            api, request, body, model, request_id, self.state.faults_for(model), self.state, started
        )
        refusal = _access_refusal(api, request)
        if refusal is not None:
            return invalid_request_response(api, refusal, request_id, call.headers())
        if call.faults.delay_s > 0:
            await asyncio.sleep(call.faults.delay_s)
        if call.faults.error_status is not None:
            return _fault_response(call, call.faults.error_status)
        try:
            if body_problem is not None:
                raise body_problem
            return handler(call)
        except RequestInvalid as problem:
            return invalid_request_response(api, problem, request_id, call.headers())
        except Exception:  # a bug: answer like the real API's 500, keep serving
            log.exception("emulator: %s %s failed", request.method, request.url.path)
            return error_response(api, 500, default_message(500), request_id)


async def _json_object(request: Request) -> tuple[dict[str, Any], RequestInvalid | None]:
    if request.method in ("GET", "DELETE", "HEAD"):
        return {}, None
    raw = await _capped_body(request)
    if raw is None:
        return {}, RequestInvalid(default_message(413), status=413)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}, RequestInvalid(
            "We could not parse the JSON body of your request.",
            anthropic_message="The request body is not valid JSON.",
        )
    if not isinstance(parsed, dict):
        return {}, RequestInvalid("The request body must be a JSON object.")
    return parsed, None


async def _capped_body(request: Request) -> bytes | None:
    """The body, or None once it is known to pass MAX_BODY_BYTES (the rest is not read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _access_refusal(api: Api, request: Request) -> RequestInvalid | None:
    bearer = request.headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bearer[7:].strip() != ""
    if api is Api.OPENAI:
        if has_bearer:
            return None
        return RequestInvalid(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            status=401,
        )
    if not (request.headers.get("x-api-key", "").strip() or has_bearer):
        return RequestInvalid("x-api-key header is required", status=401)
    if not request.headers.get("anthropic-version", "").strip():
        return RequestInvalid("anthropic-version: header is required")
    return None


def _fault_response(call: ApiCall, status: int) -> Response:
    headers = call.headers()
    if call.faults.retry_after is not None:
        headers["retry-after"] = call.faults.retry_after
    message = call.faults.error_message or default_message(status)
    return error_response(call.api, status, message, call.request_id, headers=headers)

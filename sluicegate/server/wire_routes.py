"""The OpenAI- and Anthropic-compatible endpoints. Each reads the body (bounded), finds the
key, hands an `IncomingCall` to the pipeline and writes what comes back, in the format of
the API the client spoke. The model-call endpoints come from the wire registry
(`sluicegate.wire.registry`): one per registered client API, at its path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluicegate.errors import InvalidRequest, SluiceError
from sluicegate.identity.keys import KeyService
from sluicegate.model.identity import Principal
from sluicegate.model.request import ClientApi
from sluicegate.pipeline import IncomingCall, Pipeline, Reply, StreamReply
from sluicegate.server.errors import error_response
from sluicegate.wire import anthropic_messages
from sluicegate.wire.common import request_object
from sluicegate.wire.registry import WIRES, ClientWire

# The two endpoints beyond the model calls are each one API's own: Anthropic's token
# counting, and a model list whose shape follows the API the caller's headers name.
ANTHROPIC = WIRES[ClientApi.ANTHROPIC_MESSAGES]
OPENAI = WIRES[ClientApi.OPENAI_CHAT]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _gone(left: asyncio.Future[Message] | None) -> bool:
    """Whether the client had left by now (its `receive` watch answered a disconnect)."""
    if left is None or not left.done() or left.cancelled() or left.exception() is not None:
        return False
    return bool(left.result()["type"] == "http.disconnect")


async def _abandon(chunks: AsyncGenerator[bytes, None]) -> None:
    """A stream whose client left before its first byte: start the relay and close it at
    once, so that it closes the provider's stream, settles what was generated so far and
    records the request 499 (a relay never started would do none of these)."""
    try:
        await anext(chunks, None)
    finally:
        await chunks.aclose()


def api_key_from(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def _raw_api_key(raw_headers: list[tuple[bytes, bytes]]) -> str | None:
    api_key = None
    for name, value in raw_headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip().decode("latin-1")
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
    return api_key


async def read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body, or (b"", True) once it passes `limit` bytes (without reading the rest)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return b"", True
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


async def send_json(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    """A complete JSON answer in the two ASGI messages, without building a Response."""
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class WireEndpoints:
    def __init__(
        self,
        pipeline: Pipeline,
        keys: KeyService,
        *,
        max_body_bytes: int,
        models_for: Callable[[Principal], list[str]],
    ):
        self._pipeline = pipeline
        self._keys = keys
        self._limit = max_body_bytes
        self._models_for = models_for

    def routes(self) -> list[Route]:
        """The endpoints that are not on the hot path; see `hot_path`."""
        return [
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    def hot_path(self, app: ASGIApp) -> ASGIApp:
        """The model-call endpoints (one per registered client API) as plain ASGI in front
        of the Starlette app: no middleware stack, router or Request object per call
        (measured: ~14% of the event loop's time at load). Everything else falls through
        to `app`."""
        hot = {wire.path: self._handler(wire) for wire in WIRES.values()}

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                handler = hot.get(scope["path"])
                if handler is not None:
                    await handler(scope, receive, send)
                    return
            await app(scope, receive, send)

        return dispatch

    def _handler(self, wire: ClientWire) -> ASGIApp:
        client_api = wire.api

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            body, too_large = await read_body(scope, receive, self._limit)
            # with the body read, `receive` answers only when the client leaves
            left = None if too_large else asyncio.ensure_future(receive())
            raw_headers = scope["headers"]
            call = IncomingCall(
                client_api=client_api,
                body=body,
                raw_headers=raw_headers,
                api_key=_raw_api_key(raw_headers),
                too_large=too_large,
            )
            try:
                reply = await self._pipeline.handle(call)
            except SluiceError as exc:
                response: Response = error_response(wire, exc)
            else:
                if not isinstance(reply, StreamReply):
                    await self._send_reply(reply, left, send)
                    return
                if _gone(left):
                    await _abandon(reply.chunks)
                    return
                response = StreamingResponse(
                    reply.chunks,
                    media_type="text/event-stream",
                    headers={**SSE_HEADERS, **reply.headers},
                )
            finally:
                if left is not None and not left.done():
                    left.cancel()  # the stream's response watches `receive` itself
            await response(scope, receive, send)

        return handle

    async def _send_reply(
        self, reply: Reply, left: asyncio.Future[Message] | None, send: Send
    ) -> None:
        """Send a whole answer unless its client has gone; either way the pipeline
        records it, once (a client that left is recorded 499, billed for the answer)."""
        gone = _gone(left)
        try:
            if not gone:
                await send_json(send, reply.status, reply.body, reply.headers)
        except BaseException:
            gone = True
            raise
        finally:
            self._pipeline.delivered(reply, client_left=gone)

    async def count_tokens(self, request: Request) -> Response:
        try:
            self._keys.authenticate(api_key_from(request))
            body, too_large = await read_body(request.scope, request.receive, self._limit)
            if too_large:
                raise InvalidRequest("the request body is too large", code="request_too_large")
            tokens = anthropic_messages.estimate_input_tokens(request_object(body))
        except SluiceError as exc:
            return error_response(ANTHROPIC, exc)
        return Response(orjson.dumps({"input_tokens": tokens}), media_type="application/json")

    async def models(self, request: Request) -> Response:
        anthropic = "anthropic-version" in request.headers
        try:
            principal = self._keys.authenticate(api_key_from(request))
        except SluiceError as exc:
            return error_response(ANTHROPIC if anthropic else OPENAI, exc)
        names = self._models_for(principal)
        now = int(time.time())
        if anthropic:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"}
                for n in names
            ]
            payload = {
                "data": data,
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        else:
            payload = {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": now, "owned_by": "sluicegate"}
                    for n in names
                ],
            }
        return Response(orjson.dumps(payload), media_type="application/json")

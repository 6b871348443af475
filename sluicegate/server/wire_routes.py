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
from starlette.types import ASGIApp, Receive, Scope, Send

from sluicegate.errors import (
    ClientDisconnected,
    InvalidRequest,
    Overloaded,
    RequestTimeout,
    SluiceError,
)
from sluicegate.identity.keys import KeyService
from sluicegate.model.identity import Principal
from sluicegate.model.request import ClientApi
from sluicegate.pipeline import IncomingCall, Pipeline, Reply, StreamReply
from sluicegate.server.errors import error_headers, error_response
from sluicegate.server.overload import AdmissionGate, Departure
from sluicegate.wire import anthropic_messages
from sluicegate.wire.common import request_object
from sluicegate.wire.registry import WIRES, ClientWire

# The two endpoints beyond the model calls are each one API's own: Anthropic's token
# counting, and a model list whose shape follows the API the caller's headers name.
ANTHROPIC = WIRES[ClientApi.ANTHROPIC_MESSAGES]
OPENAI = WIRES[ClientApi.OPENAI_CHAT]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def api_key_from(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def _abandon(chunks: AsyncGenerator[bytes, None]) -> None:
    """A stream whose client left before its first byte: start the relay and close it at
    once, so that it closes the provider's stream, settles what was generated so far and
    records the request 499 (a relay never started would do none of these)."""
    try:
        await anext(chunks, None)
    finally:
        await chunks.aclose()


def _raw_api_key(raw_headers: list[tuple[bytes, bytes]]) -> str | None:
    api_key = None
    for name, value in raw_headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip().decode("latin-1")
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
    return api_key


async def read_body(
    scope: Scope, receive: Receive, limit: int, timeout_s: float | None = None
) -> tuple[bytes, bool]:
    """The body, or (b"", True) once it passes `limit` bytes (without reading the rest).
    RequestTimeout when the whole body has not arrived `timeout_s` after the call: a
    client sending half a request must not hold a connection and a slot for ever."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return b"", True
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(receive, limit)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {timeout_s:g} s", code="request_timeout"
        ) from None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
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


def _uncancel() -> None:
    """Take back the cancellation `Departure` asked for, once handled: the handler then
    ends normally instead of the server logging a cancelled application."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


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
        gate: AdmissionGate,
        body_timeout_s: float,
        departure_grace_s: float = 0.0,
    ):
        self._pipeline = pipeline
        self._keys = keys
        self._limit = max_body_bytes
        self._models_for = models_for
        self._gate = gate  # in-flight slots and queue of the model calls (server/overload.py)
        self._body_timeout_s = body_timeout_s
        self._departure_grace_s = departure_grace_s  # Departure.last_look

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
        gate = self._gate
        grace_s = self._departure_grace_s

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            raw_headers = scope["headers"]
            call = IncomingCall(
                client_api=client_api,
                body=b"",
                raw_headers=raw_headers,
                api_key=_raw_api_key(raw_headers),
            )
            try:
                call.body, call.too_large = await read_body(
                    scope, receive, self._limit, self._body_timeout_s
                )
            except RequestTimeout as exc:
                await self._refuse(wire, call, exc, send)
                return
            queued = not gate.try_enter()
            if queued and (shed := gate.refusal()) is not None:  # the cheap way out
                await self._refuse(wire, call, shed, send)
                return
            # the grace only when slots are scarce (AdmissionGate.crowded)
            departure = Departure(receive, grace_s=grace_s if queued or gate.crowded() else 0.0)
            call.client_left = departure.last_look
            departure.armed = True
            try:
                if queued:
                    await gate.wait_turn()
            except Overloaded as exc:
                departure.stop()
                await self._refuse(wire, call, exc, send)
                return
            except asyncio.CancelledError:
                departure.stop()
                if not departure.fired:
                    raise
                _uncancel()
                self._pipeline.refuse(call, ClientDisconnected("the client left while queued"))
                return
            loop = asyncio.get_running_loop()
            entered = loop.time()
            try:
                await self._serve(wire, call, departure, scope, receive, send)
            except asyncio.CancelledError:
                if not departure.fired:
                    raise
                _uncancel()  # the client left during the call: the pipeline recorded 499
            finally:
                departure.stop()
                gate.leave(held_s=loop.time() - entered)

        return handle

    async def _serve(
        self,
        wire: ClientWire,
        call: IncomingCall,
        departure: Departure,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """The admitted call: the pipeline, then its answer (a client that leaves before
        the answer is ready cancels the call; once answering, it is the sender's business)."""
        try:
            reply = await self._pipeline.handle(call)
        except ClientDisconnected:
            return  # nobody to answer; recorded as 499
        except SluiceError as exc:
            departure.armed = False
            response: Response = error_response(wire, exc)
        else:
            departure.armed = False
            if not isinstance(reply, StreamReply):
                await self._send_reply(reply, departure, send)
                return
            if departure.left():
                await _abandon(reply.chunks)
                return
            response = StreamingResponse(
                reply.chunks,
                media_type="text/event-stream",
                headers={**SSE_HEADERS, **reply.headers},
            )
        await response(scope, receive, send)

    async def _send_reply(self, reply: Reply, departure: Departure, send: Send) -> None:
        """Send a whole answer unless its client has gone; either way the pipeline
        records it, once (a client that left is recorded 499, billed for the answer)."""
        gone = departure.left()
        try:
            if not gone:
                await send_json(send, reply.status, reply.body, reply.headers)
        except BaseException:
            gone = True
            raise
        finally:
            self._pipeline.delivered(reply, client_left=gone)

    async def _refuse(
        self, wire: ClientWire, call: IncomingCall, error: SluiceError, send: Send
    ) -> None:
        """Answer a request turned away at the edge (shed, body too slow) at once, in its
        client's format, and record it. Shedding must cost far less than serving: no
        Response object, no admission, no provider."""
        self._pipeline.refuse(call, error)
        body = wire.codec.render_error(error, error.request_id or "")
        await send_json(send, error.status, body, error_headers(error))

    async def count_tokens(self, request: Request) -> Response:
        try:
            self._keys.authenticate(api_key_from(request))
            body, too_large = await read_body(
                request.scope, request.receive, self._limit, self._body_timeout_s
            )
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

"""The HTTP provider adapter: one class for every provider kind. The kind's spec supplies
the endpoints (path and wire per operation), the request signer and the stream framing;
all three are resolved here once, at construction. Same-wire calls pass the body through
with the model replaced; cross-wire calls translate through the canonical form."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from sluicegate.errors import InternalError, InvalidRequest, UpstreamTimeout, UpstreamUnavailable
from sluicegate.model.request import ClientApi
from sluicegate.providers.base import ProviderCall, ProviderResult
from sluicegate.providers.config import ProviderAccount
from sluicegate.providers.framing import frame_parser
from sluicegate.providers.kinds.spec import ProviderKindSpec, UpstreamRequest
from sluicegate.providers.streaming import (
    CrossWireTranslator,
    PassthroughTranslator,
    StreamTranslator,
    TranslatedStream,
)
from sluicegate.providers.upstream import UpstreamClient, UpstreamResponse, UpstreamStream
from sluicegate.wire import ChatCodec
from sluicegate.wire.registry import WIRES, ClientWire


@dataclass(frozen=True, slots=True)
class _Translation:
    client: ChatCodec
    upstream: ChatCodec


@dataclass(frozen=True, slots=True)
class _Route:
    """How calls of one client API reach this provider: the URL, the wire the provider
    speaks there, and the translation between the two (None: same wire, pass through)."""

    url: str
    upstream: ClientWire
    translation: _Translation | None


class HttpProvider:
    """Implements `Provider` (`sluicegate.providers.base`) over HTTP for any kind."""

    def __init__(
        self,
        account: ProviderAccount,
        spec: ProviderKindSpec,
        upstream: UpstreamClient,
        api_key: str | None,
    ):
        self.name = account.name
        self.kind = spec.name
        self.spec = spec
        self.default_timeout_s = account.timeout_ms / 1000
        self._upstream = upstream
        self._signer = spec.signer(api_key)
        self._new_parser = frame_parser(spec.framing)
        query = f"?{urlencode(account.query)}" if account.query else ""
        self._routes = _routes(spec, account.base_url, query)
        self._headers = {
            "content-type": "application/json",
            **self._signer.headers,
            **{k.lower(): v for k, v in account.headers.items()},
        }

    # --- request side -------------------------------------------------------------
    def _route(self, call: ProviderCall) -> _Route:
        route = self._routes.get(call.client_api)
        if route is None:
            operation = WIRES[call.client_api].operation
            missing = (
                f"which cannot translate {call.client_api.value} requests"
                if operation in self.spec.endpoints
                else f"which has no {operation.value} API"
            )
            raise InvalidRequest(
                f"model {call.body.get('model')!r} is served by a {self.kind} provider, " + missing,
                param="model",
            )
        return route

    def _headers_for(self, call: ProviderCall) -> dict[str, str]:
        if not call.headers_set and not call.headers_remove:
            return self._headers
        headers = {**self._headers, **{k.lower(): v for k, v in call.headers_set.items()}}
        for name in call.headers_remove:
            headers.pop(name.lower(), None)
        return headers

    def _body(self, route: _Route, call: ProviderCall) -> bytes:
        translation = route.translation
        if translation is None:
            body = route.upstream.codec.prepare_passthrough(
                call.body, call.model, stream=call.stream
            )
        else:
            canonical = translation.client.to_canonical(call.body)
            body = translation.upstream.from_canonical(canonical, call.model, stream=call.stream)
        if call.override_params:
            body.update(call.override_params)
        return orjson.dumps(body)

    def _signed(self, route: _Route, call: ProviderCall) -> UpstreamRequest:
        request = UpstreamRequest(
            "POST", route.url, self._headers_for(call), self._body(route, call)
        )
        return self._signer.sign(request)

    async def _send(self, route: _Route, call: ProviderCall) -> UpstreamResponse:
        if not self._signer.signs_each_request:
            return await self._upstream.request(
                "POST", route.url, self._headers_for(call), self._body(route, call), call.timeout_s
            )
        signed = self._signed(route, call)
        return await self._upstream.request(
            signed.method, signed.url, signed.headers, signed.body, call.timeout_s
        )

    async def _open(self, route: _Route, call: ProviderCall) -> UpstreamStream:
        first_byte_timeout = call.ttft_timeout_s or call.timeout_s
        if not self._signer.signs_each_request:
            return await self._upstream.open_stream(
                route.url,
                self._headers_for(call),
                self._body(route, call),
                first_byte_timeout=first_byte_timeout,
                idle_timeout=call.timeout_s,
            )
        signed = self._signed(route, call)
        if signed.method != "POST":  # the upstream client streams POST requests only
            raise InternalError(f"a {self.kind} signer changed a stream's method from POST")
        return await self._upstream.open_stream(
            signed.url,
            signed.headers,
            signed.body,
            first_byte_timeout=first_byte_timeout,
            idle_timeout=call.timeout_s,
        )

    # --- calls ----------------------------------------------------------------------
    async def complete(self, call: ProviderCall) -> ProviderResult:
        route = self._route(call)
        response = await self._send(route, call)
        codec = route.upstream.codec
        if response.status >= 400:
            raise codec.parse_error(response.status, response.body, response.headers)
        data = _json(response.body)
        upstream_id = response.headers.get("x-request-id") or response.headers.get("request-id")
        translation = route.translation
        if translation is None:
            return ProviderResult(
                body=response.body,
                usage=codec.usage_from_response(data),
                response_model=codec.response_model(data),
                upstream_request_id=upstream_id,
            )
        canonical = translation.upstream.response_to_canonical(data)
        return ProviderResult(
            body=orjson.dumps(translation.client.response_from_canonical(canonical)),
            usage=canonical.usage,
            response_model=canonical.model,
            upstream_request_id=upstream_id,
        )

    async def open_stream(self, call: ProviderCall) -> TranslatedStream:
        """The stream, once its first content event is in hand. One deadline covers the
        connection, the response headers and that first event (`ttft_timeout_ms`, else
        the target's timeout), as `timeout_ms` covers a whole non-streamed call: a
        provider that accepts and never answers is an UpstreamTimeout the router can fall
        back from, not a stream that hangs until the client gives up."""
        route = self._route(call)
        translator = _translator(route, call)  # before the call: a wire that cannot stream
        first_token_s = call.ttft_timeout_s or call.timeout_s
        try:
            async with asyncio.timeout(first_token_s):
                return await self._first_token(route, call, translator)
        except TimeoutError:
            raise UpstreamTimeout(f"no first token within {first_token_s:.1f}s") from None

    async def _first_token(
        self, route: _Route, call: ProviderCall, translator: StreamTranslator
    ) -> TranslatedStream:
        upstream = await self._open(route, call)
        if upstream.status >= 400:
            try:
                payload = await upstream.read()
            finally:
                upstream.close()
            raise route.upstream.codec.parse_error(upstream.status, payload, upstream.headers)
        stream = TranslatedStream(
            upstream,
            translator,
            upstream.headers.get("x-request-id") or upstream.headers.get("request-id"),
            self._new_parser(),
        )
        await stream.prime(None)  # the caller's deadline bounds it; prime closes on failure
        return stream


def _routes(spec: ProviderKindSpec, base_url: str, query: str) -> dict[ClientApi, _Route]:
    """Every client API this kind can serve: its operation has an endpoint here, and the
    endpoint speaks the client's wire or both sides can translate through the canonical form."""
    routes: dict[ClientApi, _Route] = {}
    for api, client in WIRES.items():
        endpoint = spec.endpoints.get(client.operation)
        if endpoint is None:
            continue
        url = base_url + endpoint.path + query
        if endpoint.wire is client:
            routes[api] = _Route(url, endpoint.wire, None)
        elif client.chat is not None and endpoint.wire.chat is not None:
            routes[api] = _Route(url, endpoint.wire, _Translation(client.chat, endpoint.wire.chat))
    return routes


def _translator(route: _Route, call: ProviderCall) -> StreamTranslator:
    include_usage = call.client_wants_stream_usage
    if route.translation is not None:
        return CrossWireTranslator(
            route.translation.upstream, route.translation.client, include_usage
        )
    if route.upstream.chat is None:
        raise InvalidRequest(f"{call.client_api.value} requests cannot stream")
    return PassthroughTranslator(route.upstream.chat, include_usage)


def _json(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise UpstreamUnavailable("the provider answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamUnavailable("the provider answered with JSON that is not an object")
    return data

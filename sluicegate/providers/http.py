"""The HTTP provider adapter: one class for every provider kind; `ProviderKind` supplies
the path, authentication and wire codec. Same-wire calls pass the body through with the
model replaced; cross-wire calls translate through the canonical form."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import orjson

from sluicegate.errors import InvalidRequest, UpstreamUnavailable
from sluicegate.model.request import ClientApi
from sluicegate.providers.base import ProviderCall, ProviderResult
from sluicegate.providers.config import ProviderAccount
from sluicegate.providers.kinds import KINDS
from sluicegate.providers.streaming import (
    CrossWireTranslator,
    PassthroughTranslator,
    StreamTranslator,
    TranslatedStream,
)
from sluicegate.providers.upstream import UpstreamClient
from sluicegate.wire import anthropic_messages, openai_chat, openai_embeddings

CLIENT_WIRES: dict[ClientApi, ModuleType] = {
    ClientApi.OPENAI_CHAT: openai_chat,
    ClientApi.ANTHROPIC_MESSAGES: anthropic_messages,
}


class HttpProvider:
    def __init__(self, account: ProviderAccount, upstream: UpstreamClient, api_key: str | None):
        self.name = account.name
        self.kind = account.kind
        self.default_timeout_s = account.timeout_ms / 1000
        self._spec = KINDS[account.kind]
        self._upstream = upstream
        query = f"?{urlencode(account.query)}" if account.query else ""
        self._chat_url = account.base_url + self._spec.chat_path + query
        self._embeddings_url = (
            account.base_url + self._spec.embeddings_path + query
            if self._spec.embeddings_path
            else None
        )
        self._headers = {
            "content-type": "application/json",
            **self._spec.auth_headers(api_key),
            **{k.lower(): v for k, v in account.headers.items()},
        }

    # --- request side -------------------------------------------------------------
    def _headers_for(self, call: ProviderCall) -> dict[str, str]:
        if not call.headers_set and not call.headers_remove:
            return self._headers
        headers = {**self._headers, **{k.lower(): v for k, v in call.headers_set.items()}}
        for name in call.headers_remove:
            headers.pop(name.lower(), None)
        return headers

    def _chat_body(self, call: ProviderCall) -> dict[str, Any]:
        client_wire = CLIENT_WIRES[call.client_api]
        if client_wire is self._spec.wire:
            body = self._spec.wire.prepare_passthrough(call.body, call.model, stream=call.stream)
        else:
            canonical = client_wire.to_canonical(call.body)
            body = self._spec.wire.from_canonical(canonical, call.model, stream=call.stream)
        if call.override_params:
            body.update(call.override_params)
        return body

    # --- calls ----------------------------------------------------------------------
    async def complete(self, call: ProviderCall) -> ProviderResult:
        if call.client_api is ClientApi.OPENAI_EMBEDDINGS:
            return await self._embed(call)
        response = await self._upstream.request(
            "POST",
            self._chat_url,
            self._headers_for(call),
            orjson.dumps(self._chat_body(call)),
            call.timeout_s,
        )
        wire = self._spec.wire
        if response.status >= 400:
            raise wire.parse_error(response.status, response.body, response.headers)
        data = _json(response.body)
        upstream_id = response.headers.get("x-request-id") or response.headers.get("request-id")
        client_wire = CLIENT_WIRES[call.client_api]
        if client_wire is wire:
            return ProviderResult(
                body=response.body,
                usage=wire.usage_from_response(data),
                response_model=wire.response_model(data),
                upstream_request_id=upstream_id,
            )
        canonical = wire.response_to_canonical(data)
        return ProviderResult(
            body=orjson.dumps(client_wire.response_from_canonical(canonical)),
            usage=canonical.usage,
            response_model=canonical.model,
            upstream_request_id=upstream_id,
        )

    async def _embed(self, call: ProviderCall) -> ProviderResult:
        if self._embeddings_url is None:
            raise InvalidRequest(
                f"model {call.body.get('model')!r} is served by a {self.kind} provider, "
                "which has no embeddings API",
                param="model",
            )
        body = {**call.body, "model": call.model, **call.override_params}
        response = await self._upstream.request(
            "POST",
            self._embeddings_url,
            self._headers_for(call),
            orjson.dumps(body),
            call.timeout_s,
        )
        if response.status >= 400:
            raise openai_chat.parse_error(response.status, response.body, response.headers)
        data = _json(response.body)
        return ProviderResult(
            body=response.body,
            usage=openai_embeddings.usage_from_response(data),
            response_model=data.get("model"),
            upstream_request_id=response.headers.get("x-request-id"),
        )

    async def open_stream(self, call: ProviderCall) -> TranslatedStream:
        wire = self._spec.wire
        client_wire = CLIENT_WIRES[call.client_api]
        upstream = await self._upstream.open_stream(
            self._chat_url,
            self._headers_for(call),
            orjson.dumps(self._chat_body(call)),
            first_byte_timeout=call.ttft_timeout_s or call.timeout_s,
            idle_timeout=call.timeout_s,
        )
        if upstream.status >= 400:
            payload = await upstream.read()
            upstream.close()
            raise wire.parse_error(upstream.status, payload, upstream.headers)
        translator: StreamTranslator
        if client_wire is wire:
            translator = PassthroughTranslator(wire, call.client_wants_stream_usage)
        else:
            translator = CrossWireTranslator(wire, client_wire, call.client_wants_stream_usage)
        stream = TranslatedStream(
            upstream,
            translator,
            upstream.headers.get("x-request-id") or upstream.headers.get("request-id"),
        )
        await stream.prime(call.ttft_timeout_s or call.timeout_s)
        return stream


def _json(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise UpstreamUnavailable("the provider answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamUnavailable("the provider answered with JSON that is not an object")
    return data

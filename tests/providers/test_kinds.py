"""The provider-kind registry and the adapter built on it: paths, signing and framing come
from the kind's spec, resolved once; an unknown kind is refused at config time."""

from __future__ import annotations

import hashlib

import msgspec
import orjson
import pytest

from sluicegate.config.parse import parse_documents
from sluicegate.config.problems import ConfigValidationError
from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import ConfigError, InvalidRequest
from sluicegate.model.request import ClientApi
from sluicegate.providers.base import Provider, ProviderCall
from sluicegate.providers.catalog import build_catalog
from sluicegate.providers.config import ProviderAccount
from sluicegate.providers.framing import FRAMINGS, frame_parser
from sluicegate.providers.http import HttpProvider
from sluicegate.providers.kinds import PROVIDER_KINDS, provider_kind
from sluicegate.providers.kinds.spec import ProviderKindSpec, UpstreamRequest
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.wire.registry import WIRES, Operation

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
OPENAI_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}'
    b"\n\n"
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def chat_call(api: ClientApi = ClientApi.OPENAI_CHAT, *, stream: bool = False) -> ProviderCall:
    body = {"model": "mini", "messages": [{"role": "user", "content": "hello"}]}
    if api is ClientApi.ANTHROPIC_MESSAGES:
        body["max_tokens"] = 16
    return ProviderCall(client_api=api, body=body, model="gpt-4o-mini", stream=stream, timeout_s=5)


def answering(payload: bytes):
    async def handler(method, url, headers, body) -> UpstreamResponse:
        return UpstreamResponse(200, {"x-request-id": "up-1"}, payload)

    return handler


def test_every_kind_is_complete():
    assert set(PROVIDER_KINDS) == {"openai", "anthropic"}
    wires = set(WIRES.values())
    for name, spec in PROVIDER_KINDS.items():
        assert spec.name == name
        assert spec.framing in FRAMINGS
        assert Operation.CHAT in spec.endpoints
        for operation, endpoint in spec.endpoints.items():
            assert endpoint.wire in wires
            assert endpoint.wire.operation is operation


def test_kind_specs_sign_requests_with_their_credentials():
    request = UpstreamRequest("POST", "https://api.example/v1/x", {"content-type": "a/b"}, b"{}")
    openai = provider_kind("openai").signer("sk-1").sign(request)
    assert openai.headers == {"content-type": "a/b", "authorization": "Bearer sk-1"}
    anthropic = provider_kind("anthropic").signer("sk-2").sign(request)
    assert anthropic.headers == {
        "content-type": "a/b",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-2",
    }
    assert (anthropic.method, anthropic.url, anthropic.body) == ("POST", request.url, b"{}")
    assert provider_kind("openai").signer(None).headers == {}


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown provider kind 'gemini'; known kinds: "):
        provider_kind("gemini")
    with pytest.raises(ConfigError, match="unknown stream framing 'event-stream'"):
        frame_parser("event-stream")
    document = (
        "name: p\ntype: gateway-providers\n"
        "providers:\n  - {name: g, kind: gemini, base_url: 'http://g.example'}\n"
    )
    with pytest.raises(ConfigValidationError) as caught:
        parse_documents(document, DocumentRegistry())
    assert "providers[0].kind: unknown provider kind 'gemini'; known kinds: anthropic, openai" in (
        caught.value.message
    )


async def test_header_auth_paths_and_query_from_the_spec():
    upstream = FakeUpstream(answering(orjson.dumps(OPENAI_ANSWER)))
    account = ProviderAccount(
        name="azure",
        kind="openai",
        base_url="https://azure.example/openai/deployments/d",
        api_key_env="KEY",
        headers={"X-Tenant": "t1"},
        query={"api-version": "2024-10-21"},
    )
    provider: Provider = HttpProvider(account, provider_kind("openai"), upstream, "sk-1")
    result = await provider.complete(chat_call())
    method, url, headers, body = upstream.calls[0]
    assert (method, url) == (
        "POST",
        "https://azure.example/openai/deployments/d/chat/completions?api-version=2024-10-21",
    )
    assert headers == {
        "content-type": "application/json",
        "authorization": "Bearer sk-1",
        "x-tenant": "t1",
    }
    assert orjson.loads(body or b"")["model"] == "gpt-4o-mini"
    assert (result.usage.input_tokens, result.response_model) == (3, "gpt-4o-mini-2024")


async def test_a_kind_without_the_operation_refuses_the_call():
    account = ProviderAccount(name="claude", kind="anthropic", base_url="https://a.example")
    upstream = FakeUpstream(answering(b"{}"))
    provider = HttpProvider(account, provider_kind("anthropic"), upstream, None)
    call = ProviderCall(
        client_api=ClientApi.OPENAI_EMBEDDINGS,
        body={"model": "embed", "input": "x"},
        model="embed",
        stream=False,
        timeout_s=5,
    )
    with pytest.raises(InvalidRequest, match="anthropic provider, which has no embeddings API"):
        await provider.complete(call)
    assert upstream.calls == []


class DigestSigner:
    """A whole-request signer in the shape of SigV4: it reads the final URL, headers and
    body and adds a signature over them (and may move the request elsewhere)."""

    headers: dict[str, str] = {}
    signs_each_request = True

    def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        digest = hashlib.sha256(request.url.encode() + request.body).hexdigest()
        headers = {**request.headers, "x-signature": digest}
        return msgspec.structs.replace(request, url=request.url + "?signed=1", headers=headers)


SIGNED_KIND = ProviderKindSpec(
    name="signed",
    endpoints=provider_kind("openai").endpoints,
    signer=lambda api_key: DigestSigner(),
)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_whole_request_signer_sees_the_final_request(stream):
    payload = OPENAI_STREAM if stream else orjson.dumps(OPENAI_ANSWER)
    upstream = FakeUpstream(answering(payload))
    account = ProviderAccount(name="s", kind="openai", base_url="https://s.example/v1")
    provider = HttpProvider(account, SIGNED_KIND, upstream, "secret")
    call = msgspec.structs.replace(chat_call(stream=stream), headers_set={"X-Edit": "1"})
    if stream:
        opened = await provider.open_stream(call)
        assert b"".join([chunk async for chunk in opened]).endswith(b"data: [DONE]\n\n")
    else:
        await provider.complete(call)
    method, url, headers, body = upstream.calls[0]
    assert (method, url) == ("POST", "https://s.example/v1/chat/completions?signed=1")
    expected = hashlib.sha256(b"https://s.example/v1/chat/completions" + (body or b""))
    assert headers["x-signature"] == expected.hexdigest()
    assert headers["x-edit"] == "1"  # per-call header edits happen before signing


async def test_cross_wire_stream_uses_the_kind_framing():
    upstream = FakeUpstream(answering(OPENAI_STREAM))
    account = ProviderAccount(name="o", kind="openai", base_url="https://o.example/v1")
    provider = HttpProvider(account, provider_kind("openai"), upstream, "k")
    opened = await provider.open_stream(chat_call(ClientApi.ANTHROPIC_MESSAGES, stream=True))
    out = b"".join([chunk async for chunk in opened])
    assert out.startswith(b"event: message_start\n")
    assert out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_default_catalog_reaches_the_emulator_with_each_kind_credentials():
    async def handler(method, url, headers, body) -> UpstreamResponse:
        answer = ANTHROPIC_ANSWER if url.endswith("/messages") else OPENAI_ANSWER
        return UpstreamResponse(200, {}, orjson.dumps(answer))

    upstream = FakeUpstream(handler)
    catalog = build_catalog([], upstream, emulator_url="http://gw:1/emulator", env={})
    assert catalog.emulated == ("openai", "anthropic")
    for name in ("openai", "anthropic"):
        provider = catalog.provider(name)
        assert provider is not None
        await provider.complete(chat_call(ClientApi.OPENAI_CHAT))
    (_, openai_url, openai_headers, _), (_, anthropic_url, anthropic_headers, _) = upstream.calls
    assert openai_url == "http://gw:1/emulator/v1/chat/completions"
    assert openai_headers == {
        "content-type": "application/json",
        "authorization": "Bearer emulator",
    }
    assert anthropic_url == "http://gw:1/emulator/v1/messages"
    assert anthropic_headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "emulator",
    }


async def test_default_catalog_calls_the_real_api_when_its_key_is_set():
    upstream = FakeUpstream(answering(orjson.dumps(OPENAI_ANSWER)))
    catalog = build_catalog(
        [], upstream, emulator_url="http://gw:1/emulator", env={"OPENAI_API_KEY": "sk"}
    )
    assert catalog.emulated == ("anthropic",)
    provider = catalog.provider("openai")
    assert provider is not None
    await provider.complete(chat_call())
    _, url, headers, _ = upstream.calls[0]
    assert url == "https://api.openai.com/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk"

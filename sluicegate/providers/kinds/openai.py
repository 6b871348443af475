"""OpenAI (and the many servers compatible with it: Azure OpenAI, vLLM, Ollama, ...):
bearer-token auth, chat and embeddings."""

from __future__ import annotations

from sluicegate.model.request import ClientApi
from sluicegate.providers.kinds.spec import (
    DefaultAccount,
    Endpoint,
    HeaderSigner,
    ProviderKindSpec,
)
from sluicegate.wire.registry import WIRES, Operation


def bearer(api_key: str | None) -> HeaderSigner:
    return HeaderSigner({"authorization": f"Bearer {api_key}"} if api_key else {})


KIND = ProviderKindSpec(
    name="openai",
    endpoints={
        Operation.CHAT: Endpoint("/chat/completions", WIRES[ClientApi.OPENAI_CHAT]),
        Operation.EMBEDDINGS: Endpoint("/embeddings", WIRES[ClientApi.OPENAI_EMBEDDINGS]),
    },
    signer=bearer,
    default_account=DefaultAccount("https://api.openai.com/v1", "OPENAI_API_KEY", "/v1"),
)

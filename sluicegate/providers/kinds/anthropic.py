"""Anthropic: `x-api-key` auth with a pinned `anthropic-version`; Messages only (there is
no Anthropic embeddings API)."""

from __future__ import annotations

from sluicegate.model.request import ClientApi
from sluicegate.providers.kinds.spec import (
    DefaultAccount,
    Endpoint,
    HeaderSigner,
    ProviderKindSpec,
)
from sluicegate.wire.registry import WIRES, Operation

ANTHROPIC_VERSION = "2023-06-01"


def api_key_header(api_key: str | None) -> HeaderSigner:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return HeaderSigner(headers)


KIND = ProviderKindSpec(
    name="anthropic",
    endpoints={
        Operation.CHAT: Endpoint("/v1/messages", WIRES[ClientApi.ANTHROPIC_MESSAGES]),
    },
    signer=api_key_header,
    default_account=DefaultAccount("https://api.anthropic.com", "ANTHROPIC_API_KEY"),
)

"""What differs between provider kinds: path, authentication headers and wire codec."""

from __future__ import annotations

from types import ModuleType

import msgspec

from sluicegate.wire import anthropic_messages, openai_chat

ANTHROPIC_VERSION = "2023-06-01"


class ProviderKind(msgspec.Struct, frozen=True):
    name: str
    chat_path: str
    embeddings_path: str | None
    wire: ModuleType

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        if self.name == "anthropic":
            headers = {"anthropic-version": ANTHROPIC_VERSION}
            if api_key:
                headers["x-api-key"] = api_key
            return headers
        return {"authorization": f"Bearer {api_key}"} if api_key else {}


KINDS = {
    "openai": ProviderKind("openai", "/chat/completions", "/embeddings", openai_chat),
    "anthropic": ProviderKind("anthropic", "/v1/messages", None, anthropic_messages),
}

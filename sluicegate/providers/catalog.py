"""The provider catalogue built from the `gateway-providers` documents: provider accounts
(adapters with pooled connections), client-facing model names, aliases and prices.

With no provider configured, a default catalogue serves common model names; a provider
whose credential variable is set goes to the real API, the others to the built-in
emulator, so `sluicegate serve` works offline out of the box.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from sluicegate.pricing import PriceBook, PriceOverride
from sluicegate.providers.config import (
    ModelEntry,
    ProviderAccount,
    ProviderKind,
    ProvidersDocument,
)
from sluicegate.providers.http import HttpProvider
from sluicegate.providers.upstream import UpstreamClient

EMULATOR_MOUNT = "/emulator"

DEFAULT_MODELS = {
    "gpt-4o-mini": "openai",
    "gpt-4o": "openai",
    "gpt-4.1-mini": "openai",
    "o4-mini": "openai",
    "text-embedding-3-small": "openai",
    "text-embedding-3-large": "openai",
    "claude-haiku-4-5": "anthropic",
    "claude-sonnet-4-6": "anthropic",
    "claude-opus-4-7": "anthropic",
}
DEFAULT_ALIASES = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-7",
    "mini": "gpt-4o-mini",
}
_REAL: dict[ProviderKind, tuple[str, str]] = {
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": ("https://api.anthropic.com", "ANTHROPIC_API_KEY"),
}


class ModelRoute(msgspec.Struct, frozen=True):
    """A plain (non-virtual) model: which account serves it under which upstream name."""

    name: str
    provider: str
    upstream_model: str


class Catalog:
    def __init__(
        self,
        providers: Mapping[str, HttpProvider],
        models: Mapping[str, ModelRoute],
        aliases: Mapping[str, str],
        prices: PriceBook,
        *,
        emulated: tuple[str, ...] = (),
    ):
        self.providers = dict(providers)
        self.models = dict(models)
        self.aliases = dict(aliases)
        self.prices = prices
        self.emulated = emulated  # provider accounts served by the built-in emulator

    def resolve_alias(self, name: str) -> str:
        return self.aliases.get(name, name)

    def model(self, name: str) -> ModelRoute | None:
        return self.models.get(self.resolve_alias(name))

    def provider(self, name: str) -> HttpProvider | None:
        return self.providers.get(name)


def build_catalog(
    docs: list[ProvidersDocument],
    upstream: UpstreamClient,
    *,
    self_url: str,
    env: Mapping[str, str] = os.environ,
) -> Catalog:
    """`self_url` is the gateway's own base URL, where the emulator is mounted."""
    if not any(doc.providers for doc in docs):
        docs = [default_document(self_url, env), *docs]
    accounts: dict[str, ProviderAccount] = {}
    models: dict[str, ModelEntry] = {}
    aliases: dict[str, str] = {}
    overrides: dict[str, PriceOverride] = {}
    for doc in docs:
        accounts.update({account.name: account for account in doc.providers})
        models.update(doc.models)
        aliases.update(doc.aliases)
        overrides.update({m: PriceOverride(**p.model_dump()) for m, p in doc.prices.items()})
        overrides.update(
            {
                m: PriceOverride(**e.price.model_dump())
                for m, e in doc.models.items()
                if e.price is not None
            }
        )
    providers = {
        name: HttpProvider(
            account, upstream, env.get(account.api_key_env) if account.api_key_env else None
        )
        for name, account in accounts.items()
    }
    routes = {
        name: ModelRoute(name, entry.provider, entry.model or name)
        for name, entry in models.items()
    }
    emulated = tuple(
        name
        for name, account in accounts.items()
        if account.base_url.startswith(self_url.rstrip("/") + EMULATOR_MOUNT)
    )
    return Catalog(providers, routes, aliases, PriceBook(overrides), emulated=emulated)


def default_document(self_url: str, env: Mapping[str, str]) -> ProvidersDocument:
    emulator = self_url.rstrip("/") + EMULATOR_MOUNT
    accounts = []
    for kind, (real_url, key_env) in _REAL.items():
        if env.get(key_env):
            accounts.append(
                ProviderAccount(name=kind, kind=kind, base_url=real_url, api_key_env=key_env)
            )
        else:
            url = emulator + "/v1" if kind == "openai" else emulator
            # The emulator checks that credentials are sent, as the real APIs do.
            auth = (
                {"authorization": "Bearer emulator"}
                if kind == "openai"
                else {"x-api-key": "emulator"}
            )
            accounts.append(ProviderAccount(name=kind, kind=kind, base_url=url, headers=auth))
    return ProvidersDocument(
        name="default-catalogue",
        type="gateway-providers",
        providers=accounts,
        models={name: ModelEntry(provider=p) for name, p in DEFAULT_MODELS.items()},
        aliases=DEFAULT_ALIASES,
    )

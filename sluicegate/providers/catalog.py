"""The provider catalog built from the `gateway-providers` documents: provider accounts
(adapters with pooled connections), client-facing model names, aliases and prices.

With no provider configured, a default catalog serves common model names from the real
APIs (credentials from OPENAI_API_KEY / ANTHROPIC_API_KEY). When the gateway mounts the
provider emulator (`serve --emulator`, a development tool), a provider whose credential
variable is unset goes to the emulator instead, so `make demo` works offline. The catalog
only knows the emulator's URL, never the emulator package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from sluicegate.pricing import ModelRate, PriceBook, PriceOverride
from sluicegate.providers.base import Provider
from sluicegate.providers.config import ModelEntry, ProviderAccount, ProvidersDocument
from sluicegate.providers.http import HttpProvider
from sluicegate.providers.kinds import PROVIDER_KINDS, provider_kind
from sluicegate.providers.upstream import UpstreamClient

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


class ModelRoute(msgspec.Struct, frozen=True):
    """A plain (non-virtual) model: which account serves it under which upstream name."""

    name: str
    provider: str
    upstream_model: str


class Catalog:
    def __init__(
        self,
        providers: Mapping[str, Provider],
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
        self.emulated = emulated  # provider accounts served by the mounted emulator

    def resolve_alias(self, name: str) -> str:
        return self.aliases.get(name, name)

    def model(self, name: str) -> ModelRoute | None:
        return self.models.get(self.resolve_alias(name))

    def provider(self, name: str) -> Provider | None:
        return self.providers.get(name)

    def rate(self, provider: str, model: str, configured: str | None = None) -> ModelRate | None:
        """The price of `model` (the upstream name) on account `provider`. A price set in
        config for the configured (client-facing) name the call was made under applies
        whatever the upstream name is: `fast: {provider: local, model: llama-3-8b, price:
        ...}` is priced as `fast`. None: unpriced (or an unknown account)."""
        account = self.providers.get(provider)
        if account is None:
            return None
        if configured is not None and configured != model:
            route = self.models.get(configured)
            if route is not None and (route.provider, route.upstream_model) == (provider, model):
                override = self.prices.override(configured)
                if override is not None:
                    return override
        return self.prices.rate_for(account.kind, model)

    def rate_of(self, name: str) -> ModelRate | None:
        """The price of a model named in config (a budget's `price_as`): a catalog model
        as it is served, else the name looked up under any provider."""
        name = self.resolve_alias(name)
        route = self.models.get(name)
        if route is not None and route.provider in self.providers:
            return self.rate(route.provider, route.upstream_model, name)
        return self.prices.rate_for(None, name)


def build_catalog(
    docs: list[ProvidersDocument],
    upstream: UpstreamClient,
    *,
    emulator_url: str | None,
    env: Mapping[str, str] = os.environ,
) -> Catalog:
    """`emulator_url` is where the gateway mounts the provider emulator, None when it does
    not (a production `serve`): then the default catalog calls only the real APIs."""
    if not any(doc.providers for doc in docs):
        docs = [default_document(emulator_url, env), *docs]
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
    providers: dict[str, Provider] = {
        name: HttpProvider(
            account,
            provider_kind(account.kind),
            upstream,
            env.get(account.api_key_env) if account.api_key_env else None,
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
        if emulator_url is not None and account.base_url.startswith(emulator_url)
    )
    return Catalog(providers, routes, aliases, PriceBook(overrides), emulated=emulated)


def default_document(emulator_url: str | None, env: Mapping[str, str]) -> ProvidersDocument:
    """The catalog served when no provider is configured: one account per provider kind
    that has a default account, named after the kind, calling the real API; with the
    emulator mounted, the emulator instead for a kind whose credential variable is unset."""
    accounts = []
    for kind, spec in PROVIDER_KINDS.items():
        default = spec.default_account
        if default is None:
            continue
        if emulator_url is None or env.get(default.api_key_env):
            accounts.append(
                ProviderAccount(
                    name=kind, kind=kind, base_url=default.base_url, api_key_env=default.api_key_env
                )
            )
        else:
            # The emulator checks that credentials are sent, as the real APIs do.
            auth = dict(spec.signer("emulator").headers)
            url = emulator_url + default.emulator_path
            accounts.append(ProviderAccount(name=kind, kind=kind, base_url=url, headers=auth))
    return ProvidersDocument(
        name="default-catalogue",
        type="gateway-providers",
        providers=accounts,
        models={name: ModelEntry(provider=p) for name, p in DEFAULT_MODELS.items()},
        aliases=DEFAULT_ALIASES,
    )

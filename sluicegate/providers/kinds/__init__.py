"""The provider kinds the gateway can call: one `ProviderKindSpec` per kind, registered here.

A provider kind is everything that depends on which provider an account is: the path of
each operation it offers and the client wire each speaks (`Endpoint`), how a request is
signed with the account's credentials (`RequestSigner`: fixed headers today, a signature
over the whole request tomorrow), its stream framing (a name in
`sluicegate.providers.framing`) and, optionally, how the default catalogue reaches it.
Nothing outside the kind modules branches on which provider it is; the adapter resolves
its spec once, when the catalogue is built.

Adding a provider kind (say Gemini or Bedrock):
  1. a module in `sluicegate/providers/kinds/` defining `KIND = ProviderKindSpec(...)`
     (a new wire it speaks goes into `sluicegate.wire.registry`; a new framing into
     `sluicegate.providers.framing`);
  2. one entry in `PROVIDER_KINDS` below.
Accounts of the new kind are then accepted by `gateway-providers` documents.
"""

from __future__ import annotations

from collections.abc import Mapping

from sluicegate.errors import ConfigError
from sluicegate.providers.kinds import anthropic, openai
from sluicegate.providers.kinds.spec import ProviderKindSpec

PROVIDER_KINDS: Mapping[str, ProviderKindSpec] = {
    spec.name: spec
    for spec in (
        openai.KIND,
        anthropic.KIND,
    )
}


def provider_kind(name: str) -> ProviderKindSpec:
    """The spec of a kind; ConfigError naming the known kinds if there is none."""
    spec = PROVIDER_KINDS.get(name)
    if spec is None:
        known = ", ".join(sorted(PROVIDER_KINDS))
        raise ConfigError(f"unknown provider kind {name!r}; known kinds: {known}", param="kind")
    return spec

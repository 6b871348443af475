"""What a provider kind is: endpoints per operation (each speaking a client wire), how a
request is signed with an account's credentials, the stream framing, and where the default
catalogue finds the real API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import msgspec

from sluicegate.wire.registry import ClientWire, Operation


class UpstreamRequest(msgspec.Struct):
    """One request as it will go upstream; what a signer sees and may rewrite."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class RequestSigner(Protocol):
    """Authenticates requests with one account's credentials.

    `headers` are the credentials that are the same on every request (API keys, version
    headers): the adapter folds them into the account's headers once, at construction, so
    header auth costs nothing per request. A signer whose signature covers each request
    (method, URL, headers, body: AWS SigV4) sets `signs_each_request`; the adapter then
    passes every request through `sign` after the per-call header edits."""

    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def signs_each_request(self) -> bool: ...

    def sign(self, request: UpstreamRequest) -> UpstreamRequest: ...


@dataclass(frozen=True, slots=True)
class HeaderSigner:
    """Credentials carried in fixed headers (both kinds today)."""

    headers: Mapping[str, str]
    signs_each_request: bool = False

    def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        return msgspec.structs.replace(request, headers={**request.headers, **self.headers})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an operation lives under an account's base URL and which wire it speaks."""

    path: str
    wire: ClientWire


@dataclass(frozen=True, slots=True)
class DefaultAccount:
    """How the default catalogue (no providers configured) reaches this kind: the real
    API when `api_key_env` is set, else the built-in emulator under `emulator_path`."""

    base_url: str
    api_key_env: str
    emulator_path: str = ""


@dataclass(frozen=True, slots=True)
class ProviderKindSpec:
    name: str  # the `kind` of a provider account; also how prices are looked up
    endpoints: Mapping[Operation, Endpoint]
    signer: Callable[[str | None], RequestSigner]  # an account's API key (or None) -> signer
    framing: str = "sse"  # a name in `sluicegate.providers.framing.FRAMINGS`
    default_account: DefaultAccount | None = None

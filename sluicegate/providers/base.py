"""The provider contract: one attempt against one concrete target.

A provider receives the client's body in the client's wire format and returns the answer in
that same format; translation (when the formats differ) happens inside, through the
canonical form in `sluicegate.model.chat`. Errors come out as the `UpstreamError` tree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from sluicegate.model.request import ClientApi
from sluicegate.model.usage import Usage


class ProviderCall(msgspec.Struct, kw_only=True):
    client_api: ClientApi
    body: dict[str, Any]  # the client's body, as sent
    model: str  # upstream model name
    stream: bool
    timeout_s: float
    ttft_timeout_s: float | None = None
    client_wants_stream_usage: bool = False
    override_params: dict[str, Any] = msgspec.field(default_factory=dict)
    headers_set: dict[str, str] = msgspec.field(default_factory=dict)
    headers_remove: tuple[str, ...] = ()
    request_id: str = ""


class ProviderResult(msgspec.Struct, kw_only=True):
    body: bytes  # in the client's wire format
    usage: Usage
    response_model: str | None
    upstream_request_id: str | None = None


class ProviderStream(Protocol):
    """An open stream that has already produced its first event (so a fallback remains
    possible until then). Iterating yields SSE bytes in the client's wire format. Its
    state is read-only to the caller (properties), which an implementation may compute."""

    @property
    def usage(self) -> Usage: ...
    @property
    def response_model(self) -> str | None: ...
    @property
    def upstream_request_id(self) -> str | None: ...  # the provider's id, from its headers
    @property
    def finished(self) -> bool: ...  # the provider sent its terminal event
    @property
    def usage_final(self) -> bool: ...  # its closing usage report came (else: estimate)
    @property
    def content_chars(self) -> int: ...  # content received so far, what an estimate counts

    first_token_at: float | None  # perf_counter() when the first content reached us

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Provider(Protocol):
    """One provider account, built once per config version (`HttpProvider` for every kind
    today). `kind` names its provider kind, which prices are looked up by."""

    name: str
    kind: str
    default_timeout_s: float  # when the route's target sets no timeout of its own

    async def complete(self, call: ProviderCall) -> ProviderResult: ...

    async def open_stream(self, call: ProviderCall) -> ProviderStream: ...

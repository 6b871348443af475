"""An upstream stream re-emitted in the client's wire format (SSE).

Two translators share one shape: `feed(event) -> bytes` plus what they learned (usage,
model, whether content and the terminal event were seen). Same-wire streams pass events
through untouched (bar the usage chunk the gateway asked for on the client's behalf);
cross-wire streams decode to canonical events and encode them again. The upstream body is
cut into events by the provider kind's framing (`sluicegate.providers.framing`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Protocol

from sluicegate.errors import UpstreamTimeout, UpstreamUnavailable
from sluicegate.model.chat import TextDelta, ToolArgsDelta, ToolCallStart
from sluicegate.model.usage import Usage
from sluicegate.providers.framing import FrameParser
from sluicegate.providers.upstream import UpstreamStream
from sluicegate.wire import ChatCodec
from sluicegate.wire.sse import SSEEvent, encode_sse


class StreamTranslator(Protocol):
    """The shape both translators share, which is all `TranslatedStream` relies on."""

    @property
    def usage(self) -> Usage: ...
    @property
    def model(self) -> str | None: ...
    @property
    def finished(self) -> bool: ...
    @property
    def content_seen(self) -> bool: ...
    @property
    def usage_final(self) -> bool: ...  # the provider's closing usage report was seen
    @property
    def content_chars(self) -> int: ...  # content received (for an estimate if it was not)

    def feed(self, event: SSEEvent) -> bytes: ...
    def finish(self) -> bytes: ...


class PassthroughTranslator:
    def __init__(self, wire: ChatCodec, include_usage: bool):
        self._observer = wire.PassthroughObserver(include_usage=include_usage)

    def feed(self, event: SSEEvent) -> bytes:
        if self._observer.observe(event):
            return encode_sse(event.data, event.event)
        return b""

    @property
    def usage(self) -> Usage:
        return self._observer.usage

    @property
    def model(self) -> str | None:
        return self._observer.model

    @property
    def finished(self) -> bool:
        return self._observer.finished

    @property
    def content_seen(self) -> bool:
        return self._observer.first_content_seen

    @property
    def usage_final(self) -> bool:
        return self._observer.usage_final

    @property
    def content_chars(self) -> int:
        return self._observer.content_chars

    def finish(self) -> bytes:
        return b""


class CrossWireTranslator:
    def __init__(self, provider_wire: ChatCodec, client_wire: ChatCodec, include_usage: bool):
        self._decoder = provider_wire.StreamDecoder()
        self._encoder = client_wire.StreamEncoder(include_usage=include_usage)
        self.content_seen = False

    def feed(self, event: SSEEvent) -> bytes:
        out = b""
        for item in self._decoder.feed(event):
            if isinstance(item, TextDelta | ToolCallStart | ToolArgsDelta):
                self.content_seen = True
            out += self._encoder.encode(item)
        return out

    @property
    def usage(self) -> Usage:
        return self._decoder.usage

    @property
    def model(self) -> str | None:
        return self._decoder.model

    @property
    def finished(self) -> bool:
        return self._decoder.finished

    @property
    def usage_final(self) -> bool:
        return self._decoder.usage_final

    @property
    def content_chars(self) -> int:
        return self._decoder.content_chars

    def finish(self) -> bytes:
        return self._encoder.finish()


class TranslatedStream:
    """Implements `ProviderStream`. `prime()` reads until the first content event so the
    router can still fall back (or time out on TTFT) before the client sees a byte."""

    def __init__(
        self,
        upstream: UpstreamStream,
        translator: StreamTranslator,
        request_id: str | None,
        parser: FrameParser,
    ):
        self._upstream = upstream
        self._translator = translator
        self._chunks = upstream.iter_chunks()
        self._parser = parser
        self._buffered = b""
        self.upstream_request_id = request_id
        self.first_token_at: float | None = None

    @property
    def usage(self) -> Usage:
        return self._translator.usage

    @property
    def response_model(self) -> str | None:
        return self._translator.model

    @property
    def finished(self) -> bool:
        return self._translator.finished

    @property
    def usage_final(self) -> bool:
        return self._translator.usage_final

    @property
    def content_chars(self) -> int:
        return self._translator.content_chars

    async def prime(self, ttft_timeout_s: float | None) -> None:
        try:
            async with asyncio.timeout(ttft_timeout_s):
                while not self._translator.content_seen and not self._translator.finished:
                    chunk = await anext(self._chunks, None)
                    if chunk is None:
                        break
                    self._buffered += self._feed(chunk)
        except TimeoutError:
            self.close()
            raise UpstreamTimeout(f"no first token within {ttft_timeout_s:.1f}s") from None
        except BaseException:
            self.close()
            raise

    def _feed(self, chunk: bytes) -> bytes:
        out = b""
        for event in self._parser.feed(chunk):
            out += self._translator.feed(event)
        if out and self.first_token_at is None and self._translator.content_seen:
            self.first_token_at = time.perf_counter()
        return out

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._buffered:
            yield self._buffered
            self._buffered = b""
        async for chunk in self._chunks:
            out = self._feed(chunk)
            if out:
                yield out
        if not self._translator.finished:
            raise UpstreamUnavailable("the provider's stream ended before its final event")
        tail = self._translator.finish()
        if tail:
            yield tail

    def close(self) -> None:
        self._upstream.close()

"""Server-sent events: encoding, and pacing a stream by its faults (first-event delay,
gaps between events, an abrupt cut)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Send

from sluicegate.emulator.faults import RequestFaults

OPENAI_DONE = b"data: [DONE]\n\n"


class StreamCut(Exception):
    """Ends a paced stream early; `SseResponse` then leaves the body unfinished."""


class SseResponse(StreamingResponse):
    """A stream that can be cut: on StreamCut it returns without the final body message,
    so the server drops the connection and the client sees an incomplete body, as when an
    upstream dies, not a clean end (and the server logs no traceback)."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except StreamCut:
            return


def openai_event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def anthropic_event(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def paced(events: Iterable[bytes], faults: RequestFaults) -> AsyncIterator[bytes]:
    for sent, event in enumerate(events):
        if faults.drop_after_events is not None and sent >= faults.drop_after_events:
            raise StreamCut(f"emulated stream cut after {sent} events")
        delay = faults.ttft_s if sent == 0 else faults.inter_chunk_s
        if delay > 0:
            await asyncio.sleep(delay)
        yield event


def sse_response(
    events: Iterable[bytes], faults: RequestFaults, headers: dict[str, str]
) -> StreamingResponse:
    return SseResponse(
        paced(events, faults),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", **headers},
    )

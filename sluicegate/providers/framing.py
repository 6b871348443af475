"""Stream framings: how a provider cuts its streaming body into events.

Both providers today frame streams as server-sent events. A provider kind names its framing
(`ProviderKindSpec.framing`); the adapter resolves the name here once, at construction, and
makes one parser per stream. A new framing (AWS event-stream for Bedrock, say) is a module
with a parser class plus one entry in `FRAMINGS`; its parser yields the same `SSEEvent`
(event name + data bytes) that the wire decoders read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from sluicegate.errors import ConfigError
from sluicegate.wire.sse import SSEEvent, SSEParser


class FrameParser(Protocol):
    """Fed raw body chunks as they arrive; returns the events they completed."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...


FRAMINGS: Mapping[str, Callable[[], FrameParser]] = {
    "sse": SSEParser,
}


def frame_parser(name: str) -> Callable[[], FrameParser]:
    """The parser factory for a framing name; ConfigError if no framing has that name."""
    factory = FRAMINGS.get(name)
    if factory is None:
        known = ", ".join(sorted(FRAMINGS))
        raise ConfigError(f"unknown stream framing {name!r}; known framings: {known}")
    return factory

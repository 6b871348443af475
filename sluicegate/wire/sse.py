"""Server-sent events: an incremental parser for provider streams and the encoder for ours.

Follows the WHATWG event-stream rules the providers rely on: lines end in CRLF, LF or CR;
`:` starts a comment; `data` lines of one event join with LF; a blank line dispatches.
`id` and `retry` are ignored: neither provider uses them and the gateway never replays.
"""

from __future__ import annotations

import msgspec


class SSEEvent(msgspec.Struct, frozen=True):
    event: str | None
    data: bytes

    def encode(self) -> bytes:
        """The event as bytes to forward to a client (normalised framing, same content)."""
        return encode_sse(self.data, self.event)


class SSEParser:
    """Feed raw body chunks as they arrive; get back the events they completed."""

    def __init__(self) -> None:
        self._pending = b""  # an unterminated line carried to the next chunk
        self._skip_lf = False  # the last chunk ended in CR: a leading LF completes CRLF
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = chunk[-1:] == b"\r"
        buf = self._pending + chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if line:
                self._field(line)
            elif self._data:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
            else:
                self._event = None  # a blank line with no data dispatches nothing
        return events

    def _field(self, line: bytes) -> None:
        if line[0] == 0x3A:  # ":" comment, used by proxies as keep-alive
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    if b"\n" not in data and b"\r" not in data:  # always so for compact JSON
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"

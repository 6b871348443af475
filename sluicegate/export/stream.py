"""The export as an HTTP answer: headers at once, then one chunk per page.

    plan (reader.py) -> headers -> begin -> [read page -> encode (worker thread) -> send]*
                     -> end (manifest) -> done

Bounded at every step: one page read at a time, each read and each send with a timeout,
and the page handed to the encoder in a worker thread so that the event loop keeps
serving model calls meanwhile. A client that leaves is noticed before the next page is
read (its `http.disconnect`, or a send that fails) and the export stops there. An export
that cannot go on (the database stops answering, or the client stops reading for
`send_timeout_s`) is aborted by raising: the server then drops the connection, so the
client sees a cut-off transfer, never a short file that looks whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sluicegate.export.formats import Encoder
from sluicegate.export.reader import ExportPlan, ExportReader

SEND_TIMEOUT_S = 60.0  # a client that takes nothing for this long is cut off
SEND_SLICE_BYTES = 256 * 1024

log = logging.getLogger("sluicegate.export")


class ExportAborted(Exception):
    """The export cannot finish; raised after the answer began, so the server cuts the
    connection."""


class _ClientLeft(Exception):
    pass


class ExportStream(Response):
    def __init__(
        self,
        plan: ExportPlan,
        reader: ExportReader,
        encoder: Encoder,
        *,
        media_type: str,
        headers: dict[str, str],
        manifest: dict[str, Any],
        on_done: Callable[[], None],
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self._plan = plan
        self._reader = reader
        self._encoder = encoder
        self._manifest = manifest
        self._on_done = on_done
        self._send_timeout_s = send_timeout_s
        self.rows_sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":  # the headers say what a GET would export; no rows
            try:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                await send({"type": "http.response.body", "body": b""})
            finally:
                self._on_done()
            return
        left = asyncio.ensure_future(_disconnected(receive))
        started = time.monotonic()
        try:
            await self._stream(send, left)
        except _ClientLeft:
            log.info(
                "export of %s stopped after %d of %d rows: the client left",
                self._what(),
                self.rows_sent,
                self._plan.rows,
            )
        except Exception as exc:
            log.error("export of %s aborted after %d rows: %s", self._what(), self.rows_sent, exc)
            raise ExportAborted(f"export of {self._what()} aborted: {exc}") from exc
        else:
            log.info(
                "export of %s: %d rows in %.1f s",
                self._what(),
                self.rows_sent,
                time.monotonic() - started,
            )
        finally:
            left.cancel()
            self._on_done()

    async def _stream(self, send: Send, left: asyncio.Future[None]) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        await self._send(send, start, left)
        await self._body(send, await asyncio.to_thread(self._encoder.begin), left)
        async with contextlib.aclosing(self._reader.pages(self._plan)) as pages:
            async for rows in pages:
                if left.done():
                    raise _ClientLeft
                chunk = await asyncio.to_thread(self._encoder.page, rows)
                self.rows_sent += len(rows)
                await self._body(send, chunk, left)
                if left.done():  # noticed before the next read, not after it
                    raise _ClientLeft
        manifest = {**self._manifest, "rows": self.rows_sent}
        await self._body(send, await asyncio.to_thread(self._encoder.end, manifest), left)
        await self._send(send, {"type": "http.response.body", "body": b""}, left)

    async def _body(self, send: Send, chunk: bytes, left: asyncio.Future[None]) -> None:
        """A page's bytes in slices, so that the send timeout bounds a stall (no slice taken
        for that long), not the time a slow link needs for a whole page."""
        for offset in range(0, len(chunk), SEND_SLICE_BYTES):
            part = chunk[offset : offset + SEND_SLICE_BYTES]
            message = {"type": "http.response.body", "body": part, "more_body": True}
            await self._send(send, message, left)

    async def _send(self, send: Send, message: dict[str, Any], left: asyncio.Future[None]) -> None:
        if left.done():
            raise _ClientLeft
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await send(message)
        except TimeoutError:  # (an OSError too: caught first)
            raise ExportAborted(f"the client read nothing for {self._send_timeout_s:g} s") from None
        except OSError:  # the server could not write: the client is gone
            raise _ClientLeft from None

    def _what(self) -> str:
        plan = self._plan
        return plan.source.name + (f" ({plan.grain})" if plan.grain else "")


async def _disconnected(receive: Receive) -> None:
    """Resolves when the client leaves (a GET's empty body comes first, then nothing but
    `http.disconnect`)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return

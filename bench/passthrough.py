"""The floor under the gateway: a pass-through proxy on the same server and client stack
(granian ASGI + uvloop, one pooled aiohttp session) with none of the gateway's logic: read
the body, POST it upstream, return the answer. `bench/run.py` measures it beside the
gateway, so "added latency" splits into what the stack costs and what sluicegate adds.

    BENCH_UPSTREAM=http://127.0.0.1:PORT \
        granian --interface asgi --loop uvloop bench.passthrough:app
"""

from __future__ import annotations

import os

import aiohttp

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8350")


class PassThrough:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["path"] == "/readyz":
            await _answer(send, 200, b"ok")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000), cookie_jar=aiohttp.DummyCookieJar()
            )
        async with self._session.post(
            UPSTREAM + scope["path"],
            data=body,
            headers={"content-type": "application/json", "authorization": "Bearer x"},
        ) as upstream:
            data = await upstream.read()
        await _answer(send, upstream.status, data)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = PassThrough()

"""A real HTTP receiver on loopback that records what it is sent and can fail on cue."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support import free_port


class Receiver:
    def __init__(self, fail_first: dict[str, int] | None = None, fail_status: int = 500):
        self.fail_first = fail_first or {}  # path -> how many first requests fail
        self.fail_status = fail_status
        self.hits: list[tuple[str, dict[str, str], Any]] = []  # path, headers, body
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _, body in self.hits if p == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append((request.path, dict(request.headers), orjson.loads(await request.read())))
        if len(self.bodies(request.path)) <= self.fail_first.get(request.path, 0):
            return web.Response(status=self.fail_status, text="try again")
        return web.json_response({"ok": True}, status=202)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

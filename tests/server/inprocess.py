"""A whole gateway in this process, driven through its ASGI app with httpx: the same app
`sluicegate serve` runs (hot path, admin gate, lifespan), with no port and no subprocess.

The upstream is injected (`Gateway(settings, upstream=...)`): the provider emulator's own
ASGI app, reached in process at the URLs the default catalogue gives it with the emulator
on (the gateway's self URL + /emulator), so every provider call is a real emulator answer
and no socket is opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message

from sluicegate.emulator import create_app as create_emulator
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.server.app import Gateway
from sluicegate.server.settings import EMULATOR_MOUNT

ADMIN_KEY = "in-process-admin-key"


def emulator_upstream() -> FakeUpstream:
    """An UpstreamClient whose every call is answered by the emulator app in process
    (streams arrive whole and are replayed in small chunks by FakeUpstream)."""
    emulator = Starlette(routes=[Mount(EMULATOR_MOUNT, app=create_emulator())])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))

    async def forward(
        method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> UpstreamResponse:
        response = await http.request(method, url, headers=headers, content=body)
        lowered = {name.lower(): value for name, value in response.headers.items()}
        return UpstreamResponse(response.status_code, lowered, response.content)

    return FakeUpstream(forward)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Start-up before, shut-down after, through the app's ASGI lifespan protocol (what a
    server does; asgi-lifespan is not a dependency)."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))

    async def step(message: str, done: str) -> None:
        await inbox.put({"type": message})
        reply = asyncio.create_task(outbox.get())
        await asyncio.wait({reply, task}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            await task  # the app ended without answering: raises what it raised
        elif reply.result()["type"] != done:
            raise RuntimeError(f"{message}: {reply.result()}")

    await step("lifespan.startup", "lifespan.startup.complete")
    try:
        yield
    finally:
        await step("lifespan.shutdown", "lifespan.shutdown.complete")
        await task


@dataclass
class InProcessGateway:
    gateway: Gateway
    http: httpx.AsyncClient  # reaches the gateway's app; no key set

    @property
    def admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {ADMIN_KEY}"}

    async def create_key(self, **fields: Any) -> str:
        response = await self.http.post("/api/keys", json=fields, headers=self.admin)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    async def apply(self, yaml_text: str) -> dict[str, Any]:
        response = await self.http.post(
            "/api/config",
            content=yaml_text,
            headers={**self.admin, "content-type": "application/yaml"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[InProcessGateway]:
    app = gateway.asgi()
    transport = httpx.ASGITransport(app=app)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield InProcessGateway(gateway, http)

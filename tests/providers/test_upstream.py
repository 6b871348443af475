"""The production upstream client against a real HTTP server on loopback."""

from __future__ import annotations

import pytest
from aiohttp import web

from sluicegate.errors import UpstreamTimeout, UpstreamUnavailable
from sluicegate.providers.upstream import AiohttpUpstream
from tests.support import free_port


@pytest.fixture
async def server():
    seen: list[dict[str, str]] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        response = web.json_response({"ok": True}, headers={"X-Request-ID": "up-1"})
        response.set_cookie("__cf_bm", "tenant-a-session")  # as provider edges do
        return response

    async def slow(request: web.Request) -> web.Response:
        import asyncio

        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_answers_with_status_lower_case_headers_and_body(server):
    base, _ = server
    upstream = AiohttpUpstream()
    try:
        response = await upstream.request(
            "POST", base + "/v1/chat/completions", {"content-type": "application/json"}, b"{}", 5.0
        )
    finally:
        await upstream.close()
    assert response.status == 200
    assert response.headers["x-request-id"] == "up-1"
    assert response.body == b'{"ok": true}'


async def test_cookies_a_provider_sets_are_not_sent_on_later_calls(server):
    """One pooled client serves every tenant: a cookie set on one call must not ride along."""
    base, seen = server
    base = base.replace("127.0.0.1", "localhost")  # cookie jars ignore cookies from bare IPs
    upstream = AiohttpUpstream()
    try:
        for _ in range(2):
            await upstream.request("POST", base + "/v1/chat/completions", {}, b"{}", 5.0)
    finally:
        await upstream.close()
    assert len(seen) == 2
    assert "Cookie" not in seen[1]


async def test_timeout_and_refused_connection_map_to_the_error_tree(server):
    base, _ = server
    upstream = AiohttpUpstream()
    try:
        with pytest.raises(UpstreamTimeout):
            await upstream.request("POST", base + "/slow", {}, b"{}", 0.2)
        with pytest.raises(UpstreamUnavailable):
            await upstream.request("POST", f"http://127.0.0.1:{free_port()}/x", {}, b"{}", 2.0)
    finally:
        await upstream.close()

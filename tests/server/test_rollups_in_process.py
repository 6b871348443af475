"""Rollups and client tools through the whole gateway in process (hot path, pipeline,
writer, store), on SQLite and PostgreSQL: requests of several teams, tools and sessions,
refusals included, land in rollups that equal the raw rows; the analytics config's keys
are rolled up from when it is applied; two gateways on one PostgreSQL add to the same
rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.coverage import key_coverage
from sluicegate.server.app import Gateway
from tests.analytics.reference import (
    assert_same_rollups,
    expected_rollups,
    stored_rollups,
    total_requests,
)
from tests.db.databases import SQL_BACKENDS, Databases
from tests.db.databases import databases as databases  # the fixture
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving

HELLO = [{"role": "user", "content": "Hello there"}]
CHAT = {"model": "gpt-4o-mini", "messages": HELLO}
ANALYTICS = """name: analytics
type: gateway-analytics-config
rollup_metadata_keys: [customer_id]
---
name: limits
type: gateway-rate-limit-config
rules:
  - {id: two-per-session, limit: {requests: 2, window: 1h, scope: session}}
"""
# (team, User-Agent, X-Sluice-Tool or None, what the ledger must say)
CLIENTS = [
    ("search", "claude-cli/2.0.24 (external, cli)", None, "claude-code"),
    ("search", "OpenAI/Python 1.99.9", None, "openai-python"),
    ("data", "Mozilla/5.0 (Macintosh) Cursor/0.45.14 Chrome/128.0 Electron/32.2.6", None, "cursor"),
    ("data", "curl/8.5.0", "nightly-eval", "nightly-eval"),
    ("infra", "codex_cli_rs/0.38.0 (Ubuntu 24.04.2 LTS; x86_64) WindowsTerminal", None, "codex"),
    ("infra", "", None, None),
]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(params=SQL_BACKENDS)
async def served(
    request: pytest.FixtureRequest, databases: Databases, tmp_path: Path
) -> AsyncIterator[InProcessGateway]:
    url = databases.url(request.param)  # a new, empty database: the gateway migrates it
    gateway = Gateway(
        settings_for(tmp_path, database_url=url, max_in_flight=4, max_queued=0),
        upstream=emulator_upstream(),
    )
    async with serving(gateway) as running:
        yield running


async def _send(gw: InProcessGateway, keys: dict[str, str]) -> dict[str, str | None]:
    """Requests of every client, each in sessions of its own; returns request id -> tool."""
    sent: dict[str, str | None] = {}
    for i, (team, user_agent, tool_header, tool) in enumerate(CLIENTS):
        for n in range(4):  # the third and fourth of a session are refused 429
            headers = {
                **bearer(keys[team]),
                "x-sluice-session-id": f"{team}-{i}",
                "x-sluice-workflow-tag": "triage" if n % 2 else "review",
                "x-sluice-metadata": orjson.dumps({"customer_id": f"c{n % 3}"}).decode(),
            }
            headers["user-agent"] = user_agent  # "" sends none of its own (not httpx's)
            if tool_header:
                headers["x-tfy-tool"] = tool_header
            response = await gw.http.post("/v1/chat/completions", json=CHAT, headers=headers)
            assert response.status_code in (200, 429), response.text
            sent[response.headers["x-sluice-request-id"]] = tool
    return sent


async def _ledger(gw: InProcessGateway) -> list[dict[str, Any]]:
    response = await gw.http.get("/api/requests", params={"limit": 1000}, headers=gw.admin)
    return list(response.json()["data"])


async def test_requests_of_several_teams_and_tools_land_in_exact_rollups(
    served: InProcessGateway,
) -> None:
    gw = served
    await gw.apply(ANALYTICS)
    keys = {
        team: await gw.create_key(user_id=f"u-{team}", team=team)
        for team in ("search", "data", "infra")
    }
    sent = await _send(gw, keys)
    # refusals before any key is read: still recorded with their tool
    unauthenticated = await gw.http.post(
        "/v1/chat/completions", json=CHAT, headers={"user-agent": "OpenAI/JS 4.96.0"}
    )
    assert unauthenticated.status_code == 401
    gate = gw.gateway.gate
    taken = [gate.try_enter() for _ in range(gate.max_in_flight)]  # every slot busy
    try:
        shed = await gw.http.post(
            "/v1/chat/completions",
            json=CHAT,
            headers={**bearer(keys["data"]), "user-agent": "GitHubCopilotChat/0.26.7"},
        )
    finally:
        for _ in taken:
            gate.leave()
    assert shed.status_code == 503
    await gw.gateway.writer.flush()

    rows = {row["request_id"]: row for row in await _ledger(gw)}
    assert {rid: rows[rid]["client_tool"] for rid in sent} == sent
    statuses = {rows[rid]["status_code"] for rid in sent}
    assert statuses == {200, 429}
    by_status = {row["status_code"]: row["client_tool"] for row in rows.values()}
    assert by_status[401] == "openai-js" and by_status[503] == "github-copilot"

    engine: AsyncEngine = gw.gateway.engine
    async with engine.connect() as conn:
        tables = await stored_rollups(conn)
        assert_same_rollups(tables, await expected_rollups(conn, ("customer_id",)))
        coverage = (await key_coverage(conn))["customer_id"]
    assert total_requests(tables) == len(rows) == len(CLIENTS) * 4 + 2
    tools = {key[7] for key in tables["usage"]}
    assert {"claude-code", "cursor", "codex", "nightly-eval", "openai-js", ""} <= tools
    assert {key[2] for key in tables["usage"]} >= {"search", "data", "infra"}
    assert coverage.covered_until is None
    assert sum(r["requests"] for k, r in tables["metadata"].items() if k[0] == "day") == 24
    # the rate limit shows in the rollups as what it did
    assert sum(r["rate_limit_hits"] for k, r in tables["usage"].items() if k[0] == "day") == 12


@pytest.mark.postgres
async def test_two_gateways_on_one_postgres_add_to_the_same_rows(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.url("postgres")
    settings = [settings_for(tmp_path / f"gw{i}", database_url=url) for i in range(2)]
    async with serving(Gateway(settings[0], upstream=emulator_upstream())) as first:
        key = await first.create_key(user_id="shared", team="search")
        # the second gateway starts once the key exists: it loads it at start
        async with serving(Gateway(settings[1], upstream=emulator_upstream())) as second:

            async def burst(gw: InProcessGateway, n: int) -> None:
                for i in range(n):
                    headers = {
                        **bearer(key),
                        "user-agent": "claude-cli/2.0.24 (external, cli)",
                        "x-sluice-session-id": f"shared-{i % 5}",
                    }
                    response = await gw.http.post(
                        "/v1/chat/completions", json=CHAT, headers=headers
                    )
                    assert response.status_code == 200, response.text

            await asyncio.gather(burst(first, 60), burst(second, 60))
            for gw in (first, second):
                await gw.gateway.writer.flush()
            async with first.gateway.engine.connect() as conn:
                tables = await stored_rollups(conn)
                assert_same_rollups(tables, await expected_rollups(conn, ()))
    assert total_requests(tables) == 120
    assert {key[7] for key in tables["usage"]} == {"claude-code"}
    assert sum(row["requests"] for row in tables["sessions"].values()) == 120

"""A gateway in process, its upstream the emulator app (also in process), and a guardrail
made for the tests: the hooks are real, only the rule is ours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from sluicegate.emulator import create_app as create_emulator
from sluicegate.guardrails import ALLOW, ContentView, GuardrailPhases, Phase, Verdict
from sluicegate.ledger.store import RequestFilters
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.server.app import Gateway
from sluicegate.server.settings import Settings

PROVIDERS = """
name: guardrail-providers
type: gateway-providers
providers:
  - name: openai
    kind: openai
    base_url: "http://emulator/v1"
    headers: {authorization: "Bearer emulator"}
  - name: anthropic
    kind: anthropic
    base_url: "http://emulator"
    headers: {x-api-key: emulator}
models:
  gpt-4o-mini: {provider: openai}
  claude-haiku-4-5: {provider: anthropic}
"""


@dataclass
class Watcher:
    """A test-only guardrail: keeps what each hook showed it, answers `verdict`."""

    name: str
    phases: frozenset[Phase]
    verdict: Verdict = ALLOW
    seen: list[tuple[Phase, ContentView]] = field(default_factory=list)

    async def check(self, phase: Phase, view: ContentView) -> Verdict:
        self.seen.append((phase, view))
        return self.verdict


class Harness:
    def __init__(self, gateway: Gateway, upstream: FakeUpstream, key: str) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=gateway.asgi()), base_url="http://gateway"
        )
        self.openai = openai.AsyncOpenAI(
            base_url="http://gateway/v1", api_key=key, http_client=self.http, max_retries=0
        )
        self.anthropic = anthropic.AsyncAnthropic(
            base_url="http://gateway", api_key=key, http_client=self.http, max_retries=0
        )
        self.key = key

    def guard(self, *watchers: Watcher) -> None:
        self.gateway.pipeline.set_guardrails(GuardrailPhases(watchers))

    async def ledger_row(self, request_id: str) -> dict:
        await self.gateway.writer.flush()
        page = await self.gateway.ledger_store.query(RequestFilters(), 500, None)
        (row,) = [r for r in page.data if r["request_id"] == request_id]
        return row


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    workdir: Path = tmp_path_factory.mktemp("guardrails")
    config = workdir / "providers.yaml"
    config.write_text(PROVIDERS)
    settings = Settings(
        database_url=f"sqlite:///{workdir}/gw.db",
        admin_key="guardrails-admin-key",
        emulator=False,
        config_files=(str(config),),
    )
    emulator = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=create_emulator()), base_url="http://emulator"
    )

    async def forward(method: str, url: str, headers: dict[str, str], body: bytes | None):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        answer = await emulator.request(method, path, headers=headers, content=body)
        return UpstreamResponse(
            answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content
        )

    upstream = FakeUpstream(forward)
    gateway = Gateway(settings, upstream=upstream)
    await gateway.start()
    _, key = await gateway.keys.create(user_id="alice", team="search")
    harness = Harness(gateway, upstream, key)
    try:
        yield harness
    finally:
        await harness.http.aclose()
        await emulator.aclose()
        await gateway.stop()


@pytest.fixture
def gw(harness: Harness) -> Iterator[Harness]:
    """The shared gateway, with no guardrails again after each test."""
    harness.upstream.calls.clear()
    yield harness
    harness.guard()

"""Helpers for the routing end-to-end tests: the four provider accounts of the seed's
routing example served by the gateway's own emulator, requests in bursts, emulator
counters, and a tiny upstream that records what it was sent."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.support import free_port

SEED_ROUTING = Path(__file__).parent.parent / "router" / "data" / "routing-config.yaml"
HI = [{"role": "user", "content": "hi"}]


# --- fixtures: import them into a test module to give it its own gateway ------------------
@pytest.fixture(scope="module")
def capture():
    with CaptureUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def rgw(tmp_path_factory, capture):
    """A gateway with the four emulated accounts, `deadhost` (nothing listens there),
    `capture` (a CaptureUpstream), and the seed's routing-config.yaml applied unchanged."""
    db = tmp_path_factory.mktemp("routing") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as gateway:
        gateway.apply(
            providers_yaml(
                gateway.url,
                extra=[
                    f"{{name: deadhost, kind: openai, base_url: http://127.0.0.1:{free_port()}/v1}}",
                    f"{{name: capture, kind: openai, base_url: {capture.url}, "
                    "headers: {authorization: Bearer cap, x-drop-me: secret}}",
                ],
            )
        )
        gateway.apply(SEED_ROUTING.read_text())
        yield gateway


@pytest.fixture(scope="module")
def key(rgw) -> str:
    return rgw.create_key(user_id="alice", team="search", project="platform-search")["key"]


@pytest.fixture(autouse=True)
def _no_faults(rgw):
    rgw.clear_faults()
    yield
    rgw.clear_faults()


def row_of(gateway: RunningGateway, response: httpx.Response) -> dict:
    return gateway.request_row(response.headers["x-sluice-request-id"])


def attempts_of(row: dict) -> list[tuple]:
    return [(a["model"], a["status_code"], a["error_class"], a["reason"]) for a in row["attempts"]]


def providers_yaml(emulator_url: str, *, extra: Iterable[str] = ()) -> str:
    """A `gateway-providers` document: anthropic, bedrock (anthropic kind), openai and
    vertex (openai kind), all served by the emulator under `emulator_url` (a gateway URL),
    plus any extra account lines given (YAML flow mappings)."""
    anthropic = (
        f"kind: anthropic, base_url: {emulator_url}/emulator, headers: {{x-api-key: emulator}}"
    )
    openai = (
        f"kind: openai, base_url: {emulator_url}/emulator/v1, "
        "headers: {authorization: Bearer emulator}"
    )
    accounts = [
        f"  - {{name: anthropic, {anthropic}}}",
        f"  - {{name: bedrock, {anthropic}}}",
        f"  - {{name: openai, {openai}}}",
        f"  - {{name: vertex, {openai}}}",
        *(f"  - {line}" for line in extra),
    ]
    return "\n".join(
        [
            "name: emulated-providers",
            "type: gateway-providers",
            "providers:",
            *accounts,
            "models:",
            "  gpt-4o-mini: {provider: openai}",
            "  claude-haiku-4-5: {provider: anthropic}",
            "  gemini-2.0-flash: {provider: vertex}",
            "prices:  # for budget tests: made-up models need a price to be reserved against",
            "  rt-premium: {input_mtok: 3, output_mtok: 15}",
            "  rt-premium-cheap: {input_mtok: 0.1, output_mtok: 0.4}",
            "",
        ]
    )


def emulator_counts(gateway: RunningGateway) -> Counter[str]:
    stats = httpx.get(f"{gateway.url}/emulator/_emulator/stats", timeout=10).json()
    return Counter(stats["requests"])


def patch_faults(gateway: RunningGateway, faults: dict) -> None:
    """Merge into the emulator's fault table (a None entry removes that model's fault)."""
    httpx.patch(
        f"{gateway.url}/emulator/_emulator/faults", json=faults, timeout=10
    ).raise_for_status()


def chat(
    gateway: RunningGateway,
    key: str,
    model: str,
    *,
    stream: bool = False,
    timeout: float = 30,
    **headers: str,
) -> httpx.Response:
    body = {"model": model, "messages": HI, "stream": stream}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        timeout=timeout,
        headers={"authorization": f"Bearer {key}", **headers},
    )


async def burst(
    gateway: RunningGateway,
    key: str,
    model: str,
    count: int,
    *,
    concurrency: int = 16,
    headers: dict[str, str] | None = None,
    pause_s: float = 0.0,
    midway: tuple[int, Callable[[], None]] | None = None,
) -> list[httpx.Response]:
    """`count` chat requests, at most `concurrency` at a time, in order of sending.
    `midway=(n, action)` runs `action` once n responses have come back (mid-run)."""
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    responses: list[httpx.Response | None] = [None] * count
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=gateway.url,
        timeout=30,
        limits=limits,
        headers={"authorization": f"Bearer {key}", **(headers or {})},
    ) as client:

        async def one(index: int) -> None:
            async with gate:
                responses[index] = await client.post(
                    "/v1/chat/completions", json={"model": model, "messages": HI}
                )
                nonlocal done
                done += 1
                if midway is not None and done == midway[0]:
                    await asyncio.to_thread(midway[1])
                if pause_s:
                    await asyncio.sleep(pause_s)

        await asyncio.gather(*(one(i) for i in range(count)))
    return [r for r in responses if r is not None]


def run(coro):
    return asyncio.run(coro)


def resolved(responses: Iterable[httpx.Response]) -> Counter[str]:
    return Counter(r.headers.get("x-sluice-resolved-model") for r in responses)


def session() -> str:
    return "rt-" + uuid.uuid4().hex[:12]


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class CaptureUpstream:
    """An OpenAI-compatible upstream on loopback that answers every chat request with a
    fixed completion and keeps each request's headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.port = free_port()
        captured = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                captured.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = json.dumps(
                    {
                        "id": "chatcmpl-capture",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "captured"},
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> CaptureUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

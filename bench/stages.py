"""What each control adds to the gateway's own work per request, side by side in one run.

    .venv/bin/python bench/stages.py [--requests 5000]

The pipeline (identity, policy, router, provider adapter, settle, ledger record) runs in
process against a fake upstream that answers at once, so the figures are the gateway's
CPU time per request, free of network and load-generator noise: plain model, then a
virtual model with three targets and a breaker, then three rate-limit rules and two
budgets with counters in memory and in Redis. The end-to-end view is bench/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.run import POLICY, ROUTING  # noqa: E402
from sluicegate.model.request import ClientApi  # noqa: E402
from sluicegate.pipeline import IncomingCall  # noqa: E402
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse  # noqa: E402
from sluicegate.server.app import Gateway  # noqa: E402
from sluicegate.server.settings import Settings  # noqa: E402
from tests.support import REDIS_URL  # noqa: E402

ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "order status"},
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24},
    }
)
PROVIDERS = """
name: stage-providers
type: gateway-providers
providers:
  - {name: openai, kind: openai, base_url: "http://upstream/v1"}
  - {name: openai-b, kind: openai, base_url: "http://upstream/v1"}
  - {name: openai-c, kind: openai, base_url: "http://upstream/v1"}
models:
  gpt-4o-mini: {provider: openai}
"""
SCENARIOS = {
    "plain": ("gpt-4o-mini", ""),
    "routing": ("bench-virtual", ROUTING),
    "policy": ("gpt-4o-mini", POLICY),
    "policy-redis": ("gpt-4o-mini", POLICY),
    "plain-again": ("gpt-4o-mini", ""),  # the first figure again, to show run-order noise
}


async def answer(method, url, headers, body):
    await asyncio.sleep(0)  # a real upstream call always yields to the loop at least once
    return UpstreamResponse(200, {"x-request-id": "up"}, ANSWER)


async def measure(name: str, model: str, extra: str, workdir: Path, n: int) -> list[float]:
    config = workdir / f"{name}.yaml"
    config.write_text(PROVIDERS + ("---\n" + extra if extra else ""))
    settings = Settings(
        database_url=f"sqlite:///{workdir}/{name}.db",
        admin_key="bench",
        emulator=False,
        config_files=(str(config),),
        redis_url=REDIS_URL if name == "policy-redis" else None,
        redis_prefix=f"bench-stages-{time.time_ns()}:",
    )
    gateway = Gateway(settings, upstream=FakeUpstream(answer))
    await gateway.start()
    try:
        _, key = await gateway.keys.create(user_id="bench", team="perf")
        body = orjson.dumps(
            {
                "model": model,
                "max_tokens": 32,
                "messages": [
                    {"role": "user", "content": "Classify the intent: where is my order?"}
                ],
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"x-sluice-project", b"bench"),
            (b"x-sluice-session-id", b"bench-session"),
        ]
        call = IncomingCall(
            client_api=ClientApi.OPENAI_CHAT, body=body, raw_headers=headers, api_key=key
        )
        for _ in range(300):
            await gateway.pipeline.handle(call)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            reply = await gateway.pipeline.handle(call)
            samples.append((time.perf_counter() - start) * 1e6)
            assert reply.status == 200
        await gateway.writer.flush()
        return samples
    finally:
        await gateway.stop()


async def main(n: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sluice-stages-"))
    results = {}
    for name, (model, extra) in SCENARIOS.items():
        results[name] = await measure(name, model, extra, workdir, n)
    subprocess.run(["redis-cli", "--scan", "--pattern", "bench-stages-*"], capture_output=True)
    plain = statistics.median(results["plain"])
    print(f"\ngateway work per request, in process, fake upstream, {n} sequential requests\n")
    print(f"{'scenario':<14}{'p50 us':>9}{'p99 us':>9}{'added p50 us':>14}")
    for name, samples in results.items():
        samples.sort()
        p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99) - 1]
        print(f"{name:<14}{p50:>9.1f}{p99:>9.1f}{p50 - plain:>14.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    uvloop.run(main(parser.parse_args().requests))

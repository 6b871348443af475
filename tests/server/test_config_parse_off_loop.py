"""A big config posted to /api/config is parsed off the event loop: the worker keeps
answering while PyYAML works (issue 11, item 6: a legal document near the 100k-node
limit takes seconds to parse in pure Python)."""

from __future__ import annotations

import asyncio
import time

from tests.server.inprocess import InProcessGateway

# ~25k YAML nodes: over a second to parse here, well under the node limit. The rules
# have a field no rule has, so the answer (after the whole parse) is a 4xx and nothing
# is applied.
BIG = "name: big\ntype: gateway-rate-limit-config\nrules:\n" + "".join(
    f"  - {{id: r{i}, bogus: {i}}}\n" for i in range(5000)
)


async def test_health_answers_promptly_while_a_big_config_parses(gw: InProcessGateway) -> None:
    async def post() -> int:
        response = await gw.http.post(
            "/api/config",
            content=BIG,
            headers={**gw.admin, "content-type": "application/yaml"},
            timeout=60,
        )
        return response.status_code

    started = time.perf_counter()
    posting = asyncio.create_task(post())
    waits: list[float] = []
    while not posting.done() and time.perf_counter() - started < 60:
        asked = time.perf_counter()
        response = await asyncio.wait_for(gw.http.get("/healthz"), timeout=10)
        assert response.status_code == 200
        waits.append(time.perf_counter() - asked)
        await asyncio.sleep(0.02)
    status = await asyncio.wait_for(posting, timeout=60)
    took = time.perf_counter() - started
    assert 400 <= status < 500
    assert took > 0.5, f"the parse took {took:.2f} s: too small a document to show anything"
    # parsed on the loop, one /healthz would wait the whole parse
    assert len(waits) >= 5 and max(waits) < min(0.4, took / 2), (took, max(waits), len(waits))

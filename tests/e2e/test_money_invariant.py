"""The money invariant under load (issue 10): whatever clients and Redis do, every cent is
counted once. Three replicas share a PostgreSQL ledger and a Redis of the test's own;
clients send whole calls and streams that they leave after a few chunks; Redis is killed
and started empty in the middle. At the end the ledger's spend equals what the budget
counted (within one request's cost), and it exceeds the ceiling by no more than what was
in flight. Bounded: at most 90 s of traffic and 4,000 requests."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.e2e.policy_support import (
    apply_everywhere,
    budget_rows,
    chat,
    known_everywhere,
    prices_doc,
    project_rows,
    uid,
    wait_for,
)
from tests.redis_server import OwnRedis
from tests.support import fresh_postgres_database

CEILING_USD = 1.0
# Input is free, output $1,000 per million tokens: $0.001 a token.
WHOLE_MAX_TOKENS = 10  # a whole call: at most $0.01
STREAM_MAX_TOKENS = 30  # a stream: at most $0.03, however early its client leaves
MAX_CALL_USD = 0.03
WORKERS = 10
CHUNKS_READ = 3  # a streaming client leaves after this many


def docs(u: str, project: str) -> tuple[str, ...]:
    return (
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        f"""name: budget-{u}
type: gateway-budget-config
budgets:
  - id: {project}
    scope: {{metadata: {{project: {project}}}}}
    ceiling_usd: {CEILING_USD}
    window: daily
    on_exceed: hard_block
""",
    )


def stream_and_leave(gateway: RunningGateway, key: str, project: str) -> int:
    """Open a stream, read a few chunks, hang up; the status the gateway answered."""
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": STREAM_MAX_TOKENS,
        "stream": True,
        "messages": [{"role": "user", "content": "tell me about rivers " * 4}],
    }
    headers = {"authorization": f"Bearer {key}", "x-sluice-project": project}
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "POST", gateway.url + "/v1/chat/completions", json=body, headers=headers
        ) as answer,
    ):
        if answer.status_code == 200:
            for n, _ in enumerate(answer.iter_lines()):
                if n >= CHUNKS_READ * 2:  # data lines and the blank lines between them
                    break
        return answer.status_code


@pytest.mark.redis
@pytest.mark.postgres
def test_every_cent_is_counted_once_through_streams_left_early_and_a_redis_restart():
    u = uid()
    project = f"invariant-{u}"
    with fresh_postgres_database() as database, OwnRedis() as own, ExitStack() as stack:
        args = ("--redis-url", own.url, "--counter-failure-mode", "fail_closed")
        replicas = [stack.enter_context(run_gateway(database, *args)) for _ in range(3)]
        apply_everywhere(replicas, *docs(u, project), timeout=10)
        key = known_everywhere(replicas, replicas[0].create_key(name=f"inv-{u}")["key"])

        for gateway in replicas:  # streams slow enough to leave in the middle
            gateway.set_faults({"gpt-4o-mini": {"inter_chunk_ms": 20}})

        statuses: list[tuple[float, int]] = []
        stop = threading.Event()

        def client(worker: int) -> None:
            n = worker
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline and len(statuses) < 4000:
                gateway = replicas[n % 3]
                n += 1
                try:
                    if worker % 2:
                        status = stream_and_leave(gateway, key, project)
                    else:
                        status = chat(
                            gateway,
                            key,
                            max_tokens=WHOLE_MAX_TOKENS,
                            content="tell me about rivers " * 4,
                            timeout=20,
                            headers={"x-sluice-project": project},
                        ).status_code
                except httpx.HTTPError:
                    continue
                statuses.append((time.monotonic(), status))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: sum(s == 200 for _, s in statuses) >= 40, timeout=60, interval=0.02)
            own.restart()  # killed, and back empty
            restarted = time.monotonic()
            wait_for(  # traffic goes on until the ceiling refuses it again
                lambda: any(t > restarted and s == 429 for t, s in statuses), timeout=60
            )
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)

        codes = {s for _, s in statuses}
        assert codes <= {200, 429, 503}, codes
        assert any(t > restarted and s == 200 for t, s in statuses)  # it served again

        def settled() -> tuple[float, list[float]] | None:
            """The ledger's spend and each replica's counted spend, once they agree."""
            rows = project_rows(replicas[0], project)
            ledger = sum(r["cost_usd"] or 0 for r in rows)
            counted = [budget_rows(g, project)["daily"]["spent_usd"] for g in replicas]
            agree = all(abs(c - ledger) <= MAX_CALL_USD for c in counted)
            return (ledger, counted) if agree else None

        ledger, counted = wait_for(settled, timeout=30, interval=0.5)
        rows = project_rows(replicas[0], project)
        left_early = [r for r in rows if r["status_code"] == 499]
        assert left_early, "no stream was recorded as left early"
        assert all(r["cost_usd"] and r["output_tokens"] for r in left_early)
        assert all(r["usage_source"] == "estimated" for r in left_early)
        in_flight_bound = WORKERS * MAX_CALL_USD
        print(f"ledger ${ledger:.4f}, counted {counted}, {len(rows)} rows")
        assert ledger <= CEILING_USD + in_flight_bound + 1e-9, ledger
        assert ledger >= CEILING_USD - in_flight_bound, ledger

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from sluicegate.errors import (
    InvalidRequest,
    SluiceError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sluicegate.router.attempts import AttemptsOutcome, run_attempts
from sluicegate.router.breaker import BreakerStore, MemoryBreakerStore
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.routes import BreakerPolicy, RetryPolicy, RoutePlan, Target, target_key
from tests.router.conftest import Breakers, FakeClock

Step = str | SluiceError | Callable[[], Awaitable[str]]
BREAKER = BreakerPolicy(failure_threshold=3, window_seconds=60, cooldown_seconds=30)


def http(status: int, retry_after: float | None = None) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"HTTP {status}", upstream_status=status, retry_after=retry_after)


def target(target_id: str, attempts: int = 1, **retry) -> Target:
    return Target(
        id=target_id,
        provider=f"prov-{target_id}",
        model=f"model-{target_id}",
        retry=RetryPolicy(attempts=attempts, jitter=False, **retry),
    )


def plan_of(*targets: Target, **extra) -> RoutePlan:
    return RoutePlan(model="vm", virtual=True, candidates=targets, **{"breaker": BREAKER, **extra})


class FakeUpstream:
    """`script[target id]` lists what each successive call does: return a string, raise
    an error, or run a coroutine. Calls are logged as (target id, reason)."""

    def __init__(self, **script: list[Step]) -> None:
        self.script = {key: list(steps) for key, steps in script.items()}
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, target: Target, reason: str) -> str:
        self.calls.append((target.id, reason))
        step = (
            self.script[target.id].pop(0)
            if len(self.script[target.id]) > 1
            else self.script[target.id][0]
        )
        if isinstance(step, SluiceError):
            raise step
        return step if isinstance(step, str) else await step()


class Harness:
    def __init__(self, clock: FakeClock, breakers: BreakerStore | None = None) -> None:
        self.clock = clock
        self.breakers = breakers or MemoryBreakerStore(clock=clock)
        self.latency = LatencyTracker(clock=clock)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    async def run(self, plan: RoutePlan, upstream: FakeUpstream, **kwargs) -> AttemptsOutcome[str]:
        return await run_attempts(
            plan,
            upstream,
            breakers=self.breakers,
            latency=self.latency,
            clock=self.clock,
            sleep=self.sleep,
            rng=random.Random(1).random,
            **kwargs,
        )


@pytest.fixture
def harness(clock: FakeClock) -> Harness:
    return Harness(clock)


async def test_the_primary_answers(harness: Harness):
    upstream = FakeUpstream(a=["ok"], f=["fallback"])
    outcome = await harness.run(plan_of(target("a"), target("f")), upstream)
    assert outcome.unwrap() == "ok" and outcome.final_target.id == "a"
    assert upstream.calls == [("a", "primary")]
    assert [(r.provider, r.model, r.status_code, r.reason) for r in outcome.attempts] == [
        ("prov-a", "model-a", 200, "primary")
    ]
    assert not outcome.fallback_used and not outcome.retry_used
    assert outcome.reason == "a answered"


async def test_a_fallback_tried_first_is_recorded_as_a_fallback(harness: Harness):
    """Every rule's circuit is open, so the plan starts at a `fallbacks` target: the
    ledger must still say a fallback served the request."""
    upstream = FakeUpstream(f=["fallback"])
    plan = plan_of(target("f"), fallback_ids=frozenset({"f"}))
    outcome = await harness.run(plan, upstream)
    assert upstream.calls == [("f", "fallback")] and outcome.fallback_used


@pytest.mark.parametrize(
    "error, status, error_class",
    [
        (http(500), 500, "UpstreamHTTPError"),
        (http(429, retry_after=60), 429, "UpstreamHTTPError"),
        (UpstreamUnavailable("connection refused"), None, "UpstreamUnavailable"),
        (UpstreamTimeout("no answer in 8s"), None, "UpstreamTimeout"),
    ],
)
async def test_falls_back_on_server_errors_throttling_connection_errors_and_timeouts(
    harness: Harness, error: SluiceError, status: int | None, error_class: str
):
    upstream = FakeUpstream(a=[error], b=[error], f=["from fallback"])
    outcome = await harness.run(plan_of(target("a"), target("b"), target("f")), upstream)
    assert outcome.unwrap() == "from fallback"
    assert upstream.calls == [("a", "primary"), ("b", "fallback"), ("f", "fallback")]
    assert [(r.status_code, r.error_class, r.reason) for r in outcome.attempts] == [
        (status, error_class, "primary"),
        (status, error_class, "fallback"),
        (200, None, "fallback"),
    ]
    assert outcome.fallback_used and outcome.final_target.id == "f"
    assert harness.slept == []  # a retry_after of 60s is beyond the cap: move on at once


async def test_a_client_error_from_the_provider_is_returned_without_fallback(harness: Harness):
    upstream = FakeUpstream(a=[http(400)], f=["never"])
    outcome = await harness.run(plan_of(target("a", attempts=3), target("f")), upstream)
    assert isinstance(outcome.error, UpstreamHTTPError) and outcome.error.status == 400
    assert upstream.calls == [("a", "primary")]
    assert not outcome.fallback_used and len(outcome.attempts) == 1
    assert "HTTP 400, returned without fallback" in outcome.reason
    with pytest.raises(UpstreamHTTPError):
        outcome.unwrap()
    assert (await harness.breakers.states(["vm:a"]))[0].state == "closed"
    assert harness.latency.stats("vm:a").requests == 0  # the request's fault, not the target's


async def test_other_gateway_errors_from_call_stop_the_loop(harness: Harness):
    upstream = FakeUpstream(a=[InvalidRequest("cannot translate for this provider")], f=["x"])
    outcome = await harness.run(plan_of(target("a"), target("f")), upstream)
    assert isinstance(outcome.error, InvalidRequest) and upstream.calls == [("a", "primary")]


async def test_only_configured_status_codes_fall_back(harness: Harness):
    upstream = FakeUpstream(a=[http(503)], f=["x"])
    plan = plan_of(target("a"), target("f"), fallback_status_codes=frozenset({500}))
    outcome = await harness.run(plan, upstream)
    assert outcome.error is not None and upstream.calls == [("a", "primary")]


async def test_retries_back_off_and_honour_retry_after(harness: Harness):
    upstream = FakeUpstream(
        a=[http(503), http(429, retry_after=2.5), UpstreamUnavailable("reset"), "ok"]
    )
    plan = plan_of(target("a", attempts=4, delay_ms=100, max_delay_ms=300), breaker=None)
    outcome = await harness.run(plan, upstream)
    assert outcome.unwrap() == "ok"
    assert harness.slept == [0.1, 2.5, 0.3]  # backoff, retry_after, backoff capped at max
    assert [r.reason for r in outcome.attempts] == ["primary", "retry", "retry", "retry"]
    assert outcome.retry_used and not outcome.fallback_used


async def test_no_more_retries_once_the_target_s_circuit_opens(harness: Harness):
    upstream = FakeUpstream(a=[http(500)], f=["ok"])  # BREAKER opens after 3 failures
    outcome = await harness.run(plan_of(target("a", attempts=5), target("f")), upstream)
    assert upstream.calls == [("a", "primary"), ("a", "retry"), ("a", "retry"), ("f", "fallback")]
    assert outcome.unwrap() == "ok"


async def test_retries_run_out_then_fall_back(harness: Harness):
    upstream = FakeUpstream(a=[http(502)], f=["ok"])
    plan = plan_of(target("a", attempts=2, delay_ms=50), target("f"))
    outcome = await harness.run(plan, upstream)
    assert outcome.unwrap() == "ok"
    assert upstream.calls == [("a", "primary"), ("a", "retry"), ("f", "fallback")]


async def test_statuses_outside_the_retry_list_fall_back_at_once(harness: Harness):
    upstream = FakeUpstream(a=[http(401)], f=["ok"])
    outcome = await harness.run(plan_of(target("a", attempts=3), target("f")), upstream)
    assert upstream.calls == [("a", "primary"), ("f", "fallback")] and outcome.unwrap() == "ok"


async def test_jitter_keeps_half_to_all_of_the_delay(clock: FakeClock):
    harness = Harness(clock)
    jittery = Target(
        id="a",
        provider="p",
        model="m",
        retry=RetryPolicy(attempts=6, delay_ms=200, max_delay_ms=200, jitter=True),
    )
    await harness.run(plan_of(jittery, breaker=None), FakeUpstream(a=[http(500)]))
    assert len(harness.slept) == 5 and all(0.1 <= s <= 0.2 for s in harness.slept)
    assert len(set(harness.slept)) > 1


async def test_the_deadline_stops_retries_and_cuts_a_slow_call(clock: FakeClock):
    harness = Harness(clock)
    plan = plan_of(target("a", attempts=5, delay_ms=400), target("f"))
    outcome = await harness.run(
        plan, FakeUpstream(a=[http(500)], f=["ok"]), deadline=clock.now + 0.5
    )
    assert harness.slept == [0.4] and outcome.unwrap() == "ok"  # 0.8s would not fit

    async def hang() -> str:
        await asyncio.sleep(5)
        return "too late"

    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    outcome = await run_attempts(
        plan_of(target("slow"), target("f")),
        FakeUpstream(slow=[hang], f=["x"]),
        breakers=harness.breakers,
        latency=harness.latency,
        deadline=started + 0.05,
        clock=loop_time,
    )
    assert isinstance(outcome.error, UpstreamTimeout)
    assert [r.error_class for r in outcome.attempts] == ["UpstreamTimeout"]  # f: no time left
    assert loop_time() - started < 1


async def test_failures_open_the_breaker_and_update_latency(harness: Harness):
    plan = plan_of(target("a"), target("f"))
    for _ in range(3):
        await harness.run(plan, FakeUpstream(a=[http(503)], f=["ok"]))
    (state,) = await harness.breakers.states([target_key("vm", "a")])
    assert state.state == "open"
    stats = harness.latency.stats("vm:a")
    assert stats.requests == 3 and stats.errors == 3 and stats.samples == 0
    assert harness.latency.stats("vm:f").samples == 3


async def test_a_probe_that_succeeds_closes_and_one_that_fails_reopens(harness: Harness):
    key = target_key("vm", "a")
    for _ in range(3):
        await harness.breakers.record_failure(key, BREAKER, probe=False)
    harness.clock.advance(31)

    failing = plan_of(target("a", attempts=3), target("f"), needs_probe=frozenset({"a"}))
    upstream = FakeUpstream(a=[http(500)], f=["ok"])
    assert (await harness.run(failing, upstream)).unwrap() == "ok"
    assert upstream.calls == [("a", "primary"), ("f", "fallback")]  # a probe is not retried
    assert (await harness.breakers.states([key]))[0].state == "open"

    harness.clock.advance(31)
    held = plan_of(target("a"), probe_ids=frozenset({"a"}))
    assert (await harness.run(held, FakeUpstream(a=["ok"]))).unwrap() == "ok"
    assert (await harness.breakers.states([key]))[0].state == "closed"


async def test_half_open_candidates_get_one_probe_across_concurrent_requests(
    breakers: Breakers, clock: FakeClock
):
    store = breakers.make()
    policy = BreakerPolicy(failure_threshold=1, window_seconds=60, cooldown_seconds=0.2)
    await store.record_failure("vm:a", policy, probe=False)
    await breakers.advance(0.3)
    harness = Harness(clock, store)
    gate = asyncio.Event()

    async def slow_ok() -> str:
        await gate.wait()
        return "a"

    upstream = FakeUpstream(a=[slow_ok], f=["f"])
    plan = RoutePlan(
        model="vm",
        virtual=True,
        candidates=(target("a"), target("f")),
        breaker=policy,
        needs_probe=frozenset({"a"}),
    )
    runs = [asyncio.create_task(harness.run(plan, upstream)) for _ in range(8)]
    await asyncio.sleep(0.05)
    gate.set()
    outcomes = await asyncio.gather(*runs)
    assert [o.unwrap() for o in outcomes].count("a") == 1
    assert [call for call in upstream.calls if call[0] == "a"] == [("a", "primary")]
    assert (await store.states(["vm:a"]))[0].state == "closed"
    skipped = next(o for o in outcomes if o.unwrap() == "f")
    assert "another request holds the probe" in skipped.reason
    assert [r.reason for r in skipped.attempts] == ["fallback"]


async def test_nothing_tried_is_upstream_unavailable(harness: Harness):
    policy = BreakerPolicy(failure_threshold=1, window_seconds=60, cooldown_seconds=30)
    await harness.breakers.record_failure("vm:a", policy, probe=False)
    harness.clock.advance(31)
    assert await harness.breakers.admit("vm:a", policy) == "probe"  # someone else probes
    plan = RoutePlan(
        model="vm",
        virtual=True,
        candidates=(target("a"),),
        breaker=policy,
        needs_probe=frozenset({"a"}),
    )
    outcome = await harness.run(plan, FakeUpstream(a=["never"]))
    assert isinstance(outcome.error, UpstreamUnavailable) and outcome.attempts == []

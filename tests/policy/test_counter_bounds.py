"""In-process counters stay bounded when clients choose their own ids (issue 11, item 5):
a rule counted per session keeps at most `max_keys_per_family` counters, dropping the
least recently admitted; budgets and global rules are never dropped."""

from __future__ import annotations

import gc
import logging
import time
import tracemalloc

import pytest

from sluicegate.model.identity import Envelope
from sluicegate.model.usage import Usage
from sluicegate.policy.admission import PolicyBlocked
from sluicegate.policy.counters import Check, MemoryCounterStore
from sluicegate.policy.engine import PolicyEngine
from tests.policy.helpers import policy, request

PER_SESSION = """
name: per-session
type: gateway-rate-limit-config
rules:
  - id: per-session-3
    limit: {requests: 3, window: 1h, scope: session}
---
name: budgets
type: gateway-budget-config
budgets:
  - id: all-spend
    scope: {}
    ceiling_usd: 1
    window: daily
    on_exceed: hard_block
"""


def engine(cap: int) -> tuple[PolicyEngine, MemoryCounterStore]:
    store = MemoryCounterStore(max_keys_per_family=cap)
    policy_engine = PolicyEngine(store)
    policy_engine.set_policy(policy(PER_SESSION))
    return policy_engine, store


async def call(policy_engine: PolicyEngine, session: str, cost: float = 0.001) -> bool:
    """One request of `session`, settled at `cost`; False when a limit refused it."""
    try:
        admission = await policy_engine.admit(request(env=Envelope(session_id=session), cost=cost))
    except PolicyBlocked:
        return False
    policy_engine.settle_soon(admission, Usage(input_tokens=10, output_tokens=10), cost)
    return True


async def test_a_flood_of_new_session_ids_keeps_the_counters_at_the_cap(caplog):
    policy_engine, store = engine(cap=100)
    caplog.set_level(logging.WARNING)
    for i in range(1_000):
        assert await call(policy_engine, f"s-{i}", cost=0.0001)
    stats = store.stats()
    # 100 session counters and the budget's one: the other 900 sessions were dropped
    assert stats["keys"] == 101 and stats["evicted"] == 900
    warnings = [r for r in caplog.records if "at their cap of 100" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per dropped id


async def test_a_session_that_keeps_sending_stays_limited_through_a_flood():
    policy_engine, _ = engine(cap=50)
    assert [await call(policy_engine, "busy") for _ in range(3)] == [True, True, True]
    for i in range(500):  # other ids flood in; the busy session keeps trying
        await call(policy_engine, f"flood-{i}", cost=0.0)
        assert not await call(policy_engine, "busy")


async def test_the_budget_is_never_dropped_however_many_ids_arrive():
    policy_engine, _ = engine(cap=10)
    spent = 0
    for i in range(2_000):  # $0.001 each against a $1 ceiling
        if await call(policy_engine, f"s-{i}"):
            spent += 1
    assert spent == 1_000  # exactly the ceiling: the budget's counter survived the flood


@pytest.mark.parametrize("cap", [1_000])
async def test_memory_stops_growing_once_the_cap_is_reached(cap):
    """What a flood of unique ids costs: bounded past the cap (without it, every id kept a
    counter for the rule's whole window)."""
    policy_engine, _ = engine(cap)
    for i in range(2 * cap):  # reach the cap and settle into steady state
        await call(policy_engine, f"warm-{i}", cost=0.0)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(20 * cap):
            await call(policy_engine, f"flood-{i}", cost=0.0)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 20,000 more ids: unbounded, ~300 bytes each (6 MB and more); bounded, at most the
    # admission memo of recent scope values (admission.py, 2,048 items)
    assert after - before < 2_500_000, f"grew {after - before} bytes"


async def test_settled_reservations_leave_nothing_behind():
    """Each admission schedules its reservation's lapse (600 s ahead); once settled, the
    entry must not stay: at thousands of requests a second that was millions of them."""
    store = MemoryCounterStore()
    check = Check("rl:r:1h:session=s:0", limit=10**9, amount=1, expires_at=time.time() + 3600)
    for i in range(2_000):  # warm-up
        assert (await store.admit([check], f"w{i}", ttl_s=600)).ok
        store.settle_soon(f"w{i}", {check.key: 1})
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(30_000):
            assert (await store.admit([check], f"r{i}", ttl_s=600)).ok
            store.settle_soon(f"r{i}", {check.key: 1})
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (await store.usage([check.key]))[check.key].used == 32_000
    assert after - before < 500_000, f"grew {after - before} bytes"  # unbounded: ~5 MB

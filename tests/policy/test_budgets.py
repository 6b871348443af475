"""Budgets: worst-case reservation, calendar windows, status, rebuild and alerts."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
import redis.asyncio as aioredis

from sluicegate.alerts.alert import CollectingAlertSink
from sluicegate.alerts.delivery import Notifier
from sluicegate.errors import ConfigError
from sluicegate.ledger.memory_store import MemoryLedgerStore
from sluicegate.model.identity import Envelope
from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.policy.admission import PolicyBlocked, UnpricedBlocked
from sluicegate.policy.engine import PolicyEngine
from sluicegate.pricing import PriceBook, price_at, worst_case
from tests.policy.helpers import FakeClock, fixture_text, parse_one, policy, request
from tests.policy.receiver import Receiver
from tests.support import REDIS_URL

SEARCH = Envelope(project="platform-search")
INTERNS = Envelope(project="intern-sandbox")


def budgets(body: str) -> str:
    return f"name: test-budgets\ntype: gateway-budget-config\nbudgets:\n{body}\n"


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def engine_with(store, *docs: str, **kw) -> PolicyEngine:
    engine = PolicyEngine(store, **kw)
    engine.set_policy(policy(*docs))
    return engine


ONE_DOLLAR = budgets("""
  - id: one-dollar
    scope: {metadata: {X-TFY-Project: platform-search}}
    ceiling_usd: 1
    window: daily
""")  # fmt: skip


async def test_worst_case_reservation_bounds_spend_under_concurrency(store):
    engine = engine_with(store, ONE_DOLLAR)
    in_flight = 0
    peak = 0

    async def call(i: int) -> bool:
        nonlocal in_flight, peak
        try:
            admission = await engine.admit(request(env=SEARCH, cost=0.10))
        except PolicyBlocked:
            return False
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(random.uniform(0, 0.02))
        in_flight -= 1
        await engine.settle(admission, None, random.uniform(0.01, 0.10))  # never above worst case
        return True

    admitted = 0
    for _ in range(6):  # waves of concurrent requests until the budget is spent
        admitted += sum(await asyncio.gather(*(call(i) for i in range(40))))
    (status,) = await engine.budget_status()
    assert status["spent_usd"] <= 1.0 and status["reserved_usd"] == 0
    assert admitted > 10  # actual costs below the worst case let more requests through
    assert peak <= 10  # never more in flight than the ceiling covers at worst case


async def test_spend_overshoot_is_bounded_by_what_is_in_flight(store):
    engine = engine_with(store, ONE_DOLLAR)
    admissions = await asyncio.gather(
        *(engine.admit(request(env=SEARCH, cost=0.25)) for _ in range(10)), return_exceptions=True
    )
    ok = [a for a in admissions if not isinstance(a, Exception)]
    assert len(ok) == 4  # 4 x $0.25 worst case fills the $1 ceiling
    for admission in ok:  # providers billed 20% more than the estimate
        await engine.settle(admission, None, 0.30)
    (status,) = await engine.budget_status()
    assert status["spent_usd"] == pytest.approx(1.2)  # ceiling + in-flight underestimate
    with pytest.raises(PolicyBlocked) as caught:
        await engine.admit(request(env=SEARCH, cost=0.01))
    assert caught.value.code == "budget_exceeded" and caught.value.rule_id == "one-dollar"


async def test_hard_budgets_block_unpriced_models_by_default(store):
    engine = engine_with(store, ONE_DOLLAR)
    with pytest.raises(UnpricedBlocked) as caught:
        await engine.admit(request("my-llama", env=SEARCH, cost=None))
    error = caught.value
    assert (error.status, error.code, error.rule_id) == (403, "unpriced_model", "one-dollar")
    assert "'my-llama'" in error.message and error.retry_after is None
    assert [(e.rule_id, e.action) for e in error.events] == [("one-dollar", "unpriced_block")]
    # a virtual model with one unpriced candidate among priced ones is unpriced too
    mixed = msgspec.structs.replace(request(env=SEARCH, cost=0.01), unpriced_model="my-llama")
    with pytest.raises(UnpricedBlocked):
        await engine.admit(mixed)


async def test_allowed_unpriced_models_are_checked_but_not_counted(make_store):
    allow = ONE_DOLLAR.replace("window: daily", "window: daily\n    unpriced: allow")
    engine = engine_with(make_store(lease_share=0), allow)  # every settlement seen at once
    a = await engine.admit(request(env=SEARCH, cost=None))
    assert a.priced_as is None
    await engine.settle(a, Usage(input_tokens=10, output_tokens=10), None)
    (status,) = await engine.budget_status()
    assert status["spent_usd"] == 0  # uncounted: no fake price
    b = await engine.admit(request(env=SEARCH, cost=None))
    await engine.settle(b, None, 1.0)  # priced calls spend the budget
    with pytest.raises(PolicyBlocked):  # then unpriced ones stop too
        await engine.admit(request(env=SEARCH, cost=None))


async def test_unpriced_models_priced_as_another_reserve_and_settle_at_its_price(store):
    doc = ONE_DOLLAR.replace("window: daily", "window: daily\n    unpriced: {price_as: gpt-4o}")
    engine = engine_with(store, doc)
    rate = PriceBook().rate_for(None, "gpt-4o")
    assert rate is not None
    a = await engine.admit(request("my-llama", env=SEARCH, tokens=1000, max_out=1000, cost=None))
    assert a.priced_as is not None and a.priced_as[0] == "gpt-4o"
    (status,) = await engine.budget_status()
    worst = worst_case(rate, 1000, 1000)
    assert status["reserved_usd"] == pytest.approx(worst, abs=1e-6)
    usage = Usage(input_tokens=1000, output_tokens=200)
    await engine.settle(a, usage, None)  # the call's own cost is unknown
    (status,) = await engine.budget_status()
    assert status["spent_usd"] == pytest.approx(price_at(rate, usage).cost_usd, abs=1e-6)
    assert status["reserved_usd"] == 0


def test_price_as_a_model_without_a_price_is_refused():
    with pytest.raises(ConfigError, match="no price either"):
        policy(
            ONE_DOLLAR.replace("window: daily", "window: daily\n    unpriced: {price_as: my-llama}")
        )


async def test_seed_budgets(make_store):
    clock = FakeClock(at("2026-05-31T23:00:00"))
    engine = engine_with(make_store(clock), fixture_text("budget-config.yaml"), clock=clock)
    interns = await engine.admit(request(env=INTERNS, cost=400))
    await engine.settle(interns, None, 450)
    with pytest.raises(PolicyBlocked) as caught:
        await engine.admit(request(env=INTERNS, cost=60))
    error = caught.value
    assert error.rule_id == "intern-sandbox-cap" and error.retry_after == pytest.approx(3600)
    assert error.headers["Retry-After"] == "3600"
    search = await engine.admit(request(env=SEARCH, cost=3000))
    await engine.settle(search, None, 3990)
    decision = await engine.admit(request(env=SEARCH, cost=20, cheaper="gpt-4o-mini"))
    assert (decision.fallback_kind, decision.fallback_model) == ("cheaper", "gpt-4o-mini")
    assert decision.fallback_rule_id == "platform-search-monthly"
    cheaper = await engine.admit(
        request(env=SEARCH, cost=20, exempt=frozenset({decision.fallback_rule_id}))
    )
    assert cheaper.admitted
    with pytest.raises(PolicyBlocked) as nothing_cheaper:  # no cheaper model: a hard stop
        await engine.admit(request(env=SEARCH, cost=20))
    assert nothing_cheaper.value.code == "budget_exceeded"
    assert "no cheaper model" in nothing_cheaper.value.message
    clock.advance(3601)  # June: a new window
    assert (await engine.admit(request(env=INTERNS, cost=60))).admitted


async def test_audit_budget_admits_and_records(store):
    engine = engine_with(
        store, ONE_DOLLAR.replace("window: daily", "window: daily\n    on_exceed: audit")
    )
    first = await engine.admit(request(env=SEARCH, cost=0.9))
    second = await engine.admit(request(env=SEARCH, cost=0.9))
    assert first.events == [] and [(e.kind, e.action) for e in second.events] == [
        ("budget", "audit")
    ]


async def test_budget_status_in_a_timezone(make_store):
    clock = FakeClock(at("2026-03-08T01:30:00", "America/New_York"))
    doc = budgets("""
  - id: nyc-team
    scope: {subjects: ["team:nyc"]}
    ceiling_usd: 200
    windows: [daily, monthly, rolling_24h]
    timezone: America/New_York
""")  # fmt: skip
    engine = engine_with(make_store(clock), doc, clock=clock)
    admission = await engine.admit(request(env=Envelope(team="nyc"), cost=5))
    await engine.settle(admission, None, 3.5)
    await engine.admit(request(env=Envelope(team="nyc"), cost=2))
    rows = {row["window"]: row for row in await engine.budget_status()}
    daily = rows["daily"]
    assert (daily["spent_usd"], daily["reserved_usd"], daily["pct"]) == (3.5, 2.0, 1.75)
    assert daily["window_start"] == "2026-03-08T00:00:00-05:00"
    assert daily["resets_at"] == "2026-03-09T00:00:00-04:00"  # DST began overnight
    assert rows["monthly"]["resets_at"] == "2026-04-01T00:00:00-04:00"
    assert rows["rolling_24h"]["resets_at"] is None and rows["rolling_24h"]["spent_usd"] == 3.5
    assert daily["scope"] == {"subjects": ["team:nyc"]} and daily["ceiling_usd"] == 200


async def test_rebuild_budgets_from_the_ledger(make_store):
    clock = FakeClock(at("2026-05-20T12:00:00"))
    doc = budgets("""
  - id: search
    scope: {metadata: {X-TFY-Project: [platform-search, search-api], tier: gold}}
    ceiling_usd: 100
    windows: [monthly, rolling_24h]
  - id: by-key-name
    scope: {subjects: ["virtualaccount:va-james"]}
    ceiling_usd: 100
    window: daily
  - id: by-model
    scope: {models: [sonnet]}
    ceiling_usd: 100
    window: daily
""")  # fmt: skip
    asked: list[tuple[float, dict[str, str]]] = []

    async def sum_cost(since: float, filters: dict[str, str], until: float | None = None) -> float:
        asked.append((since, filters))
        hours = (min(clock.now, until or clock.now) - since) / 3600
        return 0.5 * hours if filters["project"] == "platform-search" else 0.0  # $0.50 an hour

    engine = engine_with(make_store(clock), doc, clock=clock)
    report = await engine.rebuild_budgets(sum_cost)
    assert [(r["id"], r["window"], r["seeded"]) for r in report] == [
        ("search", "monthly", True), ("search", "rolling_24h", True),
        ("by-key-name", "daily", False), ("by-model", "daily", False),
    ]  # fmt: skip
    assert {f["project"] for _, f in asked} == {"platform-search", "search-api"}
    assert all(f["tier"] == "gold" for _, f in asked)
    rows = {(r["id"], r["window"]): r for r in await engine.budget_status()}
    assert rows[("search", "monthly")]["spent_usd"] == pytest.approx(0.5 * 19.5 * 24)
    assert rows[("search", "rolling_24h")]["spent_usd"] == pytest.approx(12.0)
    clock.advance(6 * 3600)  # six hourly buckets slide out of the rolling window
    rows = {(r["id"], r["window"]): r for r in await engine.budget_status()}
    assert rows[("search", "rolling_24h")]["spent_usd"] == pytest.approx(9.0)
    again = await engine.rebuild_budgets(sum_cost)  # later, another replica: nothing twice
    assert [r.get("added_usd") for r in again] == [0, 0, None, None]
    rows = {(r["id"], r["window"]): r for r in await engine.budget_status()}
    assert rows[("search", "monthly")]["spent_usd"] == pytest.approx(0.5 * 19.5 * 24)
    assert rows[("search", "rolling_24h")]["spent_usd"] == pytest.approx(9.0)


async def test_rebuild_from_the_memory_ledger_store(store):
    ledger = MemoryLedgerStore()
    now = time.time()
    await ledger.write_batch([
        LedgerRecord(
            request_id="old", ts=now - 40 * 86400, project="intern-sandbox", cost_usd=300.0
        ),
        LedgerRecord(request_id="a", ts=now - 1, project="intern-sandbox", cost_usd=120.5),
        LedgerRecord(request_id="b", ts=now - 1, project="intern-sandbox", cost_usd=379.0),
        LedgerRecord(request_id="c", ts=now - 1, project="other", cost_usd=1000.0),
    ])  # fmt: skip
    engine = engine_with(store, fixture_text("budget-config.yaml"))
    await engine.rebuild_budgets(ledger.sum_cost)
    rows = {r["id"]: r for r in await engine.budget_status()}
    if datetime.fromtimestamp(now - 1, ZoneInfo("UTC")).day == 1:
        pytest.skip("the ledger rows straddle a month boundary")
    assert rows["intern-sandbox-cap"]["spent_usd"] == pytest.approx(499.5)
    assert rows["platform-search-monthly"]["spent_usd"] == 0
    with pytest.raises(PolicyBlocked):
        await engine.admit(request(env=INTERNS, cost=1))


ALERTING = budgets("""
  - id: alerting
    scope: {metadata: {project: platform-search}}
    ceiling_usd: 10
    window: monthly
    alerts:
      - {at_pct: 50, notify: ["webhook:finops"]}
      - {at_pct: 80, notify: ["slack:#ai-budget-alerts", "pagerduty:platform"]}
      - {at_pct: 100, notify: ["webhook:finops"]}
""")  # fmt: skip


async def spend(engine: PolicyEngine, usd: float) -> None:
    admission = await engine.admit(request(env=SEARCH, cost=usd))
    await engine.settle(admission, None, usd)


async def test_alerts_fire_once_per_window_per_threshold(make_store):
    clock = FakeClock(at("2026-05-10T12:00:00"))
    sink = CollectingAlertSink()
    one = engine_with(make_store(clock), ALERTING, clock=clock, notifier=sink)
    two = engine_with(make_store(clock), ALERTING, clock=clock, notifier=sink)  # another replica
    await spend(one, 4)
    await spend(one, 2)  # 40% when admitted; now 60% spent
    await one.drain()
    assert not sink.alerts
    await spend(one, 0.5)  # sees 60%: the 50% alert
    await spend(one, 0.5)
    await one.drain()
    assert [a.details["threshold_pct"] for a in sink.alerts] == [50]
    alert = sink.alerts[0]
    assert (alert.rule_id, alert.details["window"], alert.details["pct"], alert.notify) == (
        "alerting",
        "monthly",
        60.0,
        ("webhook:finops",),
    )
    assert (
        alert.details["resets_at"] == "2026-06-01T00:00:00+00:00"
        and "alerting reached 50%" in alert.summary
    )
    await spend(one, 2)  # 80% spent after this one
    await asyncio.gather(spend(one, 0.5), spend(two if make_store.kind == "redis" else one, 0.5))
    await one.drain()
    await two.drain()
    assert [a.details["threshold_pct"] for a in sink.alerts] == [50, 80]
    with pytest.raises(PolicyBlocked):
        await one.admit(request(env=SEARCH, cost=2))  # refused: counts as 100%
    await one.drain()
    assert [a.details["threshold_pct"] for a in sink.alerts] == [50, 80, 100]
    clock.advance(25 * 86400)  # June
    await spend(one, 6)
    await spend(one, 0.1)
    await one.drain()
    assert [a.details["threshold_pct"] for a in sink.alerts] == [50, 80, 100, 50]
    assert sink.alerts[-1].details["window_start"] == "2026-06-01T00:00:00+00:00"
    assert (alert.kind, alert.severity) == ("budget", "warning")


async def test_alerts_are_delivered_to_a_receiver_with_retries(store):
    async with Receiver(fail_first={"/finops": 1}) as receiver:
        targets_doc = parse_one({
            "name": "targets", "type": "gateway-notification-targets",
            "targets": {
                "webhook:finops": {"kind": "webhook", "url": receiver.url("/finops"),
                                   "headers": {"X-Token": "s3cret"}},
                "slack:#ai-budget-alerts": {"kind": "slack", "url": receiver.url("/slack")},
                "pagerduty:platform": {"kind": "pagerduty", "url": receiver.url("/pd"),
                                       "routing_key": "R1"},
            },
        })  # fmt: skip
        compiled = policy(ALERTING)
        compiled = type(compiled)(rules=compiled.rules, budgets=compiled.budgets,
                                  targets=targets_doc.targets)  # fmt: skip
        notifier = Notifier(compiled.targets, backoff_s=0.01)
        engine = PolicyEngine(store, notifier=notifier)
        engine.set_policy(compiled)
        await spend(engine, 8.5)
        await spend(engine, 0.1)  # 85%: 50% and 80% alerts
        await engine.drain()
        await notifier.close()
    finops = receiver.bodies("/finops")
    assert len(finops) == 2 and finops[0] == finops[1]  # first attempt failed with 500, retried
    assert finops[0]["rule_id"] == "alerting" and finops[0]["threshold_pct"] == 50
    assert [h for p, h, _ in receiver.hits if p == "/finops"][0]["X-Token"] == "s3cret"
    (slack,) = receiver.bodies("/slack")
    assert set(slack) == {"text"} and "alerting reached 80%" in slack["text"]
    (pd,) = receiver.bodies("/pd")
    assert (pd["routing_key"], pd["event_action"]) == ("R1", "trigger")
    assert pd["payload"]["severity"] == "warning" and pd["dedup_key"].startswith(
        "alerting:monthly:"
    )
    history = {h["threshold_pct"]: h for h in notifier.history}
    assert history[50]["deliveries"] == [
        {"target": "webhook:finops", "attempts": 2, "status": 202, "error": None}
    ]


class _FlakyStore:
    """A memory store behind a switch: while `down`, every call (ping too) fails like an
    unreachable Redis; `wipe()` empties it, like a Redis that restarted without its data."""

    def __init__(self):
        from sluicegate.policy.counters import MemoryCounterStore

        self._make = MemoryCounterStore
        self.inner = MemoryCounterStore()
        self.down = False

    def wipe(self) -> None:
        self.inner = self._make()

    async def ping(self) -> None:
        self._check()

    def _check(self) -> None:
        from sluicegate.errors import StoreUnavailable

        if self.down:
            raise StoreUnavailable("counter store (Redis) unavailable: connection refused")

    def __getattr__(self, name):
        async def call(*args, **kwargs):
            self._check()
            return await getattr(self.inner, name)(*args, **kwargs)

        return call


async def test_budget_counters_are_reseeded_after_an_outage_and_for_new_budgets():
    ledger = MemoryLedgerStore()
    await ledger.write_batch(
        [LedgerRecord(request_id="a", ts=time.time() - 1, project="platform-search", cost_usd=0.75)]
    )
    store = _FlakyStore()
    engine = engine_with(store, ONE_DOLLAR)
    await engine.rebuild_budgets(ledger.sum_cost)
    assert (await engine.budget_status())[0]["spent_usd"] == 0.75

    store.down = True  # Redis goes away, and comes back empty
    assert await engine.check_store() is False and not engine.healthy
    store.wipe()
    store.down = False
    assert await engine.check_store() is True
    await engine.drain()
    assert (await engine.budget_status())[0]["spent_usd"] == 0.75  # rebuilt from the ledger
    with pytest.raises(PolicyBlocked):
        await engine.admit(request(env=SEARCH, cost=0.5))

    # a budget added by a config change starts from what the ledger already holds
    engine.set_policy(policy(ONE_DOLLAR, budgets("""
  - id: search-weekly
    scope: {metadata: {project: platform-search}}
    ceiling_usd: 10
    window: weekly
""")))  # fmt: skip
    await engine.drain()
    rows = {r["id"]: r for r in await engine.budget_status()}
    assert rows["search-weekly"]["spent_usd"] == 0.75


@pytest.mark.parametrize("make_store", ["redis"], indirect=True)
async def test_a_redis_emptied_without_an_outage_is_reseeded_by_the_next_check(make_store, caplog):
    """An emptied Redis (FLUSHALL, a failover to an empty replica; here: this test's own
    keys deleted, never the shared server flushed) answers every call, so
    no outage is seen; the seeding mark is gone with the data, and the next store check
    (every few seconds, and on /readyz) rebuilds budget spend from the ledger."""
    ledger = MemoryLedgerStore()
    await ledger.write_batch(
        [LedgerRecord(request_id="a", ts=time.time() - 1, project="platform-search", cost_usd=0.75)]
    )
    store = make_store()
    engine = engine_with(store, ONE_DOLLAR, store_check_s=0.1)
    try:
        await engine.rebuild_budgets(ledger.sum_cost)
        assert await engine.check_store() and (await engine.budget_status())[0]["spent_usd"] == 0.75

        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(f"{store._base}*", count=1000)]
        await client.delete(*keys)  # the data goes, the connection stays
        await client.aclose()
        for _ in range(50):  # the periodic check (every 0.1 s here) notices
            await asyncio.sleep(0.05)
            await engine.drain()
            if (await engine.budget_status())[0]["spent_usd"] == 0.75:
                break
        assert (await engine.budget_status())[0]["spent_usd"] == 0.75
        assert "lost its data" in caplog.text
        with pytest.raises(PolicyBlocked):
            await engine.admit(request(env=SEARCH, cost=0.5))
    finally:
        await engine.close()


async def test_a_store_down_at_start_does_not_stop_the_rebuild_from_returning():
    store = _FlakyStore()
    store.down = True
    engine = engine_with(store, ONE_DOLLAR, failure_mode="fail_closed")
    report = await engine.rebuild_budgets(MemoryLedgerStore().sum_cost)
    assert report[0]["seeded"] is False and "unavailable" in report[0]["reason"]
    assert not engine.healthy

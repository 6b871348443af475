"""Queues, fallbacks, audits and the comparison with what the live policy did, replayed
on ledgers whose answer is known (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook
from tests.whatif.support import DAY, HOUR, WED, bench, refused, rule, served

T = WED + 10 * HOUR  # a minute boundary


async def test_a_queue_waits_in_simulated_time_for_the_next_window_or_refuses(engine):
    """10 a minute, queue up to 5 s. 15 requests in the last two seconds of a minute: the
    5 over the limit wait for the next minute and go through. 15 at the start of another
    minute: the 5 over it would wait 58 s, so they are refused at the 5 s timeout."""
    b = bench(engine)
    late = [served(n, T + 58.0 + n * 0.1) for n in range(15)]
    early = [served(100 + n, T + 600.0 + n * 0.1) for n in range(15)]
    await b.write([*late, *early])
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: ten-a-minute
    limit: {requests: 10, window: 1m}
    on_breach: queue_then_429
    queue_timeout_ms: 5000
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    limit = rule(report, "ten-a-minute")
    assert limit.proposed.queued.requests == 5
    assert limit.proposed.refused.requests == 5
    assert limit.proposed.first_trip.request_id == "req-0000010"
    assert limit.proposed.first_trip.outcome == "queued"
    waited = int(limit.proposed.first_trip.detail.split()[1])  # "waited N ms", simulated
    assert 990 <= waited <= 1100  # from 59.0 s to the minute's end, in poll steps


async def test_a_rate_limit_fallback_moves_requests_to_the_named_model(engine):
    usage = Usage(input_tokens=2_000, output_tokens=400)
    prices = PriceBook()
    big = prices.price("openai", "gpt-4o", usage).cost_usd or 0.0
    small = prices.price("openai", "gpt-4o-mini", usage).cost_usd or 0.0
    b = bench(engine)
    await b.write(
        [
            served(n, T + n, model="gpt-4o", input_tokens=2_000, output_tokens=400, cost=big)
            for n in range(30)
        ]
    )
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: gpt-4o-hourly
    when: {models: [gpt-4o]}
    limit: {requests: 10, window: 1h}
    on_breach: fallback_to_gpt-4o-mini
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    limit = rule(report, "gpt-4o-hourly")
    assert limit.proposed.fallback.requests == 20
    assert limit.proposed.refused.requests == 0
    assert limit.fallback_cost_usd == pytest.approx(20 * small)
    assert limit.proposed.fallback.cost_usd == pytest.approx(20 * big)
    assert report.totals["proposed"] == {"refused": 0, "fallback": 20, "queued": 0, "audited": 0}
    assert any("would have sent 20 requests to gpt-4o-mini" in f for f in report.findings)


async def test_an_audit_rule_counts_what_it_would_refuse_and_refuses_nothing(engine):
    b = bench(engine)
    await b.write([served(n, T + n) for n in range(12)])
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: watch-only
    limit: {requests: 5, window: 1h}
    on_breach: audit
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    limit = rule(report, "watch-only")
    assert limit.proposed.audited.requests == 7
    assert limit.proposed.refused.requests == 0


LIVE_STRICT = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: strict
    limit: {requests: 5, window: 1h}
"""


def strict_ledger() -> list:
    """What the live 5-an-hour rule did: 5 served, then 20 refused naming it."""
    return [
        *[served(n, T + n * 10.0) for n in range(5)],
        *[refused(5 + n, T + 50.0 + n * 10.0, "strict") for n in range(20)],
    ]


async def test_replaying_the_live_rule_reproduces_what_it_did(engine):
    """The proposal is the live policy itself: the replay refuses the same 20 requests
    the ledger says it refused, so the difference is nothing."""
    b = bench(engine)
    await b.apply(LIVE_STRICT)
    await b.write(strict_ledger())
    report = await b.run(LIVE_STRICT, "1d", until=WED + DAY)
    strict = rule(report, "strict")
    assert strict.change == "unchanged"
    assert strict.proposed.refused.requests == strict.live.refused.requests == 20
    assert strict.difference["refused"] == 0
    assert strict.live.first_trip.request_id == strict.proposed.first_trip.request_id
    assert report.config["changed"] is False


async def test_a_relaxed_policy_shows_what_the_live_one_refused_and_no_longer_would(engine):
    b = bench(engine)
    await b.apply(LIVE_STRICT)
    await b.write(strict_ledger())
    relaxed = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: relaxed
    limit: {requests: 100, window: 1h}
"""
    report = await b.run(relaxed, "1d", until=WED + DAY)
    strict, loose = rule(report, "strict"), rule(report, "relaxed")
    assert (strict.change, strict.kind, strict.document) == ("removed", "rate_limit", "limits")
    assert strict.proposed is None
    assert strict.live.refused.requests == 20
    assert strict.difference["refused"] == -20
    assert loose.change == "added" and loose.proposed.refused.requests == 0
    assert report.totals["difference"]["refused"] == -20
    assert report.totals["admitted_unknown_usage"] == 20
    assert any("strict (not in the proposal) refused 20" in f for f in report.findings)
    assert any("20 requests the live policy refused would be admitted" in n for n in report.notes)


async def test_requests_refused_before_admission_are_read_but_not_replayed(engine):
    """A bad key, a shed request: the live gateway never admitted them, nor does a replay."""
    b = bench(engine)
    bad_key = served(1, T, key=None, input_tokens=None, output_tokens=None, cost=None)
    bad_key.status_code, bad_key.error_type = 401, "invalid_api_key"
    shed = served(2, T + 1, input_tokens=None, output_tokens=None, cost=None)
    shed.status_code, shed.error_type = 503, "overloaded"
    await b.write([bad_key, shed, served(3, T + 2), served(4, T + 3)])
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: one
    limit: {requests: 1, window: 1h}
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    assert (report.rows_read, report.rows_replayed) == (4, 2)
    assert report.totals["rows_skipped"] == 2
    assert rule(report, "one").proposed.refused.requests == 1

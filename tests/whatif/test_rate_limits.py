"""Rate-limit rules of a proposal replayed on ledgers whose answer is known by
construction, on SQLite and PostgreSQL."""

from __future__ import annotations

from sluicegate.policy.windows import iso
from tests.whatif.support import HOUR, WED, bench, rule, served

TEAM_HOURLY = """
name: team-limits
type: gateway-rate-limit-config
rules:
  - id: team-hourly
    when: {metadata: {team: [A, B]}}
    limit: {requests: 600, window: 1h, scope: team}
"""


async def test_a_600_an_hour_limit_refuses_exactly_400_of_1000_from_the_601st(engine):
    """1,000 requests of team A in one hour (plus 300 of team B, under the limit) under a
    proposed 600/hour per-team limit: exactly 400 refused, all team A's, the first at
    team A's 601st request; nothing was refused live."""
    b = bench(engine)
    start = WED + 10 * HOUR  # 10:00, a whole 1h window
    rows = [served(n, start + n * 3.0, team="A", cost=0.002) for n in range(1000)]
    rows += [served(5000 + n, start + 1.5 + n * 10.0, team="B") for n in range(300)]
    await b.write(rows)

    report = await b.run(TEAM_HOURLY, "1d", until=WED + 1 * 86400)

    assert report.rows_read == report.rows_replayed == 1300
    assert not report.truncated
    limit = rule(report, "team-hourly")
    assert limit.change == "added"
    assert limit.matched_requests == 1300
    assert limit.proposed.refused.requests == 400
    assert limit.proposed.refused.input_tokens == 400 * 100
    assert limit.proposed.refused.output_tokens == 400 * 50
    assert round(limit.proposed.refused.cost_usd, 6) == round(400 * 0.002, 6)
    assert [(s.name, s.requests) for s in limit.top_scopes] == [("team=A", 400)]
    first = limit.proposed.first_trip
    assert first.request_id == "req-0000600"  # team A's 601st, by time
    assert first.at == iso(start + 600 * 3.0)
    assert first.scope == "team=A"
    assert "600 + 1 requests > 600 per 1h" in first.detail
    assert limit.live.refused.requests == 0
    assert limit.difference == {"refused": 400, "fallback": 0, "queued": 0, "audited": 0}
    assert report.totals["proposed"]["refused"] == 400
    assert report.totals["live"]["refused"] == 0
    assert report.findings[0].startswith(
        "rule team-hourly would have refused 400 requests of team=A "
        "since Wed 01 Jan 10:30 UTC (live: 0)"
    )


async def test_a_refused_request_does_not_count_in_a_later_window_or_rule(engine):
    """Refused requests are never counted: a second, wider rule sees only what the first
    let through, and the next window starts from zero."""
    b = bench(engine)
    start = WED + 10 * HOUR
    rows = [served(n, start + n * 10.0) for n in range(30)]  # 30 in 5 minutes
    rows += [served(100 + n, start + HOUR + n * 10.0) for n in range(30)]  # next hour
    await b.write(rows)
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: ten-an-hour
    limit: {requests: 10, window: 1h}
  - id: fifteen-a-day
    limit: {requests: 15, window: 1d}
"""
    report = await b.run(proposal, "1d", until=WED + 86400)
    hourly, daily = rule(report, "ten-an-hour"), rule(report, "fifteen-a-day")
    # hour one: 10 admitted, 20 refused by the hourly rule (uncounted by the daily one);
    # hour two: 5 admitted (the day's 15), then the daily rule refuses the other 25,
    # which the hourly counter never sees, so it refuses none of them
    assert hourly.proposed.refused.requests == 20
    assert daily.proposed.refused.requests == 25
    assert daily.proposed.first_trip.request_id == "req-0000105"
    assert daily.proposed.first_trip.nth_match == 36  # every request matches it
    assert report.totals["proposed"]["refused"] == 45

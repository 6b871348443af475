"""A what-if is bounded: rows (then `truncated`), pages that never skip or repeat a row,
a wall-clock deadline (a clear 503), one at a time, and an event loop that keeps
answering while it replays."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from sluicegate.whatif.service import WhatIfBusy, WhatIfDeadline
from tests.whatif.support import DAY, HOUR, WED, bench, rule, served

ONE_A_DAY = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: thirty
    limit: {requests: 30, window: 1d}
"""


async def test_the_row_bound_truncates_and_says_so(engine):
    b = bench(engine, max_rows=50, page_rows=20)
    await b.write([served(n, WED + HOUR + n) for n in range(120)])
    report = await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    assert report.truncated and report.truncated_reason == "max_rows"
    assert report.rows_read == 50
    assert rule(report, "thirty").proposed.refused.requests == 20
    assert report.replayed_until == "2025-01-01T01:00:49+00:00"
    assert report.notes[0].startswith("stopped at the row bound (50 rows")


async def test_a_window_of_exactly_the_bound_is_not_truncated(engine):
    b = bench(engine, max_rows=50, page_rows=20)
    await b.write([served(n, WED + HOUR + n) for n in range(50)])
    report = await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    assert not report.truncated and report.truncated_reason is None
    assert report.rows_read == 50


async def test_pages_split_rows_of_one_instant_without_skipping_or_repeating(engine):
    """45 requests recorded at the same instant, read 20 at a time: each once, in
    request id order (the keyset is (ts, request_id))."""
    b = bench(engine, page_rows=20)
    await b.write([served(n, WED + HOUR) for n in range(45)])
    report = await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    limit = rule(report, "thirty")
    assert report.rows_read == 45
    assert limit.matched_requests == 45
    assert limit.proposed.refused.requests == 15
    assert limit.proposed.first_trip.request_id == "req-0000030"


async def test_rows_outside_the_window_are_not_read(engine):
    b = bench(engine)
    inside = [served(n, WED + n * HOUR) for n in range(24)]
    before = [served(100 + n, WED - 1 - n) for n in range(5)]
    at_end = [served(200, WED + DAY)]  # `until` is exclusive
    await b.write([*inside, *before, *at_end])
    report = await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    assert report.rows_read == 24
    assert report.window["since"] == "2025-01-01T00:00:00+00:00"


async def test_past_the_deadline_it_stops_with_a_clear_error(engine):
    b = bench(engine, deadline_s=1e-6)
    await b.write([served(n, WED + HOUR + n) for n in range(10)])
    with pytest.raises(WhatIfDeadline) as caught:
        await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    assert caught.value.status == 503
    assert "did not finish within 1e-06s" in caught.value.message
    assert "--what-if-deadline" in caught.value.message


async def test_one_what_if_at_a_time(engine):
    """While one runs (held here at its ledger flush), another is refused at once with
    429; once it is done the next one runs."""
    release = asyncio.Event()

    async def flush() -> None:
        await release.wait()

    b = bench(engine, flush=flush)
    first = asyncio.create_task(b.run(ONE_A_DAY, "1d", until=WED + DAY))
    await asyncio.sleep(0.05)
    assert not first.done()
    with pytest.raises(WhatIfBusy) as caught:
        await b.run(ONE_A_DAY, "1d", until=WED + DAY)
    assert caught.value.status == 429
    release.set()
    await first
    await b.run(ONE_A_DAY, "1d", until=WED + DAY)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_the_event_loop_keeps_answering_while_a_replay_runs(engine):
    """40,000 rows in one page take seconds to replay. On the loop, a 10 ms ticker would
    stall for about all of it; in the worker thread the loop keeps waking it, its
    longest stall a small part of the whole (on a loaded 2-core host: a few hundred ms
    at worst, from the collector or the host's other processes)."""
    b = bench(engine, page_rows=40_000)
    await b.write([served(n, WED + n * 2.0, team=f"t{n % 7}") for n in range(40_000)])
    proposal = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-team
    limit: {requests: 100, window: 1h, scope: team}
  - id: tokens
    limit: {tokens: 100000000, window: 1d}
"""
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    # A serve worker freezes what it holds at start (server/worker_tuning.py), so its
    # collections walk only new objects; this process holds every earlier test's, and a
    # full collection over them stalled the loop ~1 s in CI. Measure as a worker runs.
    gc.freeze()
    try:
        started = time.perf_counter()
        watching = asyncio.create_task(ticker())
        report = await b.run(proposal, "1d", until=WED + DAY)
        took = time.perf_counter() - started
        watching.cancel()
    finally:
        gc.unfreeze()
    assert report.rows_read == 40_000
    assert max(lags) < took / 3, (took, sorted(lags)[-5:])

"""The loop flag's baseline: per workflow tag, the 95th percentile of its sessions' token
rate over the 7 days before the window (seed 000's runaway-agent rule: a session far
above what its workflow usually burns is probably looping).

    tokens per hour   (input + output tokens) x 3600 / the session's length in seconds,
                      a session shorter than an hour measured over an hour (one quick
                      request is not extrapolated to an hourly rate)
    baseline          the nearest-rank p95 of that rate over the workflow's sessions whose
                      last request was in [since - 7 days, since) (of all workflows' the
                      newest 20,000 at most), read under the same filters and scope as the
                      panel; none with fewer than 20 sessions
    loop              tokens per hour > 3 x the baseline

The percentile is picked in SQL (ROW_NUMBER over the rate, per workflow), one row per
workflow; the picked session's tokens and length come back and its rate is computed
here with the same `tokens_per_hour` as every session's.

Baselines are cached per engine (BaselineCache): the window's start is a whole hour, so
a default 7-day window asks the same week for an hour, and that week is in the past; an
entry lives CACHE_TTL_S at most (sessions of that week still move out of it when they
get a later request), CACHE_ENTRIES per engine. Replicas each keep their own: they
share only the database, and each reads the same baseline from it.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from sqlalchemy import ColumnElement, Double, Select, case, cast, func, literal, select

from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.session_sql import S, SessionSelection, collated, conditions
from sluicegate.analytics.window import DAY, HOUR

BASELINE_DAYS = 7
LOOP_FACTOR = 3.0
MIN_BASELINE_SESSIONS = 20
RATE_FLOOR_S = float(HOUR)
PERCENTILE = 95  # nearest rank: the ceil(0.95 n)-th smallest rate
MAX_WORKFLOWS = 10_000  # baselines read at once (one row each)
BASELINE_SESSIONS = 20_000  # the newest sessions of the week a baseline is taken from
CACHE_TTL_S = 300.0  # how stale a cached baseline may be
CACHE_ENTRIES = 256  # cached baselines per engine (a window start x filters x scope each)
CLOCK: Callable[[], float] = time.monotonic  # what ages cached baselines


@dataclass(frozen=True, slots=True)
class Baseline:
    tokens_per_hour: float  # the p95
    sessions: int  # how many sessions of the previous 7 days it rests on


def tokens_per_hour(tokens: int, first_ts: float, last_ts: float) -> float:
    return float(tokens) * 3600.0 / max(last_ts - first_ts, RATE_FLOOR_S)


def is_loop(rate: float, baseline: Baseline | None) -> bool | None:
    """None: no baseline to compare with."""
    if baseline is None:
        return None
    return rate > LOOP_FACTOR * baseline.tokens_per_hour


Baselines = dict[str, Baseline]
CacheKey = tuple[float, tuple[tuple[str, str], ...], tuple[str, ...] | None, str | None]
# engine -> its cache; an engine disposed of and dropped takes its entries with it
_CACHES: weakref.WeakKeyDictionary[object, TTLCache[CacheKey, Baselines]] = (
    weakref.WeakKeyDictionary()
)


async def baselines(reader: AnalyticsReader, selection: SessionSelection) -> Baselines:
    """Workflow tag ("" for sessions without one) -> its baseline, for the workflows with
    at least MIN_BASELINE_SESSIONS sessions in the 7 days before the window (cached)."""
    cache = _CACHES.get(reader.engine)
    if cache is None:
        cache = _CACHES[reader.engine] = TTLCache(
            maxsize=CACHE_ENTRIES, ttl=CACHE_TTL_S, timer=lambda: CLOCK()
        )
    key = (selection.window.since, selection.filters, selection.teams, selection.user_id)
    found = cache.get(key)
    if found is None:
        found = cache[key] = await read_baselines(reader, selection)
    return found


def forget(engine: object) -> None:
    """Drop the baselines cached for this engine (its database was emptied or refilled)."""
    _CACHES.pop(engine, None)


async def read_baselines(reader: AnalyticsReader, selection: SessionSelection) -> Baselines:
    """`baselines`, read from the database now."""
    rows = await reader.run(baseline_statement(selection, reader.dialect))
    return {
        str(row["workflow_tag"] or ""): Baseline(
            tokens_per_hour(int(row["tokens"]), float(row["first_ts"]), float(row["last_ts"])),
            int(row["n"]),
        )
        for row in rows
    }


def baseline_statement(selection: SessionSelection, dialect: str) -> Select[Any]:
    since = selection.window.since
    week = (  # the newest sessions of the week before the window, at most BASELINE_SESSIONS
        select(S.session_id, S.workflow_tag, S.first_ts, S.last_ts, S.input_tokens, S.output_tokens)
        .where(*conditions(selection, span=(since - BASELINE_DAYS * DAY, since)))
        .order_by(S.last_ts.desc())
        .limit(BASELINE_SESSIONS)
        .subquery("week")
    )
    w = week.c
    tokens = w.input_tokens + w.output_tokens
    span = w.last_ts - w.first_ts
    floor: ColumnElement[float] = literal(RATE_FLOOR_S, Double())
    length = case((span > floor, span), else_=floor)
    rate = cast(tokens, Double()) * literal(3600.0, Double()) / length
    workflow = collated(w.workflow_tag, dialect)
    ranked = select(
        w.workflow_tag.label("workflow_tag"),
        tokens.label("tokens"),
        w.first_ts,
        w.last_ts,
        func.row_number()
        .over(partition_by=workflow, order_by=(rate, collated(w.session_id, dialect)))
        .label("rank"),
        func.count().over(partition_by=workflow).label("n"),
    ).subquery("ranked")
    r = ranked.c
    return (
        select(r.workflow_tag, r.tokens, r.first_ts, r.last_ts, r.n)
        .where(r.rank == (r.n * PERCENTILE + 99) // 100, r.n >= MIN_BASELINE_SESSIONS)
        .order_by(collated(r.workflow_tag, dialect))
        .limit(MAX_WORKFLOWS)
    )

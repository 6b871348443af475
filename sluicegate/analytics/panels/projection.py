"""Where spend will stand at the end of a window, at its rate so far, and a budget's live
state with that projection.

    projected = spent / elapsed x length

that is, the window-to-date daily rate carried on through the days left (a month: the
month-to-date spend over the days elapsed, times the days in the month). It is made once
the window is at least min(1 day, a tenth of its length) old, as an earlier rate rests
on too little; before then, and for a rolling window (its spend slides and never reaches
an end), there is none. A budget is `over` when its spend, or its projection, passes its
ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from sluicegate.analytics.panels.common import usd
from sluicegate.analytics.window import DAY

MIN_BASIS_FRACTION = 0.1  # ... of the window's length, when that is under a day


class BudgetState(msgspec.Struct, kw_only=True):
    """One window of a budget, live from the policy engine's counters."""

    window: str  # monthly, daily, rolling_7d...
    timezone: str
    ceiling_usd: float
    spent_usd: float  # settled spend in the window so far
    pct: float  # of the ceiling
    window_start: str
    resets_at: str | None  # None: a rolling window
    elapsed_days: float
    projected_usd: float | None  # at the window's end, at its rate so far
    projected_pct: float | None
    over: bool  # spent, or projected, past the ceiling


def month_bounds(now: float) -> tuple[float, float]:
    """[start, end) of the UTC calendar month holding `now`."""
    day = datetime.fromtimestamp(now, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def projected(spent: float, start: float, end: float, now: float) -> float | None:
    """`spent` over [start, now) carried on at the same rate to `end`; None when too
    little of the window has passed to say."""
    length, elapsed = end - start, min(now, end) - start
    if length <= 0 or elapsed < min(DAY, MIN_BASIS_FRACTION * length):
        return None
    return usd(spent / elapsed * length)


def budget_state(status: Mapping[str, Any], now: float) -> BudgetState:
    """A `PolicyEngine.budget_status` row with its projection as of `now`."""
    start = _unix(status["window_start"])
    resets_at = status.get("resets_at")
    spent, ceiling = float(status["spent_usd"]), float(status["ceiling_usd"])
    ahead = projected(spent, start, _unix(resets_at), now) if resets_at else None
    return BudgetState(
        window=str(status["window"]),
        timezone=str(status.get("timezone") or "UTC"),
        ceiling_usd=ceiling,
        spent_usd=usd(spent),
        pct=float(status["pct"]),
        window_start=str(status["window_start"]),
        resets_at=resets_at,
        elapsed_days=round(max(now - start, 0.0) / DAY, 3),
        projected_usd=ahead,
        projected_pct=None if ahead is None else round(ahead / ceiling * 100, 2),
        over=spent >= ceiling or (ahead is not None and ahead > ceiling),
    )


def _unix(text: str) -> float:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # the engine writes offsets; a naive time is UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()

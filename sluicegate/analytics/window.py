"""The time window an analytics query covers, and which rollup rows cover it.

A window is given as `since` / `until` (unix seconds, ISO 8601 with a zone or naive as
UTC, or an age such as `36h`, `7d`), defaults to the last 7 days, and may span at most
400 days. Rollups have hour buckets, so the window is snapped *outward* to whole UTC
hours and the answer states the effective window. Whole weeks (Monday to Sunday, UTC)
inside it are read from week rows, whole days at either end from day rows and the hours
at the very ends from hour rows (`Window.spans`): per group at most 2 x 23 hour rows,
2 x 6 day rows and a row per week.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from sluicegate.errors import InvalidRequest

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
MONDAY = 4 * DAY  # 1970-01-05T00:00Z: weeks run Monday to Sunday, UTC
Grain = Literal["hour", "day", "week"]
GRAIN_ORDER: tuple[Grain, ...] = ("hour", "day", "week")  # finest first
DEFAULT_SPAN_S = 7 * DAY
MAX_SPAN_DAYS = 400
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z

_AGE = re.compile(r"^(\d{1,6})([smhdw])$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": HOUR, "d": DAY, "w": 7 * DAY}


class Span(NamedTuple):
    """[start, end) read from rows of one grain (both on that grain's bucket starts)."""

    grain: Grain
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Window:
    """[since, until) in unix seconds, both on whole UTC hours; `requested_*` as asked."""

    since: float
    until: float
    requested_since: float
    requested_until: float

    @property
    def seconds(self) -> float:
        return self.until - self.since

    def spans(self, coarsest: Grain = "week") -> list[Span]:
        """The window as rollup rows cover it: the coarsest aligned grain inside (up to
        `coarsest`), finer ones at the edges, hours at the very ends. 30 days read ~4
        week rows, up to 12 day rows and up to 46 hour rows per group."""
        return _spans(self.since, self.until, GRAIN_ORDER[: GRAIN_ORDER.index(coarsest) + 1])


def week_start(ts: float) -> float:
    """The start of the UTC Monday-to-Sunday week holding `ts`."""
    return float(((ts - MONDAY) // WEEK) * WEEK + MONDAY)


def _spans(since: float, until: float, grains: tuple[Grain, ...]) -> list[Span]:
    """[since, until) (whole hours) split into the coarsest of `grains` (finest first)
    that fits whole inside, recursively finer at either end."""
    if since >= until:
        return []
    *finer, grain = grains
    if not finer:
        return [Span(grain, since, until)]
    first, end = _aligned(since, grain, up=True), _aligned(until, grain, up=False)
    if first >= end:
        return _spans(since, until, tuple(finer))
    inner = Span(grain, first, end)
    return [*_spans(since, first, tuple(finer)), inner, *_spans(end, until, tuple(finer))]


def _aligned(ts: float, grain: Grain, *, up: bool) -> float:
    """The nearest bucket start of `grain` at or after (`up`) / at or before `ts`."""
    if grain == "week":
        start = week_start(ts)
        return start + WEEK if up and start < ts else start
    width = DAY if grain == "day" else HOUR
    return float((math.ceil(ts / width) if up else math.floor(ts / width)) * width)


def parse_instant(value: str, param: str, now: float) -> float:
    """Unix seconds, ISO 8601 (a naive time is UTC; a date alone is its midnight), or an
    age before `now` such as `90m`, `36h`, `7d`, `2w`."""
    text = value.strip()
    age = _AGE.match(text)
    number = _number(text)
    if age:
        seconds = now - int(age.group(1)) * _AGE_SECONDS[age.group(2)]
    elif number is not None:
        seconds = number
    else:
        seconds = _iso(text, param)
    if not 0.0 <= seconds <= MAX_TIME:  # false for nan too
        raise InvalidRequest(f"{param}: {value!r} is not a time between 1970 and 9999", param=param)
    return seconds


def window_from(since: str | None, until: str | None, now: float) -> Window:
    """The window of a query's `since` / `until` parameters (None: not given)."""
    end = parse_instant(until, "until", now) if until else now
    start = parse_instant(since, "since", now) if since else end - DEFAULT_SPAN_S
    if start >= end:
        param = "since" if since else "until"
        raise InvalidRequest(
            f"{param}: the window must end after it starts (since {_iso_text(start)}, "
            f"until {_iso_text(end)})",
            param=param,
        )
    if end - start > MAX_SPAN_DAYS * DAY:
        raise InvalidRequest(
            f"since: a window spans at most {MAX_SPAN_DAYS} days "
            f"(this one {(end - start) / DAY:.1f})",
            param="since",
        )
    snapped_start = max(0.0, float(math.floor(max(start, 0.0) / HOUR) * HOUR))
    snapped_end = float(math.ceil(end / HOUR) * HOUR)
    return Window(snapped_start, snapped_end, start, end)


def iso(ts: float) -> str:
    """A unix time as ISO 8601 UTC with a Z, to the second."""
    return _iso_text(ts)


def _number(text: str) -> float | None:
    if not text or not text.isascii():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _iso(text: str, param: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{param}: {text!r} is not a time (unix seconds, ISO 8601 such as "
            "2026-05-01T09:00:00Z, or an age such as 36h or 7d)",
            param=param,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        raise InvalidRequest(f"{param}: {text!r} is out of range", param=param) from None


def _iso_text(ts: float) -> str:
    clamped = min(max(ts, 0.0), MAX_TIME)
    return datetime.fromtimestamp(clamped, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

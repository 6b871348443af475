"""Time windows for rate limits and budgets.

Three shapes, all computed from a unix timestamp:

- fixed: a duration (`30s`, `1m`, `1h`, `1d`, `7d`, `1w`) aligned to the unix epoch, so
  every replica agrees on where a window starts. Whole weeks start on Monday 00:00 UTC.
- calendar: `daily`, `weekly`, `monthly` (and `1mo`, `3mo`) aligned to local midnight,
  Monday or the 1st of the month in an IANA timezone (UTC unless the budget names one).
- rolling: `rolling_24h`, `rolling_7d`, `rolling_30d`, ... a sliding window summed over
  24 buckets (30 daily buckets for 30 days); it never "resets", it slides.

A window has no state; `bounds(now)` is all a caller needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sluicegate.policy.counters.base import Slide

WindowKind = Literal["fixed", "calendar", "rolling"]
CalendarUnit = Literal["day", "week", "month"]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_NAMES = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
    "mo": "mo", "month": "mo", "months": "mo",
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
_CALENDAR_WORDS: dict[str, CalendarUnit] = {"daily": "day", "weekly": "week", "monthly": "month"}
_MONDAY_OFFSET = 4 * 86400  # 1970-01-01 was a Thursday; 1970-01-05 a Monday
_EXPIRY_GRACE_S = 60.0

WINDOW_HINT = "use 30s, 1m, 1h, 1d, 7d, 1w, 1mo, daily, weekly or monthly"
BUDGET_WINDOW_HINT = "use daily, weekly, monthly, rolling_24h, rolling_7d or rolling_30d"


class Frame(NamedTuple):
    """One concrete window: [start, end), the counter-key suffix, when its counter may go."""

    start: float
    end: float
    suffix: str
    expires_at: float


@dataclass(frozen=True)
class Window:
    label: str
    kind: WindowKind
    seconds: int = 0  # fixed and rolling: the length
    unit: CalendarUnit = "day"  # calendar only
    count: int = 1  # calendar months per window (3mo)
    tz: ZoneInfo = ZoneInfo("UTC")
    bucket_s: int = 0  # rolling only
    # The frame last computed: the calendar arithmetic is the costliest part of an
    # admission, and a fixed or calendar frame only changes at the window's end.
    _frame_memo: list[Frame | None] = field(
        default_factory=lambda: [None], compare=False, repr=False
    )

    def bounds(self, now: float) -> tuple[float, float]:
        """(start, end) of the window holding `now`. For a rolling window `end` is the next
        bucket boundary: the earliest moment some spend slides out."""
        frame = self.frame(now)
        return frame.start, frame.end

    def counter_suffix(self, now: float) -> str:
        """What a counter key carries to tell windows apart (rolling counters live on)."""
        return self.frame(now).suffix

    def expires_at(self, now: float) -> float:
        return self.frame(now).expires_at

    def frame(self, now: float) -> Frame:
        """Everything an admission needs about the window holding `now`: computed once per
        window, or per call for a rolling one, whose start slides with `now`."""
        if self.kind == "rolling":
            next_bucket = (now // self.bucket_s + 1) * self.bucket_s
            return Frame(
                now - self.seconds,
                next_bucket,
                "r",
                now + self.seconds + self.bucket_s + _EXPIRY_GRACE_S,
            )
        last = self._frame_memo[0]
        if last is not None and last.start <= now < last.end:
            return last
        if self.kind == "fixed":
            offset = _MONDAY_OFFSET if self.seconds % 604800 == 0 else 0
            start = (now - offset) // self.seconds * self.seconds + offset
            end = start + self.seconds
        else:
            start, end = _calendar_bounds(now, self.unit, self.count, self.tz)
        frame = self._frame_memo[0] = Frame(start, end, str(int(start)), end + _EXPIRY_GRACE_S)
        return frame

    @property
    def slide(self) -> Slide | None:
        if self.kind != "rolling":
            return None
        return Slide(window_s=self.seconds, bucket_s=self.bucket_s)

    @property
    def resets(self) -> bool:
        return self.kind != "rolling"


def parse_window(text: str) -> Window:
    """A rate-limit window: a duration, `Nmo`, or daily/weekly/monthly (UTC)."""
    word = text.strip().lower()
    if word in _CALENDAR_WORDS:
        return Window(label=word, kind="calendar", unit=_CALENDAR_WORDS[word])
    match = _DURATION.match(word)
    unit = _UNIT_NAMES.get(match.group(2)) if match else None
    if match is None or unit is None or int(match.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a window; {WINDOW_HINT}")
    count = int(match.group(1))
    if unit == "mo":
        if 12 % count:
            raise ValueError(f"'{text}': a window of months must divide a year (1, 2, 3, 4, 6, 12)")
        return Window(label=f"{count}mo", kind="calendar", unit="month", count=count)
    return Window(label=f"{count}{unit}", kind="fixed", seconds=count * _UNIT_SECONDS[unit])


def parse_budget_window(text: str, tz_name: str = "UTC") -> Window:
    """A budget window: daily/weekly/monthly in `tz_name`, or rolling_<duration>."""
    word = text.strip().lower()
    tz = parse_timezone(tz_name)
    if word in _CALENDAR_WORDS:
        return Window(label=word, kind="calendar", unit=_CALENDAR_WORDS[word], tz=tz)
    if word.startswith("rolling_"):
        try:
            inner = parse_window(word.removeprefix("rolling_"))
        except ValueError:
            inner = None
        if inner is not None and inner.kind == "fixed" and inner.seconds >= 60:
            seconds = inner.seconds
            bucket = 86400 if seconds == 30 * 86400 else max(1, seconds // 24)
            return Window(label=word, kind="rolling", seconds=seconds, bucket_s=bucket)
    raise ValueError(f"'{text}' is not a budget window; {BUDGET_WINDOW_HINT}")


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not an IANA timezone (e.g. UTC, Europe/Berlin)") from None


def iso(ts: float, tz: ZoneInfo | None = None) -> str:
    return datetime.fromtimestamp(ts, tz or UTC).isoformat()


def _calendar_bounds(
    now: float, unit: CalendarUnit, count: int, tz: ZoneInfo
) -> tuple[float, float]:
    local = datetime.fromtimestamp(now, tz).date()
    if unit == "day":
        return _midnight(local, tz), _midnight(local + timedelta(days=1), tz)
    if unit == "week":
        monday = local - timedelta(days=local.weekday())
        return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)
    index = local.year * 12 + local.month - 1
    index -= index % count
    return _month_start(index, tz), _month_start(index + count, tz)


def _month_start(index: int, tz: ZoneInfo) -> float:
    return _midnight(date(index // 12, index % 12 + 1, 1), tz)


def _midnight(day: date, tz: ZoneInfo) -> float:
    return datetime.combine(day, time(0), tzinfo=tz).timestamp()

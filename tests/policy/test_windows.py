from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sluicegate.policy.windows import parse_budget_window, parse_window


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def local(stamp: float, tz: str) -> str:
    return datetime.fromtimestamp(stamp, ZoneInfo(tz)).isoformat()


@pytest.mark.parametrize(
    ("text", "label", "seconds"),
    [("30s", "30s", 30), ("1m", "1m", 60), ("1h", "1h", 3600), ("1d", "1d", 86400),
     ("7d", "7d", 604800), ("1w", "1w", 604800), ("2 hours", "2h", 7200), ("90sec", "90s", 90)],
)  # fmt: skip
def test_durations(text, label, seconds):
    window = parse_window(text)
    assert (window.kind, window.label, window.seconds) == ("fixed", label, seconds)


@pytest.mark.parametrize("text", ["fortnight", "0h", "-1h", "1x", "30ms", "", "h"])
def test_bad_windows(text):
    with pytest.raises(ValueError, match=r"is not a window; use 30s, 1m, 1h, 1d"):
        parse_window(text)


def test_fixed_windows_align_to_the_epoch_and_weeks_to_monday():
    now = ts("2026-05-13T10:17:42")  # a Wednesday
    assert parse_window("1h").bounds(now) == (ts("2026-05-13T10:00:00"), ts("2026-05-13T11:00:00"))
    assert parse_window("15m").bounds(now)[0] == ts("2026-05-13T10:15:00")
    assert parse_window("1d").bounds(now)[0] == ts("2026-05-13T00:00:00")
    assert parse_window("1w").bounds(now) == (ts("2026-05-11T00:00:00"), ts("2026-05-18T00:00:00"))
    assert parse_window("1h").counter_suffix(now) == str(int(ts("2026-05-13T10:00:00")))


def test_months_are_calendar_months():
    window = parse_window("1mo")
    assert window.bounds(ts("2026-02-14T08:00:00")) == (
        ts("2026-02-01T00:00:00"),
        ts("2026-03-01T00:00:00"),
    )
    quarter = parse_window("3mo")
    assert quarter.bounds(ts("2026-05-14T08:00:00")) == (
        ts("2026-04-01T00:00:00"),
        ts("2026-07-01T00:00:00"),
    )
    with pytest.raises(ValueError, match="must divide a year"):
        parse_window("5mo")


def test_budget_calendar_windows_in_a_timezone():
    tz = "America/New_York"
    now = ts("2026-03-08T01:30:00", tz)  # the night clocks go forward (02:00 -> 03:00)
    daily = parse_budget_window("daily", tz)
    start, end = daily.bounds(now)
    assert local(start, tz) == "2026-03-08T00:00:00-05:00"
    assert local(end, tz) == "2026-03-09T00:00:00-04:00"
    assert end - start == 23 * 3600
    weekly = parse_budget_window("weekly", tz)
    assert local(weekly.bounds(now)[0], tz) == "2026-03-02T00:00:00-05:00"  # Monday
    monthly = parse_budget_window("monthly", "Europe/Berlin")
    start, end = monthly.bounds(ts("2026-03-31T23:30:00", "Europe/Berlin"))
    assert local(start, "Europe/Berlin") == "2026-03-01T00:00:00+01:00"
    assert local(end, "Europe/Berlin") == "2026-04-01T00:00:00+02:00"
    # 22:30 UTC on the 31st is already April in Berlin
    assert monthly.bounds(ts("2026-03-31T22:30:00"))[0] == end


def test_rolling_windows():
    day = parse_budget_window("rolling_24h")
    assert (day.kind, day.seconds, day.bucket_s, day.resets) == ("rolling", 86400, 3600, False)
    assert parse_budget_window("rolling_7d").bucket_s == 25200
    assert parse_budget_window("rolling_30d").bucket_s == 86400
    now = datetime(2026, 5, 13, 10, 20, tzinfo=UTC).timestamp()
    assert day.bounds(now) == (now - 86400, ts("2026-05-13T11:00:00"))
    assert day.counter_suffix(now) == "r" and day.slide is not None


@pytest.mark.parametrize("text", ["fortnight", "1h", "rolling_", "rolling_10s", "yearly"])
def test_bad_budget_windows(text):
    with pytest.raises(ValueError, match="is not a budget window; use daily, weekly, monthly"):
        parse_budget_window(text)

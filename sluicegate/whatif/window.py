"""The stretch of the ledger a what-if replays: `7d`, `36h`, `90m` ending now (or at a
given time), at most `MAX_WINDOW_S` long."""

from __future__ import annotations

import msgspec

from sluicegate.errors import InvalidRequest
from sluicegate.policy.windows import iso, parse_window

MAX_WINDOW_DAYS = 31
MAX_WINDOW_S = MAX_WINDOW_DAYS * 86400


class ReplayWindow(msgspec.Struct, frozen=True):
    label: str  # as written, normalised (`7d`)
    since: float  # unix seconds, inclusive
    until: float  # unix seconds, exclusive

    @property
    def seconds(self) -> float:
        return self.until - self.since

    def describe(self) -> dict[str, object]:
        return {
            "label": self.label,
            "since": iso(self.since),
            "until": iso(self.until),
            "since_unix": self.since,
            "until_unix": self.until,
        }


def replay_window(text: str, until: float) -> ReplayWindow:
    """`text` a duration (the rate-limit window syntax: `7d`, `36h`, `1w`, `90m`); 400
    naming the `window` parameter otherwise, or past `MAX_WINDOW_DAYS` days."""
    try:
        window = parse_window(text)
    except ValueError:
        window = None
    if window is None or window.kind != "fixed":
        raise InvalidRequest(
            f"window: {text[:40]!r} is not a duration; use e.g. 7d, 36h, 90m or 2w "
            f"(at most {MAX_WINDOW_DAYS}d)",
            param="window",
        )
    if window.seconds > MAX_WINDOW_S:
        raise InvalidRequest(
            f"window: {window.label} is longer than the {MAX_WINDOW_DAYS} days a what-if "
            "replays; narrow it",
            param="window",
        )
    return ReplayWindow(window.label, until - window.seconds, until)

"""Recent latency, time per output token and error counts per target, in this process.

Each replica learns from its own traffic (latency-based routing needs no shared store).
Only successful attempts give latency samples: a fast 500 must not make a broken target
look like the fastest. Samples older than `window_seconds` are forgotten, so a target
that was slow an hour ago falls below `min_samples` and is explored again.

Two views of the same samples: p50/p95 over the whole window (what `/api/targets`
shows), and `recent_*`, the median of the last `RECENT_SAMPLES` only, which routing
scores on: a target that slows down is noticed after about half that many slow answers,
not after half the window's worth (hundreds, for a busy target).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import msgspec

RECENT_SAMPLES = 16  # routing scores on the median of this many newest samples


class LatencyStats(msgspec.Struct, frozen=True, kw_only=True):
    samples: int = 0  # recent successful attempts
    p50_ms: float | None = None
    p95_ms: float | None = None
    tpot_samples: int = 0
    tpot_p50_ms: float | None = None  # milliseconds per output token
    recent_p50_ms: float | None = None  # median of the newest RECENT_SAMPLES latencies
    recent_tpot_p50_ms: float | None = None  # ... and times per output token
    requests: int = 0  # attempts in the window, failed ones included
    errors: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class _Recent:
    """Values from the last `window` seconds, at most `limit` of them."""

    def __init__(self, window: float, limit: int) -> None:
        self.window = window
        self.items: deque[tuple[float, float]] = deque(maxlen=limit)

    def add(self, now: float, value: float) -> None:
        self.items.append((now, value))

    def values(self, now: float) -> list[float]:
        while self.items and self.items[0][0] < now - self.window:
            self.items.popleft()
        return [value for _, value in self.items]


class _Counts:
    """Requests and errors in the last `window` seconds, counted in ten buckets."""

    def __init__(self, window: float) -> None:
        self.width = window / 10
        self.buckets: deque[list[float]] = deque()  # [bucket start, requests, errors]

    def add(self, now: float, ok: bool) -> None:
        start = now - now % self.width
        if not self.buckets or self.buckets[-1][0] != start:
            self.buckets.append([start, 0, 0])
        self.buckets[-1][1] += 1
        self.buckets[-1][2] += 0 if ok else 1

    def totals(self, now: float) -> tuple[int, int]:
        while self.buckets and self.buckets[0][0] <= now - 10 * self.width:
            self.buckets.popleft()
        return int(sum(b[1] for b in self.buckets)), int(sum(b[2] for b in self.buckets))


class _TargetLatency:
    def __init__(self, window: float, limit: int) -> None:
        self.latency = _Recent(window, limit)
        self.tpot = _Recent(window, limit)
        self.counts = _Counts(window)


class LatencyTracker:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = 300.0,
        max_samples: int = 256,
    ) -> None:
        self._clock = clock
        self._window = window_seconds
        self._limit = max_samples
        self._targets: dict[str, _TargetLatency] = {}

    def record(self, key: str, latency_ms: float, *, ok: bool) -> None:
        """One attempt: its latency (to the full answer, or to the first event of a stream)."""
        target, now = self._target(key), self._clock()
        target.counts.add(now, ok)
        if ok:
            target.latency.add(now, latency_ms)

    def record_generation(self, key: str, output_tokens: int | None, duration_ms: float) -> None:
        """Once the answer is complete and its usage known (streams: at the last event)."""
        if output_tokens:
            self._target(key).tpot.add(self._clock(), duration_ms / output_tokens)

    def stats(self, key: str) -> LatencyStats:
        target = self._targets.get(key)
        if target is None:
            return LatencyStats()
        now = self._clock()
        latencies, tpots = target.latency.values(now), target.tpot.values(now)
        requests, errors = target.counts.totals(now)
        return LatencyStats(
            samples=len(latencies),
            p50_ms=_percentile(sorted(latencies), 0.50),
            p95_ms=_percentile(sorted(latencies), 0.95),
            tpot_samples=len(tpots),
            tpot_p50_ms=_percentile(sorted(tpots), 0.50),
            recent_p50_ms=_percentile(sorted(latencies[-RECENT_SAMPLES:]), 0.50),
            recent_tpot_p50_ms=_percentile(sorted(tpots[-RECENT_SAMPLES:]), 0.50),
            requests=requests,
            errors=errors,
        )

    def _target(self, key: str) -> _TargetLatency:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _TargetLatency(self._window, self._limit)
        return target


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

"""Fixed latency buckets, so that percentiles come from summed rollup counts.

Bucket `i` counts values `v` (milliseconds) with `BOUNDS_MS[i-1] < v <= BOUNDS_MS[i]`;
bucket 0 everything up to the first bound, the last bucket everything above the last
bound. The bounds are roughly logarithmic: a percentile read from them is exact to within
its bucket, which is as precise as a rollup can be and enough to see a p99 move.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000,
    7_500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000,
)  # fmt: skip
BUCKETS = len(BOUNDS_MS) + 1  # the last one is open-ended


def bucket_of(ms: float) -> int:
    """The bucket a value falls in (negative values, which a clock step can produce, in 0)."""
    return bisect.bisect_left(BOUNDS_MS, ms)


def bucket_range(index: int) -> tuple[float, float]:
    """(lower, upper] of a bucket in ms; the last bucket's upper is infinity."""
    lower = 0.0 if index == 0 else BOUNDS_MS[index - 1]
    upper = BOUNDS_MS[index] if index < len(BOUNDS_MS) else math.inf
    return float(lower), float(upper)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of the values counted, interpolated linearly inside the
    bucket that holds the nearest-rank value; None when nothing was counted. In the
    open-ended last bucket the answer is its lower bound (a floor, said as such in docs)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_range(index)
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    raise AssertionError("unreachable: rank <= total")

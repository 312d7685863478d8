"""Fixed log-scale duration buckets: four per doubling, from 1 ms up, so a percentile read
from bucket counts is within 9 % of the true one, and buckets of any two days add up."""

from __future__ import annotations

import math

PER_DOUBLING = 4
OFFSET = 40  # bucket 0 holds stays under 2**-10 s (about 1 ms)
LAST = 200  # bucket 200 holds everything from about 2**40 s (35,000 years) on


def bucket(seconds: float) -> int:
    """The bucket a stay of `seconds` falls in."""
    if seconds <= 0:
        return 0
    return max(0, min(LAST, math.floor(math.log2(seconds) * PER_DOUBLING) + OFFSET + 1))


def lower(b: int) -> float:
    """The shortest stay bucket `b` holds (seconds)."""
    return 0.0 if b <= 0 else math.pow(2.0, (b - 1 - OFFSET) / PER_DOUBLING)


def middle(b: int) -> float:
    """The value a stay in bucket `b` is reported as: its geometric middle."""
    if b <= 0:
        return math.pow(2.0, -OFFSET / PER_DOUBLING) / 2
    return lower(b) * math.pow(2.0, 0.5 / PER_DOUBLING)


def percentile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of the stays counted per bucket; None if there are none."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            return middle(b)
    return middle(max(counts))

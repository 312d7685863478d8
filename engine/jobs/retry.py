"""Retry delays for transient job failures: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def exhausted(self, attempts: int, max_attempts: int | None = None) -> bool:
        return attempts >= (max_attempts or self.max_attempts)

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait before the attempt after `attempts` (1-based) failed ones."""
        # Full jitter (uniform in [0, backoff]) spreads retries of jobs that failed together.
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempts - 1)))

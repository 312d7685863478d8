"""How a failed job attempt is retried: how many attempts, and the backoff between them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"  # base, 2·base, 4·base, … up to the cap
    LINEAR = "linear"  # base, 2·base, 3·base, … up to the cap


@dataclass(frozen=True)
class RetryPolicy:
    """A job kind's retries. `jitter` draws each delay uniformly from [0, backoff] ("full
    jitter"), which spreads out the retries of jobs that failed together; without it the delay
    is the backoff itself."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 60.0
    backoff: Backoff = Backoff.EXPONENTIAL
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be 1 or more, not {self.max_attempts}")
        if self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError(f"need 0 <= base_s <= cap_s, not {self.base_s} and {self.cap_s}")
        object.__setattr__(self, "backoff", Backoff(self.backoff))

    def exhausted(self, attempts: int, max_attempts: int | None = None) -> bool:
        return attempts >= (max_attempts or self.max_attempts)

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait before the attempt after `attempts` (1-based) failed ones."""
        if self.backoff is Backoff.LINEAR:
            backoff = self.base_s * attempts
        else:
            backoff = self.base_s * 2 ** (attempts - 1)
        backoff = min(self.cap_s, backoff)
        return self.rng.uniform(0.0, backoff) if self.jitter else backoff

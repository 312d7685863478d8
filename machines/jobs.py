"""Job handlers: the effects the charts ask for, run by workers outside any transaction."""

from __future__ import annotations

import random

from signoff.engine import JobContext, JobKind, JobOutcome, TransientJobError


class ApprovalJob:
    """Simulates the original queue consumer: a transient failure now and then, else an output.

    The output is the run's `input.output` when given, else a uniform random float in [0, 1).
    """

    def __init__(self, failure_rate: float, rng: random.Random | None = None) -> None:
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        if self.rng.random() < self.failure_rate:
            raise TransientJobError(f"simulated queue failure on attempt {ctx.attempt}")
        given = ctx.input.get("output")
        output = float(given) if given is not None else self.rng.random()
        return JobOutcome("processed", {"output": output, "attempts": ctx.attempt})


def approval_job(failure_rate: float, rng: random.Random | None = None) -> JobKind:
    return JobKind("approval", ApprovalJob(failure_rate, rng), failure_event="failed")


class PurchaseOrderJob:
    """Checks a purchase order against the ledger (simulated): a transient failure now and
    then, else the order goes to review."""

    def __init__(self, failure_rate: float, rng: random.Random | None = None) -> None:
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        if self.rng.random() < self.failure_rate:
            raise TransientJobError(f"simulated ledger failure on attempt {ctx.attempt}")
        return JobOutcome("processed", {"attempts": ctx.attempt})


def purchase_order_job(failure_rate: float, rng: random.Random | None = None) -> JobKind:
    return JobKind("purchase_order", PurchaseOrderJob(failure_rate, rng), failure_event="failed")

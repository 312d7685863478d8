"""The `pay_expense` job: ask the payment service to pay the claim, idempotently by run id."""

from __future__ import annotations

import httpx

from signoff import (
    Backoff,
    JobContext,
    JobKind,
    JobOutcome,
    PermanentJobError,
    RetryPolicy,
    TransientJobError,
)


class PayExpense:
    """POSTs {run_id, amount, currency, payee} to `url` with the run id as Idempotency-Key, so
    a retried attempt never pays twice. A 5xx, a timeout or a dropped connection is transient
    (retried with backoff); any other refusal is final."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        claim = {
            "run_id": ctx.run_id,
            "amount": ctx.input["amount"],
            "currency": ctx.input.get("currency", "EUR"),
            "payee": ctx.input["payee"],
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(
                    self.url, json=claim, headers={"Idempotency-Key": ctx.run_id}
                )
        except httpx.TransportError as exc:
            raise TransientJobError(f"payment service unreachable: {exc!r}") from exc
        if response.status_code >= 500:
            raise TransientJobError(f"payment service answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentJobError(
                f"payment refused ({response.status_code}): {response.text[:200]}"
            )
        return JobOutcome("paid_out", {"payment_id": str(response.json()["payment_id"])})


def pay_expense(url: str) -> JobKind:
    return JobKind(
        "pay_expense",
        PayExpense(url),
        failure_event="payment_declined",
        retry=RetryPolicy(max_attempts=6, base_s=0.2, cap_s=5.0, backoff=Backoff.EXPONENTIAL),
        timeout_s=15.0,
    )

"""What encoding the run view once saves per transition (issue 13), measured on the real types.

Before: the view became builtins for the history row's JSON column, was encoded for the
response, and encoded again inside the history entry for the SSE frame. Now: it is encoded once,
and the entry embeds those bytes (`msgspec.Raw`). `.venv/bin/python -m bench.encode_once`
prints microseconds per transition for each, medians of 5 rounds of 20,000.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from signoff.engine.views import Change, EntryJson, HistoryEntry, RunView

ENC = msgspec.json.Encoder()
NOW = datetime.now(UTC)
VIEW = RunView(
    id="0193a7c2-7d2e-7c3a-8c1e-1f2e3d4c5b6a",
    definition="purchase_order",
    definition_version=1,
    version=7,
    ref_id="PO-1234",
    ref_type="order",
    input={"amount": 25000, "currency": "EUR"},
    state="review",
    configuration=["finance", "finance_partial", "legal", "legal_pending", "review"],
    lifecycle="waiting",
    context={
        "round": 1,
        "needed": {"legal": 1, "finance": 2},
        "decisions": [{"decision": "approve", "region": "finance", "actor": "fay", "round": 1}],
    },
    allowed_events=["approve", "reject", "pause", "cancel"],
    created_at=NOW,
    updated_at=NOW,
)
FIELDS = dict(
    seq=42,
    run_id=VIEW.id,
    at=NOW,
    actor="fay",
    event="approve",
    data={"region": "finance"},
    reason=None,
    business=Change(from_=["finance", "finance_pending"], to=["finance", "finance_partial"]),
    lifecycle=Change(from_=["waiting"], to=["waiting"]),
)


def before() -> None:
    row = ENC.encode(msgspec.to_builtins(VIEW))  # the history row's JSON column
    ENC.encode(VIEW)  # the response
    ENC.encode(HistoryEntry(**FIELDS, run=VIEW))  # the SSE frame's data
    del row


def after() -> None:
    body = ENC.encode(VIEW)  # the response and the history row's column
    ENC.encode(EntryJson(**FIELDS, run=msgspec.Raw(body)))  # the SSE frame's data


def per_call_us(fn: Callable[[], None], n: int = 20_000) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


if __name__ == "__main__":
    rounds: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(5):  # alternating
        rounds["before"].append(per_call_us(before))
        rounds["after"].append(per_call_us(after))
    for label, got in rounds.items():
        print(
            f"{label:7} {statistics.median(got):6.2f} us per transition",
            [round(x, 2) for x in got],
        )

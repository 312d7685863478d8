"""The template runs bench/seed.py copies: one per path shape, made by the real engine.

A Runtime runs in this process on the database to seed, with one embedded worker (the shipped
jobs never fail here), and takes each template along its path through the Dispatcher, as the
API would: the rows it writes are the engine's own, whatever their format is at the time.
Each template's ref_id is a token (`tplref07`) the copies replace with their own ref.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from signoff.engine import Settings
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.runtime import Runtime
from signoff.engine.storage.records import IdempotencyKey
from signoff.machines.registry import build_registry

# A chart document beside the shipped code charts: one review task due in two days.
DOCUMENT = """\
name: contract_review
description: Legal reviews a contract (a chart document, seeded by bench/seed.py).
signoff:
  kinds: {review: wait, signed: success, declined: failure}
  deciders: {review: legal}
  decisions: [approve, reject]
  tasks:
    review: {due: 2d}
states:
  draft:
    initial: true
    transitions:
      - {event: submit, target: review}
  review:
    transitions:
      - {event: approve, target: signed}
      - {event: reject, target: declined}
  signed: {final: true}
  declined: {final: true}
"""


@dataclass(frozen=True)
class Shape:
    """A path a run takes: its weight in the mix, its ref_type, whether it is live (waiting:
    its copies start within the last week, as live runs do), and its steps."""

    name: str
    weight: float
    ref_type: str
    live: bool
    steps: Callable[[Runtime, str], Awaitable[str]]


@dataclass(frozen=True)
class Template:
    shape: Shape
    run_id: str
    ref_token: str


async def _settled(rt: Runtime, run_id: str, version: int) -> None:
    """Wait for the worker to move the run past `version` (its job done)."""
    for _ in range(500):
        if (await rt.queries.get(run_id)).version > version:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError(f"run {run_id} stayed at version {version}")


async def _event(rt: Runtime, run_id: str, event: str, **kw: Any) -> int:
    return (await rt.dispatcher.dispatch(run_id, event, **kw)).version


async def _approval(rt: Runtime, ref: str, *, output: float = 0.9, **input: Any) -> str:
    made = await rt.dispatcher.create(
        "approval",
        actor="ops",
        input={"output": output, **input},
        ref_id=ref,
        ref_type="request",
        idem=IdempotencyKey(f"idem-{ref}", "ops", "POST /api/runs", f"hash-{ref}"),
    )
    await _settled(rt, made.run_id, await _event(rt, made.run_id, "process", actor="ops"))
    return made.run_id


async def approval_waiting(rt: Runtime, ref: str) -> str:
    return await _approval(rt, ref)


async def approval_waiting_timer(rt: Runtime, ref: str) -> str:
    return await _approval(rt, ref, approval_timeout_s=30 * 86400.0)


async def approval_approved(rt: Runtime, ref: str) -> str:
    run_id = await _approval(rt, ref)
    await _event(rt, run_id, "approve", actor="ann")
    return run_id


async def approval_rejected_approved(rt: Runtime, ref: str) -> str:
    run_id = await _approval(rt, ref)
    version = await _event(rt, run_id, "reject", actor="ann", reason="numbers missing")
    await _settled(rt, run_id, version)
    await _event(rt, run_id, "approve", actor="bob")
    return run_id


async def approval_failed(rt: Runtime, ref: str) -> str:
    return await _approval(rt, ref, output=0.1)  # not above the threshold: error


async def approval_cancelled(rt: Runtime, ref: str) -> str:
    run_id = await _approval(rt, ref)
    await _event(rt, run_id, "cancel", actor="ops", reason="withdrawn")
    return run_id


async def _order(rt: Runtime, ref: str, amount: float) -> str:
    made = await rt.dispatcher.create(
        "purchase_order", actor="ops", input={"amount": amount}, ref_id=ref, ref_type="order"
    )
    await _settled(rt, made.run_id, await _event(rt, made.run_id, "process", actor="ops"))
    return made.run_id


async def order_review(rt: Runtime, ref: str) -> str:
    return await _order(rt, ref, 500)


async def order_approved(rt: Runtime, ref: str) -> str:
    run_id = await _order(rt, ref, 500)
    await _event(rt, run_id, "approve", actor="lee", data={"region": "legal"})
    await _event(rt, run_id, "approve", actor="fay", data={"region": "finance"})
    return run_id


async def _contract(rt: Runtime, ref: str) -> str:
    made = await rt.dispatcher.create(
        "contract_review", actor="ops", ref_id=ref, ref_type="contract"
    )
    await _event(rt, made.run_id, "submit", actor="ops")
    return made.run_id


async def contract_review(rt: Runtime, ref: str) -> str:
    return await _contract(rt, ref)


async def contract_signed(rt: Runtime, ref: str) -> str:
    run_id = await _contract(rt, ref)
    await _event(rt, run_id, "approve", actor="lee")
    return run_id


# The mix: most runs finished long ago; waiting ones recent; `contract` (a ref_type), `error`
# (a state) and `cancelled` (a lifecycle) rare, for the filters on a rare value.
SHAPES = [
    Shape("approval approved", 0.40, "request", False, approval_approved),
    Shape("approval rejected, approved", 0.10, "request", False, approval_rejected_approved),
    Shape("approval waiting", 0.08, "request", True, approval_waiting),
    Shape("approval waiting, timer", 0.04, "request", True, approval_waiting_timer),
    Shape("approval failed", 0.004, "request", False, approval_failed),
    Shape("approval cancelled", 0.004, "request", False, approval_cancelled),
    Shape("order approved", 0.28, "order", False, order_approved),
    Shape("order in review", 0.08, "order", True, order_review),
    Shape("contract signed", 0.0015, "contract", False, contract_signed),
    Shape("contract in review", 0.0005, "contract", True, contract_review),
]


async def make_templates(url: str) -> list[Template]:
    """Run every shape once through the engine on `url` (migrated here if it is not yet)."""
    settings = Settings(
        database_url=url,
        failure_rate=0.0,
        workers=1,
        poll_interval_s=0.01,
        stats_rollup_s=3600.0,  # their counters stay pending: the seed copies them
        retry_base_s=0.005,
        retry_cap_s=0.02,
    )
    rt = Runtime(settings, build_registry(0.0))
    await rt.start()
    try:
        await rt.catalog.deploy(DOCUMENT, "yaml", "admin", utcnow())
        made = []
        for i, shape in enumerate(SHAPES):
            token = f"tplref{i:02d}"
            made.append(Template(shape, await shape.steps(rt, token), token))
        # Let the worker go quiet (no job left to claim) before the rows are read.
        await asyncio.sleep(0.2)
    finally:
        await rt.stop()
    return made

"""A realistic mix of runs through a real server, for the history size and resume figures:
approval runs (create, process, the job, approve), purchase orders (create, process, legal
and two finance approvals) and runs of a chart document with a task (create, move, claim,
approve). About five history entries per run."""

from __future__ import annotations

import asyncio
from typing import Any

from signoff.client import SignoffClient

TOKENS = ",".join(
    [
        "admin:admin:admin-secret",
        "otto:operator:o-secret",
        "lee:approver@legal:lee-secret",
        "fay:approver@finance:fay-secret",
        "finn:approver@finance:finn-secret",
        "ann:approver:ann-secret",
    ]
)
DOCUMENT = """name: expense_claim
signoff:
  kinds: {manager: wait, done: success}
  decisions: [approve]
  tasks:
    manager: {users: [ann], due: 3d}
states:
  draft:
    initial: true
    transitions:
      - {event: submit, target: manager}
  manager:
    transitions:
      - {event: approve, target: done}
  done: {final: true}
"""


def _input(i: int) -> dict[str, Any]:
    return {
        "output": 0.9,
        "amount": 25_000 + i,
        "currency": "EUR",
        "requester": f"employee-{i:06d}@example.com",
        "cost_center": f"CC-{i % 97:04d}",
        "description": "Laptops and docking stations for the new team members",
        "lines": [{"sku": f"SKU-{i % 13}", "qty": 2, "price": 1250.5}],
    }


async def _until(client: SignoffClient, run_id: str, state: str) -> None:
    for _ in range(2000):
        if (await client.get(run_id)).state == state:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{run_id} never reached {state}")


def client(url: str, who: str) -> SignoffClient:
    return SignoffClient(url, f"{who}-secret" if who != "otto" else "o-secret")


async def deploy(url: str) -> None:
    async with client(url, "admin") as admin:
        await admin.deploy(DOCUMENT, "yaml")


async def approval(url: str, i: int) -> str:
    async with client(url, "otto") as otto, client(url, "ann") as ann:
        run = await otto.create(
            "approval", input=_input(i), ref_type="purchase_order", ref_id=f"PO-{i:07d}"
        )
        await otto.process(run.id)
        await _until(otto, run.id, "waiting_for_approval")
        await ann.approve(run.id, reason="within budget")
        return run.id


async def purchase_order(url: str, i: int) -> str:
    async with client(url, "otto") as otto:
        run = await otto.create(
            "purchase_order", input=_input(i), ref_type="purchase_order", ref_id=f"PO-{i:07d}"
        )
        await otto.process(run.id)
        await _until(otto, run.id, "review")
    for who, region in (("fay", "finance"), ("lee", "legal"), ("finn", "finance")):
        async with client(url, who) as c:
            await c.approve(run.id, region=region)
    return run.id


async def document(url: str, i: int) -> str:
    async with client(url, "otto") as otto, client(url, "ann") as ann:
        run = await otto.create(
            "expense_claim", input=_input(i), ref_type="expense", ref_id=f"EX-{i:07d}"
        )
        await otto.send(run.id, "submit")
        await ann.claim(run.id)
        await ann.approve(run.id)
        return run.id


async def mix(url: str, n: int, concurrency: int = 8) -> None:
    """`n` runs, a third of each kind."""
    kinds = (approval, purchase_order, document)
    todo = iter(range(n))

    async def lane() -> None:
        for i in todo:
            await kinds[i % 3](url, i)

    await asyncio.gather(*(lane() for _ in range(concurrency)))

"""The `purchase_order` definition through a real server: parallel legal and finance review,
a 2-of-3 finance quorum on large orders, approvals by region and group, one veto rejects, the
same approver never counts twice, and refusals change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signoff.client import ApiError, SignoffClient
from signoff.engine.views import HistoryEntry
from tests.helpers import LiveServer, eventually, serve

TOKENS = ",".join(
    [
        "otto:operator:o-secret",
        "lee:approver@legal:lee-secret",
        "fay:approver@finance:fay-secret",
        "finn:approver@finance:finn-secret",
        "fran:approver@finance:fran-secret",
        "anna:approver:anna-secret",  # an approver of no group
        "both:approver@legal+approver@finance:both-secret",
    ]
)
REVIEW = ["finance", "finance_pending", "legal", "legal_pending", "review"]


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url, tokens=TOKENS) as server:
        yield server


def as_(live: LiveServer, who: str) -> SignoffClient:
    return SignoffClient(live.url, f"{who}-secret" if who != "otto" else "o-secret")


async def order_in_review(live: LiveServer, amount: float) -> str:
    async with as_(live, "otto") as otto:
        run = await otto.create("purchase_order", input={"amount": amount, "currency": "EUR"})
        await otto.process(run.id)

        async def in_review() -> bool:
            return (await otto.get(run.id)).state == "review"

        await eventually(in_review)
        return run.id


async def refused(live: LiveServer, who: str, run_id: str, status: int, **body: Any) -> str:
    """Send a decision that must be refused; check the run and its history did not change."""
    async with as_(live, "otto") as otto:
        before = (await otto.get(run_id), await otto.history(run_id))
        event = "reject" if "reason" in body and body.pop("veto", True) else "approve"
        async with as_(live, who) as client:
            with pytest.raises(ApiError) as caught:
                if event == "approve":
                    await client.approve(run_id, **body)
                else:
                    await client.reject(run_id, **body)
        assert caught.value.status == status, caught.value.problem
        assert caught.value.problem["status"] == status
        after = (await otto.get(run_id), await otto.history(run_id))
        assert after == before
        return str(caught.value.problem["detail"])


async def test_a_large_order_needs_legal_and_two_distinct_finance_approvers(
    live: LiveServer,
) -> None:
    run_id = await order_in_review(live, 25_000)
    async with as_(live, "otto") as otto:
        seen = await otto.get(run_id)
        assert seen.configuration == REVIEW and seen.lifecycle == "waiting"
        assert seen.context["needed"] == {"legal": 1, "finance": 2}

    async with as_(live, "fay") as fay:
        run = await fay.approve(run_id, region="finance", reason="budget ok")
    assert "finance_partial" in run.configuration and run.state == "review"

    # The same approver cannot count twice, not even in another region.
    detail = await refused(live, "fay", run_id, 409, region="finance")
    assert "fay already approved" in detail
    await refused(live, "both", run_id, 422, region="hr")  # no such region
    await refused(live, "lee", run_id, 403, region="finance")  # legal decides only in legal
    await refused(live, "anna", run_id, 403, region="legal")  # an approver of no group
    await refused(live, "lee", run_id, 422)  # no region named
    await refused(live, "otto", run_id, 403, region="legal")  # not an approver

    async with as_(live, "lee") as lee:
        run = await lee.approve(run_id, region="legal")
    assert run.state == "review" and "legal_approved" in run.configuration
    await refused(live, "lee", run_id, 409, region="legal")  # legal is final

    async with as_(live, "finn") as finn:
        run = await finn.approve(run_id, region="finance")
    assert run.state == "approved" and run.lifecycle == "completed"
    assert run.configuration == ["approved"]

    async with as_(live, "otto") as otto:
        history = await otto.history(run_id)
    decisions = [(e.actor, e.event, e.data.get("region")) for e in history if e.actor != "otto"]
    assert [d for d in decisions if d[1] == "approve"] == [
        ("fay", "approve", "finance"),
        ("lee", "approve", "legal"),
        ("finn", "approve", "finance"),
    ]
    assert [d["actor"] for d in run.context["decisions"]] == ["fay", "lee", "finn"]


async def test_a_small_order_needs_one_finance_approver(live: LiveServer) -> None:
    run_id = await order_in_review(live, 500)
    async with as_(live, "fran") as fran:
        run = await fran.approve(run_id, region="finance")
    assert "finance_approved" in run.configuration and "legal_pending" in run.configuration
    # Both regions are final only when legal approves too.
    async with as_(live, "both") as both:
        run = await both.approve(run_id, region="legal")
    assert run.state == "approved"


async def test_one_veto_in_either_region_sends_the_whole_order_back(live: LiveServer) -> None:
    run_id = await order_in_review(live, 25_000)
    async with as_(live, "fay") as fay:
        await fay.approve(run_id, region="finance")
    await refused(live, "lee", run_id, 422, region="legal", reason="  ")  # a veto needs a reason
    async with as_(live, "lee") as lee:
        run = await lee.reject(run_id, region="legal", reason="clause 7 is missing")
    assert run.state == "processing"

    async with as_(live, "otto") as otto:

        async def back_in_review() -> bool:
            return (await otto.get(run_id)).state == "review"

        await eventually(back_in_review)
        run = await otto.get(run_id)
    # A new round: nothing of the old one counts, so fay may approve again.
    assert run.configuration == REVIEW and run.context["round"] == 2
    async with as_(live, "fay") as fay:
        run = await fay.approve(run_id, region="finance")
    assert "finance_partial" in run.configuration
    async with as_(live, "finn") as finn:
        run = await finn.reject(run_id, region="finance", reason="over budget")
    assert run.state == "processing"


async def test_the_feed_and_the_diagram_show_both_regions(live: LiveServer) -> None:
    run_id = await order_in_review(live, 25_000)
    async with as_(live, "otto") as otto:
        seen: list[HistoryEntry] = []

        async def follow() -> None:
            async for entry in otto.follow(run_id=run_id):
                seen.append(entry)
                if entry.event == "approve":
                    return

        task = asyncio.create_task(follow())

        async def replayed() -> bool:  # create, process and processed
            return len(seen) >= 3

        await eventually(replayed)
        async with as_(live, "fay") as fay:
            await fay.approve(run_id, region="finance")
        await asyncio.wait_for(task, 10)
        assert seen[-1].data == {"region": "finance"}
        assert "finance_partial" in seen[-1].business.to

    http, headers = live.client, {"Authorization": "Bearer o-secret"}
    url = f"/api/runs/{run_id}/diagram"
    mermaid = (await http.get(url, params={"format": "mermaid"}, headers=headers)).text
    lit = {line.split(":::")[0].strip() for line in mermaid.splitlines() if ":::active" in line}
    assert {"legal_pending", "finance_partial"} <= lit
    assert "finance_pending" not in lit
    svg = (await http.get(url, headers=headers)).text
    for state, on in [("legal_pending", True), ("finance_partial", True), ("draft", False)]:
        node = svg.split(f"<title>{state}</title>", 1)[1].split("</g>", 1)[0]
        assert ('fill="turquoise"' in node) is on, state

    described = (await http.get("/api/definitions/purchase_order", headers=headers)).json()
    assert described["regions"] == [
        {"name": "legal", "group": "legal"},
        {"name": "finance", "group": "finance"},
    ]


async def test_an_approval_run_takes_no_region(live: LiveServer) -> None:
    async with as_(live, "otto") as otto:
        run = await otto.create("approval", input={"output": 0.9})
        await otto.process(run.id)

        async def waiting() -> bool:
            return (await otto.get(run.id)).state == "waiting_for_approval"

        await eventually(waiting)
    detail = await refused(live, "anna", run.id, 422, region="finance")
    assert "no approval regions" in detail
    async with as_(live, "anna") as anna:  # group or none, an approval run needs no region
        assert (await anna.approve(run.id)).state == "finished"

"""POST /api/events through a real server (SQLite and PostgreSQL): what it answers, that a
repeat answers the first, the client and the CLI, and refusals that record nothing and leave
the runs as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from signoff import SignoffClient
from tests.events_support import order_server
from tests.helpers import (
    TOKENS,
    LiveServer,
    assert_problem,
    auth,
    get_run,
    history,
    unchanged,
)
from tests.test_cli import signoff


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with order_server(database_url, tokens=TOKENS) as server:
        server.client.headers.update(auth("admin"))  # reads (unchanged, get_run) as an admin
        yield server


async def post(live: LiveServer, role: str = "operator", **body: Any) -> Any:
    return await live.client.post("/api/events", json=body, headers=auth(role))


async def placed(live: LiveServer, order: str) -> str:
    data = {"order_id": order, "amount": 3}
    answer = await post(live, id=f"p-{order}", name="order.placed", data=data,
                        ref_type="order", ref_id=order)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return str(answer.json()["started"][0]["run_id"])


async def test_an_event_starts_a_run_then_another_reaches_it(live: LiveServer) -> None:
    run_id = await placed(live, "o-1")
    run = await get_run(live, run_id)
    assert (run["state"], run["ref_id"], run["input"]) == (
        "awaiting_payment",
        "o-1",
        {"order_id": "o-1", "amount": 3},
    )
    body = {"id": "pay-1", "name": "payment.received", "ref_type": "order", "ref_id": "o-1"}
    first = await post(live, **body)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    answer = first.json()
    assert answer["unwanted"] is False and answer["started"] == []
    [delivery] = answer["delivered"]
    assert (delivery["run_id"], delivery["event"], delivery["outcome"]) == (run_id, "pay", "done")
    again = await post(live, **body)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == answer
    # One `pay` (the cooling-off delay may have shipped the run meanwhile: its own entry).
    entries = [e["event"] for e in await history(live, run_id)]
    assert entries in (["create", "pay"], ["create", "pay", "cooled"])


async def test_an_event_nobody_wants_is_answered_with_empty_lists(live: LiveServer) -> None:
    answer = await post(live, id="n-1", name="nothing.here", data={"a": 1})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["unwanted"], body["started"], body["delivered"]) == (True, [], [])
    assert (await post(live, id="n-1", name="nothing.here", data={"a": 1})).json() == body


async def test_a_run_that_refuses_is_listed_and_the_request_succeeds(live: LiveServer) -> None:
    run_id = await placed(live, "o-2")
    paused = await live.client.post(f"/api/runs/{run_id}/pause", headers=auth("operator"))
    assert paused.status_code == 200
    async with unchanged(live, run_id):
        answer = await post(live, id="x", name="payment.received", ref_type="order", ref_id="o-2")
    assert answer.status_code == 200
    [delivery] = answer.json()["delivered"]
    assert (delivery["outcome"], delivery["problem"]) == ("refused", "run-paused")


@pytest.mark.parametrize(
    ("role", "body", "statuses"),
    [
        ("operator", {"name": "payment.received"}, (400, 422)),  # no id
        ("operator", {"id": "r"}, (400, 422)),  # no name
        ("operator", {"id": "r", "name": "payment.received", "data": [1]}, (400, 422)),
        ("operator", {"id": "r", "name": "payment.received", "data": "x"}, (400, 422)),
        ("operator", {"id": "r", "name": "payment.received", "extra": 1}, (400, 422)),
        ("operator", {"id": "r", "name": "bad name"}, (400, 422)),
        ("operator", {"id": "", "name": "payment.received"}, (400, 422)),
        ("operator", {"id": "r", "name": "payment.received", "data": {"x": "y" * 40_000}},
         (413, 422)),
        ("viewer", {"id": "r", "name": "payment.received"}, (403,)),
        ("approver", {"id": "r", "name": "payment.received"}, (403,)),
        ("bad", {"id": "r", "name": "payment.received"}, (401,)),
    ],
)  # fmt: skip
async def test_refusals_record_nothing_and_change_no_run(
    live: LiveServer, role: str, body: dict[str, Any], statuses: tuple[int, ...]
) -> None:
    run_id = await placed(live, "o-3")
    body = {**body, "ref_type": "order", "ref_id": "o-3"}
    async with unchanged(live, run_id):
        assert_problem(await post(live, role, **body), *statuses)
    # Nothing was recorded under the id: sent properly, it is a first, and it is delivered.
    ok = await post(live, id="r", name="payment.received", ref_type="order", ref_id="o-3")
    assert "idempotent-replayed" not in ok.headers
    assert ok.json()["delivered"][0]["outcome"] == "done"


async def test_a_reused_id_for_another_event_is_refused(live: LiveServer) -> None:
    run_id = await placed(live, "o-4")
    async with unchanged(live, run_id):
        other = await post(live, id="p-o-4", name="order.placed", data={"order_id": "o-5"})
        body = assert_problem(other, 422)
    assert body["type"].endswith("idempotency-mismatch")


async def test_the_client_and_the_cli_send_events(live: LiveServer) -> None:
    async with SignoffClient(live.url, "o-secret") as client:
        record = await client.send_event(
            "order.placed", id="c-1", data={"order_id": "o-6", "amount": 1},
            ref_type="order", ref_id="o-6",
        )  # fmt: skip
        [start] = record.started
        assert start.outcome == "done" and start.run_id is not None
        done = await signoff(
            live.url, "events", "send", "payment.matched", "--data", '{"order_id": "o-6"}',
            "--id", "c-2", "--token", "o-secret",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert '"outcome": "done"' in done.stdout and start.run_id in done.stdout
        entries = await client.history(start.run_id)
        assert [(e.event, e.actor) for e in entries][:2] == [("create", "otto"), ("pay", "otto")]
        bad = await signoff(live.url, "events", "send", "x", "--data", "[1]", "--token", "o-secret")
        assert bad.returncode == 2 and "JSON object" in bad.stderr

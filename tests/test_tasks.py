"""Human tasks through a real server, on SQLite and PostgreSQL: the inbox holds only what the
caller may decide now; claiming, releasing, reassigning and delegating; bulk decisions; typed
decision data; refusals change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers import LiveServer, assert_problem
from tests.tasks_support import (
    PANELISTS,
    call,
    inbox,
    new_leave,
    people_server,
    run_ids,
    unchanged,
)


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with people_server(database_url, separation_of_duties=True) as server:
        yield server


async def test_the_inbox_holds_what_each_person_may_decide_now(live: LiveServer) -> None:
    first = await new_leave(live, ref_type="employee", ref_id="e-1")
    second = await new_leave(live, ref_type="employee", ref_id="e-2")
    own = await new_leave(live, who="mop")  # mop may not approve what mop asked for
    mia = await inbox(live, "mia")
    assert set(run_ids(mia)) == {first["id"], second["id"], own["id"]}
    assert mia["counts"]["total"] == 3 and mia["counts"]["by_definition"] == {"leave": 3}
    task = mia["items"][0]
    assert task["state"] == "manager_review" and task["due_at"] is not None
    assert set(run_ids(await inbox(live, "mop"))) == {first["id"], second["id"]}
    for nobody in ("hal", "ann", "dora", "val", "olga"):  # not offered, or not an approver
        assert (await inbox(live, nobody))["counts"]["total"] == 0, nobody
    assert (await inbox(live, "admin"))["counts"]["total"] == 3  # every open task
    assert run_ids(await inbox(live, "mia", ref_id="e-2")) == [second["id"]]
    assert run_ids(await inbox(live, "mia", definition="panel")) == []
    assert (await inbox(live, "mia", due_before="2999-01-01T00:00:00Z"))["counts"]["total"] == 3
    assert (await inbox(live, "mia", due_before="2000-01-01T00:00:00"))["counts"]["total"] == 0
    # Oldest first by age; soonest due first by default (all due two days after they opened).
    assert run_ids(await inbox(live, "mia", sort="age")) == [first["id"], second["id"], own["id"]]
    # Once decided, the task moves on to HR's inbox with the run.
    approved = await call(live, "mia", "POST", f"/api/runs/{first['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert first["id"] not in run_ids(await inbox(live, "mia"))
    assert run_ids(await inbox(live, "hal")) == [first["id"]]


async def test_a_quorum_member_who_decided_leaves_the_inbox(live: LiveServer) -> None:
    created = await call(live, "olga", "POST", "/api/runs", json={"definition": "panel"})
    run_id = created.json()["id"]
    for p in PANELISTS:
        assert run_ids(await inbox(live, p)) == [run_id]
    voted = await call(live, "pat", "POST", f"/api/runs/{run_id}/approve")
    assert voted.json()["state"] == "review"  # one of two
    assert run_ids(await inbox(live, "pat")) == []  # counted already
    assert run_ids(await inbox(live, "pia")) == [run_id]
    view = (await call(live, "admin", "GET", f"/api/runs/{run_id}")).json()
    assert view["tasks"][0]["voters"] == ["pat"]


async def test_claiming_gives_the_decision_to_the_claimer(live: LiveServer) -> None:
    run = await new_leave(live)
    path = f"/api/runs/{run['id']}"
    claimed = await call(live, "mia", "POST", f"{path}/tasks/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["tasks"][0]["assignee"] == "mia"
    assert run["id"] not in run_ids(await inbox(live, "max"))
    assert run_ids(await inbox(live, "mia")) == [run["id"]]
    async with unchanged(live, run["id"]):
        body = assert_problem(await call(live, "max", "POST", f"{path}/approve"), 409)
        assert body["type"].endswith(":task-claimed") and "mia" in body["detail"]
        again = await call(live, "max", "POST", f"{path}/tasks/claim")
        assert assert_problem(again, 409)["type"].endswith(":task-claimed")
        # Only its claimer (or an operator) releases it; only approvers claim.
        assert_problem(await call(live, "max", "POST", f"{path}/tasks/release"), 409)
        assert_problem(await call(live, "val", "POST", f"{path}/tasks/claim"), 403)
        assert_problem(await call(live, "ann", "POST", f"{path}/tasks/claim"), 409)
    released = await call(live, "mia", "POST", f"{path}/tasks/release")
    assert released.json()["tasks"][0]["assignee"] is None
    assert run["id"] in run_ids(await inbox(live, "max"))
    events = [
        e["event"] for e in (await call(live, "olga", "GET", f"{path}/history")).json()["items"]
    ]
    assert events == ["create", "task.claim", "task.release"]


async def test_reassigning_and_delegating_are_recorded(live: LiveServer) -> None:
    run = await new_leave(live, who="mop")
    path = f"/api/runs/{run['id']}"
    async with unchanged(live, run["id"]):
        # Only operators reassign; never to someone who could not decide it.
        assert_problem(
            await call(live, "mia", "POST", f"{path}/tasks/reassign", json={"to": "max"}), 403
        )
        for to in ("ann", "val", "nobody", "mop"):  # not offered, no approver, unknown, creator
            refused = await call(live, "olga", "POST", f"{path}/tasks/reassign", json={"to": to})
            assert_problem(refused, 422)
        assert_problem(await call(live, "olga", "POST", f"{path}/tasks/reassign"), 422)
        assert_problem(
            await call(live, "olga", "POST", f"{path}/tasks/reassign", json={"to": 3}), 400, 422
        )
        # Only the assignee delegates.
        assert_problem(
            await call(live, "mia", "POST", f"{path}/tasks/delegate", json={"to": "max"}), 403
        )
    moved = await call(live, "olga", "POST", f"{path}/tasks/reassign", json={"to": "mia"})
    assert moved.json()["tasks"][0]["assignee"] == "mia"
    handed = await call(live, "mia", "POST", f"{path}/tasks/delegate", json={"to": "max"})
    assert handed.json()["tasks"][0] == handed.json()["tasks"][0] | {
        "assignee": "max",
        "acting_for": "mia",
    }
    decided = await call(live, "max", "POST", f"{path}/approve")
    assert decided.status_code == 200, decided.text
    past = (await call(live, "olga", "GET", f"{path}/history")).json()["items"]
    assert [e["event"] for e in past] == ["create", "task.reassign", "task.delegate", "approve"]
    assert past[1]["actor"] == "olga" and past[1]["data"] == {
        "slot": "manager_review",
        "from": None,
        "to": "mia",
    }
    assert past[3]["actor"] == "max" and past[3]["data"] == {"acting_for": "mia"}


async def test_decision_data_is_typed(live: LiveServer) -> None:
    run = await new_leave(live)
    path = f"/api/runs/{run['id']}/events"
    async with unchanged(live, run["id"]):
        for data, where in (({"days": 0}, "$.days"), ({"days": "3"}, "$.days"), ({"x": 1}, "$")):
            sent = await call(live, "mia", "POST", path, json={"event": "approve", "data": data})
            body = assert_problem(sent, 422)
            assert f"(at {where})" in body["detail"], body["detail"]
    sent = await call(live, "mia", "POST", path, json={"event": "approve", "data": {"days": 3}})
    assert sent.status_code == 200 and sent.json()["state"] == "hr_review"


async def test_a_bulk_decision_reports_each_run(live: LiveServer) -> None:
    runs = [await new_leave(live) for _ in range(3)]
    await call(live, "max", "POST", f"/api/runs/{runs[1]['id']}/tasks/claim")
    items = [{"run_id": r["id"]} for r in runs] + [{"run_id": "no-such-run"}]
    async with unchanged(live, runs[1]["id"], inboxes=False):
        answer = await call(
            live, "mia", "POST", "/api/tasks/decisions",
            json={"event": "reject", "reason": "budget freeze", "runs": items},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    results = answer.json()
    assert (results["decided"], results["refused"]) == (2, 2)
    statuses = [(r["run_id"], r["status"]) for r in results["results"]]
    assert statuses == [
        (runs[0]["id"], 200), (runs[1]["id"], 409), (runs[2]["id"], 200), ("no-such-run", 404)
    ]  # fmt: skip
    assert results["results"][1]["problem"]["type"].endswith(":task-claimed")
    for r in (runs[0], runs[2]):
        view = (await call(live, "olga", "GET", f"/api/runs/{r['id']}")).json()
        assert view["state"] == "refused"
    bad = await call(
        live, "mia", "POST", "/api/tasks/decisions", json={"event": "approve", "runs": []}
    )
    assert_problem(bad, 400, 422)


async def test_bad_inbox_queries_are_refused(live: LiveServer) -> None:
    for params in (
        {"limit": 0}, {"sort": "price"}, {"due_before": "yesterday"}, {"offset": -1},
        {"due_before": "0.5"}, {"due_before": "2026-02-30T00:00:00Z"},
    ):  # fmt: skip
        assert_problem(await call(live, "mia", "GET", "/api/tasks", params=params), 400, 422)

""" "Why can't I?" and dry runs through a real server, on SQLite and PostgreSQL: every event with
whether the caller may send it now and each reason if not; a dry run answers what an event
would do and commits nothing; both agree with what sending the event does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import LiveServer, assert_problem
from tests.tasks_support import call, new_leave, people_server, unchanged


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with people_server(database_url, separation_of_duties=True) as server:
        yield server


async def permissions(live: LiveServer, who: str, run_id: str) -> dict[str, dict[str, Any]]:
    answer = await call(live, who, "GET", f"/api/runs/{run_id}/permissions")
    assert answer.status_code == 200, answer.text
    assert answer.json()["actor"] == who
    return {p["event"]: p for p in answer.json()["events"]}


def codes(permission: dict[str, Any]) -> list[str]:
    return [r["code"] for r in permission["reasons"]]


async def test_each_reason_is_named(live: LiveServer) -> None:
    run = await new_leave(live, who="mop")
    mia = await permissions(live, "mia", run["id"])
    assert mia["approve"]["allowed"] and mia["approve"]["reasons"] == []
    assert mia["reject"]["allowed"] and "reason" in mia["reject"]["needs_data"]
    assert not mia["appeal"]["allowed"] and codes(mia["appeal"]) == ["role", "state"]
    assert mia["task.claim"]["allowed"] and not mia["task.release"]["allowed"]
    assert codes((await permissions(live, "ann", run["id"]))["approve"]) == ["group"]
    assert codes((await permissions(live, "val", run["id"]))["approve"]) == ["role", "group"]
    assert codes((await permissions(live, "mop", run["id"]))["approve"]) == ["separation_of_duties"]
    olga = await permissions(live, "olga", run["id"])
    assert olga["pause"]["allowed"] and codes(olga["approve"]) == ["role", "group"]
    await call(live, "mia", "POST", f"/api/runs/{run['id']}/tasks/claim")
    max_ = await permissions(live, "max", run["id"])
    assert (
        codes(max_["approve"]) == ["claimed"] and "mia" in max_["approve"]["reasons"][0]["message"]
    )
    assert codes(max_["task.claim"]) == ["claimed"]
    assert (await permissions(live, "admin", run["id"]))["approve"]["allowed"]  # admins may
    # What the answer says is what sending does.
    refused = await call(live, "max", "POST", f"/api/runs/{run['id']}/approve")
    assert_problem(refused, 409)
    await call(live, "olga", "POST", f"/api/runs/{run['id']}/pause")
    paused = await permissions(live, "mia", run["id"])
    assert codes(paused["approve"]) == ["lifecycle"] and paused["resume"]["allowed"] is False


async def test_counted_and_false_guards(live: LiveServer) -> None:
    body = {"definition": "panel", "input": {"urgent": False}}
    run = (await call(live, "olga", "POST", "/api/runs", json=body)).json()
    await call(live, "pat", "POST", f"/api/runs/{run['id']}/approve")
    assert codes((await permissions(live, "pat", run["id"]))["approve"]) == ["counted"]
    assert (await permissions(live, "pia", run["id"]))["approve"]["allowed"]
    close = (await permissions(live, "olga", run["id"]))["close"]
    assert codes(close) == ["guard"] and not close["allowed"]  # not urgent
    await call(live, "pia", "POST", f"/api/runs/{run['id']}/approve")  # accepted now


async def log_of(live: LiveServer, hook: str) -> list[dict[str, Any]]:
    found = await call(live, "admin", "GET", f"/api/webhooks/{hook}/deliveries")
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_a_dry_run_answers_and_commits_nothing(live: LiveServer) -> None:
    # Deliveries to a port nobody listens on stay in the subscription's log, retried: what a
    # transition wrote for it is there to count. A dry run's writes roll back with it.
    hook = await call(
        live, "admin", "POST", "/api/webhooks", json={"url": "http://127.0.0.1:9/never"}
    )
    hook_id = hook.json()["id"]
    run = await new_leave(live)
    written = len(await log_of(live, hook_id))
    assert written == 2  # the create's transition and its task.created
    path = f"/api/runs/{run['id']}/events?dry_run=true"
    async with unchanged(live, run["id"]):
        tried = await call(
            live, "mia", "POST", path, json={"event": "approve", "data": {"days": 2}}
        )
        assert tried.status_code == 200, tried.text
        answer = tried.json()
        assert answer["dry_run"] is True
        assert answer["run"]["state"] == "hr_review"
        assert answer["run"]["version"] == run["version"] + 1
        assert answer["notifications"] == ["transition", "task.created", "task.decided"]
        assert answer["jobs"] == []
        # A refusal is the real one.
        body = assert_problem(await call(live, "ann", "POST", path, json={"event": "approve"}), 403)
        assert body["type"].endswith(":task-forbidden")
        assert_problem(
            await call(live, "mia", "POST", path, json={"event": "approve", "data": {"days": 0}}),
            422,
        )
    assert len(await log_of(live, hook_id)) == written  # no delivery for what rolled back
    real = await call(live, "mia", "POST", f"/api/runs/{run['id']}/approve")
    assert len(await log_of(live, hook_id)) == written + 3
    assert real.json()["state"] == answer["run"]["state"]
    assert real.json()["tasks"][0]["candidates"] == answer["run"]["tasks"][0]["candidates"]


async def test_permissions_of_an_unknown_run_is_404(live: LiveServer) -> None:
    assert_problem(await call(live, "mia", "GET", "/api/runs/nope/permissions"), 404)

"""Bulk actions through a real server (SQLite and PostgreSQL): a dry run counts and changes
nothing; each action goes run by run, each its own transaction; a run that changed after it was
matched is skipped with the reason, never forced; a repeat with the key does nothing twice and
finishes what failed; bad filters are refused with nothing changed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from signoff.engine import StorageUnavailableError
from signoff.engine.dispatch.outcome import Outcome
from tests.helpers import (
    TOKENS,
    LiveServer,
    all_runs,
    assert_problem,
    auth,
    eventually,
    get_run,
    history,
    serve,
)
from tests.test_versions import V1, V2, registry

Json = dict[str, Any]


async def bulk(
    live: LiveServer, body: Json, key: str | None = None, **headers: str
) -> tuple[httpx.Response, list[Json]]:
    """POST /api/runs/bulk; the NDJSON lines (or the dry run's answer) decoded."""
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await live.client.post("/api/runs/bulk", json=body, headers=headers)
    if response.headers["content-type"].startswith("application/x-ndjson"):
        return response, [json.loads(line) for line in response.text.splitlines()]
    return response, []


async def runs_of(live: LiveServer, ref_type: str, count: int, output: float = 0.9) -> list[str]:
    """`count` approval runs of `ref_type`, each brought to its state after `process`."""
    ids = []
    for i in range(count):
        body = {"definition": "approval", "input": {"output": output}}
        made = await live.client.post(
            "/api/runs", json={**body, "ref_type": ref_type, "ref_id": f"{ref_type}-{i}"}
        )
        ids.append(made.json()["id"])
        await live.client.post(f"/api/runs/{ids[-1]}/process")
    settled = "waiting_for_approval" if output > 0.25 else "error"

    async def there() -> bool:
        return all([(await get_run(live, r))["state"] == settled for r in ids])

    await eventually(there)
    return ids


def results(lines: list[Json]) -> dict[str, Json]:
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "summary"
    return {line["run_id"]: line for line in lines[1:-1]}


async def test_a_dry_run_counts_the_matching_runs_and_changes_nothing(
    live_server: LiveServer,
) -> None:
    live = live_server
    batch = await runs_of(live, "batch", 3)
    await runs_of(live, "other", 1)
    before = await all_runs(live)
    body = {"action": "cancel", "filter": {"ref_type": "batch"}, "dry_run": True}
    response, _ = await bulk(live, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "dry_run": True, "action": "cancel", "matched": 3, "run_ids": batch,
    }  # fmt: skip
    narrower = {"ref_type": "batch", "ref_id": "batch-1", "lifecycle": "waiting"}
    response, _ = await bulk(live, {**body, "filter": narrower})
    assert response.json()["run_ids"] == [batch[1]]
    assert await all_runs(live) == before


async def test_pause_resume_cancel_retry_and_replay_by_filter(live_server: LiveServer) -> None:
    live = live_server
    waiting = await runs_of(live, "w", 2)
    errored = await runs_of(live, "e", 2, output=0.1)

    response, lines = await bulk(live, {"action": "pause", "filter": {"ref_type": "w"}})
    assert response.status_code == 200
    assert lines[0] == {"type": "start", "action": "pause", "matched": 2, "repeat": False}
    assert lines[-1] == {"type": "summary", "done": 2, "skipped": 0, "failed": 0}
    assert [r["outcome"] for r in results(lines).values()] == ["done", "done"]
    for run_id in waiting:
        assert (await get_run(live, run_id))["lifecycle"] == "paused"

    # Resume applies to paused runs only: the others are skipped with the refusal's type.
    _, lines = await bulk(live, {"action": "resume", "filter": {"definition": "approval"}})
    by_run = results(lines)
    assert {r: by_run[r]["outcome"] for r in waiting} == {r: "done" for r in waiting}
    for run_id in errored:
        assert by_run[run_id]["outcome"] == "skipped"
        assert by_run[run_id]["problem"]["type"] == "urn:signoff:problem:event-not-allowed"
        assert by_run[run_id]["reason"]

    _, lines = await bulk(live, {"action": "retry", "filter": {"state": "error"}})
    assert set(results(lines)) == set(errored)
    assert all(r["outcome"] == "done" for r in results(lines).values())
    assert "retry" in [e["event"] for e in await history(live, errored[0])]

    _, lines = await bulk(live, {"action": "replay", "filter": {"ref_type": "w"}})
    replays = {r: line["new_run_id"] for r, line in results(lines).items()}
    for original, new in replays.items():
        assert (await get_run(live, new))["replay_of"] == original
        assert (await get_run(live, original))["replays"] == [new]

    cancel = {"action": "cancel", "filter": {"ref_type": "w"}, "reason": "duplicates"}
    _, lines = await bulk(live, cancel)
    assert lines[-1]["done"] == 4  # the two and their replays, which share their ref
    last = (await history(live, waiting[0]))[-1]
    assert (last["event"], last["reason"]) == ("cancel", "duplicates")
    assert (await get_run(live, waiting[0]))["lifecycle"] == "cancelled"


async def test_a_run_changed_after_it_was_matched_is_skipped_not_forced(
    live_server: LiveServer,
) -> None:
    live = live_server
    first, second = await runs_of(live, "race", 2)
    dispatcher = live.runtime.dispatcher
    real = dispatcher.dispatch

    async def someone_approves_the_second_first(run_id: str, *a: Any, **kw: Any) -> Outcome:
        # Between the match and the action on the second run, someone else decides it.
        if run_id == second and kw.get("if_match"):
            approved = await live.client.post(f"/api/runs/{second}/approve")
            assert approved.status_code == 200
        return await real(run_id, *a, **kw)

    dispatcher.dispatch = someone_approves_the_second_first  # type: ignore[method-assign]
    try:
        _, lines = await bulk(live, {"action": "cancel", "filter": {"ref_type": "race"}})
    finally:
        dispatcher.dispatch = real  # type: ignore[method-assign]
    by_run = results(lines)
    assert by_run[first]["outcome"] == "done"
    skipped = by_run[second]
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == "changed meanwhile: matched at version 3, now 4"
    assert skipped["problem"]["type"] == "urn:signoff:problem:precondition-failed"
    moved = await get_run(live, second)
    assert (moved["state"], moved["lifecycle"]) == ("finished", "completed")  # not cancelled
    assert [e["event"] for e in await history(live, second)][-1] == "approve"


async def test_a_repeat_with_the_key_does_nothing_twice_and_finishes_what_failed(
    live_server: LiveServer,
) -> None:
    live = live_server
    a, b, c = await runs_of(live, "k", 3)
    await live.client.post(f"/api/runs/{c}/pause")  # pausing it again is refused: a skip
    dispatcher = live.runtime.dispatcher
    real = dispatcher.dispatch

    async def down(run_id: str, *args: Any, **kw: Any) -> Outcome:
        if run_id == b:  # the database fails on this run, once
            raise StorageUnavailableError()
        return await real(run_id, *args, **kw)

    dispatcher.dispatch = down  # type: ignore[method-assign]
    body = {"action": "pause", "filter": {"ref_type": "k"}}
    try:
        _, lines = await bulk(live, body, key="pause-k")
    finally:
        dispatcher.dispatch = real  # type: ignore[method-assign]
    outcomes = {r: line["outcome"] for r, line in results(lines).items()}
    assert outcomes == {a: "done", b: "failed", c: "skipped"}
    assert results(lines)[b]["problem"]["type"] == "urn:signoff:problem:storage-unavailable"
    await live.client.post(f"/api/runs/{c}/resume")  # c moves on: its skip stays as it was
    stays = (await history(live, a), await history(live, c))
    late = (await runs_of(live, "k", 1))[0]  # matches now, but not the stored plan

    again, repeat = await bulk(live, body, key="pause-k")
    assert again.headers["idempotent-replayed"] == "true"
    assert repeat[0] == {"type": "start", "action": "pause", "matched": 3, "repeat": True}
    assert results(repeat)[a] == results(lines)[a]  # the stored answer: paused once
    assert results(repeat)[c] == results(lines)[c]  # the same skip, with its reason
    assert results(repeat)[b]["outcome"] == "done"  # finished now
    assert late not in results(repeat)
    assert (await history(live, a), await history(live, c)) == stays
    assert (await get_run(live, late))["lifecycle"] == "waiting"
    assert (await get_run(live, c))["lifecycle"] == "waiting"  # resumed, and not paused again

    _, once_more = await bulk(live, body, key="pause-k")
    assert results(once_more) == results(repeat)
    assert [e["event"] for e in await history(live, b)].count("pause") == 1
    # The key names this request: another body with it is refused, nothing done.
    other, _ = await bulk(live, {**body, "action": "cancel"}, key="pause-k")
    assert assert_problem(other, 422)["type"] == "urn:signoff:problem:idempotency-mismatch"
    assert (await get_run(live, a))["lifecycle"] == "paused"


async def test_migrate_moves_matching_unfinished_runs_and_needs_an_admin(
    database_url: str,
) -> None:
    async with serve(database_url, registry=registry(V1)) as live:
        old = [(await live.client.post("/api/runs", json={"definition": "approval"})).json()["id"]]
        old.append(
            (await live.client.post("/api/runs", json={"definition": "approval"})).json()["id"]
        )
        await live.client.post(f"/api/runs/{old[1]}/cancel")  # finished: stays on v1
    async with serve(database_url, registry=registry(V1, V2), tokens=TOKENS) as live:
        body = {"action": "migrate", "filter": {"definition": "approval"}, "to_version": 2}
        before = await all_runs_as_admin(live)
        refused, _ = await bulk(live, body, **auth("operator"))
        assert "admin" in assert_problem(refused, 403)["detail"]
        assert await all_runs_as_admin(live) == before
        preview, _ = await bulk(live, {**body, "dry_run": True}, **auth("admin"))
        assert preview.json()["run_ids"] == [old[0]]
        _, lines = await bulk(live, body, **auth("admin"))
        assert results(lines)[old[0]]["outcome"] == "done"
        views = {r["id"]: r for r in await all_runs_as_admin(live)}
        assert (views[old[0]]["definition_version"], views[old[1]]["definition_version"]) == (2, 1)


async def all_runs_as_admin(live: LiveServer) -> list[Json]:
    response = await live.client.get("/api/runs", headers=auth("admin"))
    return list(response.json()["items"])


BAD_BODIES = [
    ({"action": "explode", "filter": {"definition": "approval"}}, 400),
    ({"action": "cancel", "filter": {"created_before": "yesterday"}}, 400),
    ({"action": "cancel", "filter": {"created_before": "2026-02-30T00:00:00Z"}}, 400),
    ({"action": "cancel", "filter": {"created_before": "2026-01-01T00:00:00"}}, 400),  # no zone
    ({"action": "cancel", "filter": {"lifecycle": "sleeping"}}, 400),
    ({"action": "cancel", "filter": {"colour": "red"}}, 400),
    ({"action": "cancel", "filter": {}}, 422),
    ({"action": "cancel"}, 400),
    ({"action": "cancel", "filter": {"definition": "approval"}, "to_version": 2}, 422),
    ({"action": "pause", "filter": {"definition": "approval"}, "same_version": True}, 422),
    ({"action": "migrate", "filter": {"state": "x"}, "to_version": 2}, 422),
    ({"action": "migrate", "filter": {"definition": "approval"}}, 422),
    ({"action": "migrate", "filter": {"definition": "approval"}, "to_version": 9}, 422),
    ({"action": "migrate", "filter": {"definition": "nope"}, "to_version": 2}, 422),
    (
        {
            "action": "cancel",
            "filter": {
                "created_after": "2026-01-02T00:00:00Z",
                "created_before": "2026-01-01T00:00:00Z",
            },
        },
        422,
    ),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
async def test_bad_requests_are_refused_and_change_nothing(
    live_server: LiveServer, body: Json, status: int
) -> None:
    live = live_server
    await runs_of(live, "keep", 1)
    before = await all_runs(live)
    for dry_run in (False, True):
        sent = {**body, "dry_run": True} if dry_run else body
        assert_problem((await bulk(live, sent))[0], status)
    assert await all_runs(live) == before

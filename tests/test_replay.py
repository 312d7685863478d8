"""Replay through a real server (SQLite and PostgreSQL): a new run with the original's
definition, input and ref, linked both ways, on the newest version or the original's, safe to
repeat with a key; refusals change nothing."""

from __future__ import annotations

from typing import Any

from signoff.client import SignoffClient
from tests.helpers import (
    TOKENS,
    LiveServer,
    all_runs,
    assert_problem,
    auth,
    get_run,
    history,
    serve,
    unchanged,
    waiting_run,
)
from tests.test_documents_api import deploy, document
from tests.test_versions import V1, V2, registry


async def _replay(live: LiveServer, run_id: str, **kw: Any) -> Any:
    return await live.client.post(f"/api/runs/{run_id}/replay", **kw)


async def test_a_replay_copies_input_and_ref_and_is_linked_both_ways(
    live_server: LiveServer,
) -> None:
    live = live_server
    async with SignoffClient(live.url) as client:
        original = await waiting_run(client, ref_id="INV-7", ref_type="invoice")
    first = await _replay(live, original)
    assert first.status_code == 201, first.text
    new = first.json()
    assert first.headers["location"] == f"/api/runs/{new['id']}"
    assert new["id"] != original and new["replay_of"] == original
    assert (new["definition"], new["input"]) == ("approval", {"output": 0.9})
    assert (new["ref_id"], new["ref_type"]) == ("INV-7", "invoice")
    assert (new["state"], new["version"]) == ("unprocessed", 1)  # a fresh start
    assert [e["event"] for e in await history(live, new["id"])] == ["create"]
    second = (await _replay(live, original)).json()

    before = await get_run(live, original)
    assert before["replays"] == [second["id"], new["id"]]  # newest first
    assert before["state"] == "waiting_for_approval" and before["replay_of"] is None
    assert (await get_run(live, new["id"]))["replay_of"] == original
    assert (await get_run(live, new["id"]))["replays"] == []
    # The link is in the view the feed and history carry too.
    assert (await history(live, new["id"]))[0]["run"]["replay_of"] == original

    async with SignoffClient(live.url) as client:  # the client, and a replay of a replay
        again = await client.replay(new["id"])
        assert again.replay_of == new["id"] and again.input == {"output": 0.9}
        assert (await client.get(new["id"])).replays == [again.id]


async def test_a_replay_takes_the_newest_version_or_with_same_version_the_originals(
    database_url: str,
) -> None:
    async with serve(database_url, registry=registry(V1)) as live:
        original = (await live.client.post("/api/runs", json={"definition": "approval"})).json()
    async with serve(database_url, registry=registry(V1, V2)) as live:
        newest = await _replay(live, original["id"])
        assert newest.json()["definition_version"] == 2, newest.text
        same = await _replay(live, original["id"], params={"same_version": "true"})
        assert same.json()["definition_version"] == 1, same.text
        assert same.json()["replay_of"] == original["id"]
    # A server that no longer loads v1: same_version is refused, the newest still works.
    async with serve(database_url, registry=registry(V2)) as live:
        async with unchanged(live, original["id"]):
            refused = await _replay(live, original["id"], params={"same_version": "true"})
            body = assert_problem(refused, 409)
            assert body["type"] == "urn:signoff:problem:replay-version"
            assert "not loaded" in body["detail"]
        assert (await _replay(live, original["id"])).json()["definition_version"] == 2


async def test_same_version_of_a_retired_document_version_is_refused(database_url: str) -> None:
    async with serve(database_url) as live:
        c = live.client
        await deploy(live, document())
        body = {"definition": "expense_claim", "input": {"amount": 10, "payee": "Bo"}}
        original = (await c.post("/api/runs", json=body, params={})).json()
        await deploy(live, document(description="second"))
        assert (await c.post("/api/definitions/expense_claim/versions/1/retire")).status_code == 200
        async with unchanged(live, original["id"]):
            refused = await _replay(live, original["id"], params={"same_version": "true"})
            assert "retired" in assert_problem(refused, 409)["detail"]
        replayed = (await _replay(live, original["id"])).json()
        assert (replayed["definition_version"], replayed["input"]) == (2, body["input"])


async def test_a_repeated_key_answers_the_first_replay_and_starts_nothing(
    live_server: LiveServer,
) -> None:
    live = live_server
    original = (await live.client.post("/api/runs", json={"definition": "approval"})).json()
    key = {"Idempotency-Key": "replay-once"}
    first = await _replay(live, original["id"], headers=key)
    runs = await all_runs(live)
    repeat = await _replay(live, original["id"], headers=key)
    assert repeat.status_code == 201 and repeat.json() == first.json()
    assert repeat.headers["idempotent-replayed"] == "true"
    assert await all_runs(live) == runs
    # The same key for another request (here: same_version) is refused, and starts nothing.
    other = await _replay(live, original["id"], headers=key, params={"same_version": "true"})
    assert assert_problem(other, 422)["type"] == "urn:signoff:problem:idempotency-mismatch"
    assert await all_runs(live) == runs


async def test_refusals_change_nothing(database_url: str) -> None:
    async with serve(database_url, tokens=TOKENS) as live:
        made = await live.client.post(
            "/api/runs", json={"definition": "approval"}, headers=auth("operator")
        )
        run_id = made.json()["id"]
        live.client.headers.update(auth("admin"))  # unchanged() reads as an admin
        async with unchanged(live, run_id):
            assert_problem(await _replay(live, "no-such-run"), 404)
            for role in ("viewer", "approver"):
                assert_problem(await _replay(live, run_id, headers=auth(role)), 403)
            assert_problem(await _replay(live, run_id, headers=auth("bad")), 401)
            bad = await _replay(live, run_id, params={"same_version": "perhaps"})
            assert_problem(bad, 400)
            long_key = {"Idempotency-Key": "k" * 300}
            assert_problem(await _replay(live, run_id, headers=long_key), 400)
        assert (await _replay(live, run_id, headers=auth("operator"))).status_code == 201

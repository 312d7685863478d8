"""History rows store a compact run view (signoff.engine.storage.stored_view); every reader
rebuilds the full one. Through a real server on both databases: the view in GET history, in
a resumed feed and in a live feed equals what the engine answered at each transition (create,
process, the job, a task claim, a migration to a new version, an approval that changes the
context, a replay, a cancel), and rows holding a whole view (stored before) still read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from sqlalchemy import text

from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.storage.schema import HISTORY
from tests.helpers import LiveServer, eventually, serve
from tests.test_versions import V1, V2, registry

INPUT = {"output": 0.9, "amount": 1250.5, "nested": {"zeta": [1, 2.5, "x"], "a": None}}
OPERATOR = {"Authorization": "Bearer o-secret"}
APPROVER = {"Authorization": "Bearer ann-secret"}
TOKENS = "otto:operator:o-secret,ann:approver:ann-secret"


async def frames(live: LiveServer, path: str, last: int | None) -> AsyncIterator[tuple[int, bytes]]:
    """(seq, data) of each SSE message of `path`, as sent."""
    headers = {**OPERATOR, "Accept": "text/event-stream"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=None) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                fields = dict(
                    line.split(b": ", 1) for line in message.split(b"\n") if b": " in line
                )
                if b"id" in fields:
                    yield int(fields[b"id"]), fields[b"data"]


def run_json(entry: bytes) -> bytes:
    """The run view's JSON inside an entry's JSON, as sent."""
    return entry[entry.index(b',"run":{') + 7 : -1]


async def post(live: LiveServer, path: str, as_: dict[str, str] = OPERATOR, **body: Any) -> bytes:
    response = await live.client.post(path, json=body, headers=as_)
    assert response.status_code in (200, 201), response.text
    return response.content


async def story(live: LiveServer) -> tuple[list[str], dict[tuple[str, int], bytes]]:
    """The runs it made, and what the engine answered at each transition, by (run, version)."""
    dispatcher: Dispatcher = live.runtime.dispatcher
    answered: dict[tuple[str, int], bytes] = {}

    def keep(body: bytes) -> str:
        view = msgspec.json.decode(body)
        answered[view["id"], view["version"]] = body
        return str(view["id"])

    created = await dispatcher.create(
        "approval", actor="otto", input=INPUT, ref_type="order", ref_id="PO-1", version=1
    )
    run_id = keep(created.body)
    keep(await post(live, f"/api/runs/{run_id}/process"))

    async def waiting() -> bool:
        got = await live.client.get(f"/api/runs/{run_id}", headers=OPERATOR)
        return bool(got.json()["state"] == "waiting_for_approval")

    await eventually(waiting)  # the job's outcome: no one was answered, the feed tells it
    keep(await post(live, f"/api/runs/{run_id}/tasks/claim", APPROVER))
    keep((await dispatcher.migrate(run_id, 2, actor="admin")).body)
    keep(await post(live, f"/api/runs/{run_id}/approve", APPROVER, reason="fine"))
    replay_id = keep(await post(live, f"/api/runs/{run_id}/replay"))
    keep(await post(live, f"/api/runs/{replay_id}/cancel"))
    return [run_id, replay_id], answered


def same(a: bytes, b: bytes, exact: bool) -> None:
    """Byte for byte on SQLite; on PostgreSQL jsonb gives objects in user data back in its
    own key order, so the decoded values (and their key order outside user data)."""
    if exact:
        assert a == b
    else:
        assert msgspec.json.decode(a) == msgspec.json.decode(b)


async def test_every_reader_rebuilds_the_view_the_engine_answered(database_url: str) -> None:
    exact = database_url.startswith("sqlite")
    async with serve(database_url, registry=registry(V1, V2), tokens=TOKENS) as live:
        live_frames: dict[int, bytes] = {}

        async def listen() -> None:
            async for seq, data in frames(live, "/api/stream", None):
                live_frames[seq] = data

        listening = asyncio.create_task(listen())
        await asyncio.sleep(0.2)
        runs, answered = await story(live)
        entries: list[dict[str, Any]] = []
        for run_id in runs:
            page = await live.client.get(f"/api/runs/{run_id}/history", headers=OPERATOR)
            entries += page.json()["items"]
        assert [e["event"] for e in entries] == [
            *("create", "process", "processed", "task.claim", "migrate", "approve"),
            *("create", "cancel"),
        ]
        await eventually(lambda: _have(live_frames, entries))
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening

        resumed: dict[int, bytes] = {}
        async for seq, data in frames(live, "/api/stream", 0):
            resumed[seq] = data
            if seq == entries[-1]["seq"]:
                break
        for run_id in runs:  # a run's own feed replays it from the table
            async for seq, data in frames(live, f"/api/runs/{run_id}/stream", None):
                assert data == resumed[seq]
                if seq == max(e["seq"] for e in entries if e["run_id"] == run_id):
                    break

    for entry in entries:
        seq, view = entry["seq"], entry["run"]
        # The feed, resumed from the table, sends what it sent live.
        same(resumed[seq], live_frames[seq], exact)
        assert run_json(resumed[seq]) == msgspec.json.encode(view)
        same(run_json(live_frames[seq]), msgspec.json.encode(view), exact)
        if (entry["run_id"], view["version"]) in answered:
            same(answered[entry["run_id"], view["version"]], run_json(live_frames[seq]), exact)
    versions = [e["run"]["definition_version"] for e in entries[:6]]
    assert versions == [1, 1, 1, 1, 2, 2]
    assert entries[3]["run"]["tasks"][0]["assignee"] == "ann"
    assert [e["run"]["context"] for e in entries[1:3]] == [{}, {"output": 0.9, "attempts": 1}]
    assert entries[6]["run"]["replay_of"] == runs[0]
    assert entries[6]["run"]["input"] == INPUT


def _have(seen: dict[int, bytes], entries: list[dict[str, Any]]) -> Any:
    async def check() -> bool:
        return all(e["seq"] in seen for e in entries)

    return check()


async def test_rows_that_hold_a_whole_view_still_read(database_url: str) -> None:
    exact = database_url.startswith("sqlite")
    async with serve(database_url, registry=registry(V1, V2), tokens=TOKENS) as live:
        runs, _ = await story(live)
        before = {}
        for run_id in runs:
            page = await live.client.get(f"/api/runs/{run_id}/history", headers=OPERATOR)
            before[run_id] = page.content
        replayed = {}
        async for seq, data in frames(live, "/api/stream", 0):
            replayed[seq] = data
            if len(replayed) == 8:
                break
        # Store every entry's run as the whole view, as rows written before issue 17 hold it.
        full = {seq: run_json(data).decode() for seq, data in replayed.items()}
        kind = "substr(run, 1, 1) = '['" if exact else "jsonb_typeof(run) = 'array'"
        async with live.runtime.store.engine.begin() as conn:
            compact = await conn.execute(text(f"SELECT count(*) FROM history WHERE {kind}"))
            assert compact.scalar() == 8  # what the engine writes now
            for seq, view in full.items():
                await conn.execute(
                    HISTORY.update()
                    .where(HISTORY.c.seq == seq)
                    .values(run=msgspec.json.decode(view))
                )
        for run_id in runs:
            page = await live.client.get(f"/api/runs/{run_id}/history", headers=OPERATOR)
            same(page.content, before[run_id], exact)
        async for seq, data in frames(live, "/api/stream", 0):
            same(data, replayed[seq], exact)
            if seq == max(replayed):
                break

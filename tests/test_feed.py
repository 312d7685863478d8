"""The live feed through a real server and a real SSE client (httpx-sse)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from sqlalchemy import select, text

from signoff.engine.storage.schema import HISTORY
from tests.helpers import LiveServer, entries, eventually, serve


async def create(live: LiveServer, **input: Any) -> str:
    response = await live.client.post(
        "/api/runs", json={"definition": "approval", "input": input or {"output": 0.9}}
    )
    return str(response.json()["id"])


async def all_seqs(live: LiveServer) -> list[int]:
    async with live.runtime.store.read() as conn:
        return list((await conn.execute(select(HISTORY.c.seq).order_by(HISTORY.c.seq))).scalars())


async def test_run_stream_replays_the_run_then_follows_it_live(live_server: LiveServer) -> None:
    run_id = await create(live_server)
    reader = asyncio.create_task(entries(live_server.client, f"/api/runs/{run_id}/stream", 4))
    await live_server.client.post(f"/api/runs/{run_id}/process")  # the worker then sends processed
    await eventually(lambda: _state(live_server, run_id, "waiting_for_approval"))
    await live_server.client.post(f"/api/runs/{run_id}/approve")
    got = await reader
    assert [e["event"] for e in got] == ["create", "process", "processed", "approve"]
    assert [e["actor"] for e in got] == ["anonymous", "anonymous", "worker", "anonymous"]
    assert got[-1]["run"]["state"] == "finished"
    assert set(got[0]) == {
        "seq",
        "run_id",
        "at",
        "actor",
        "event",
        "data",
        "reason",
        "business",
        "lifecycle",
        "run",
    }
    assert got[1]["business"] == {"from": ["unprocessed"], "to": ["sending_to_queue"]}


async def _state(live: LiveServer, run_id: str, state: str) -> bool:
    return bool((await live.client.get(f"/api/runs/{run_id}")).json()["state"] == state)


async def test_global_stream_replays_after_last_event_id(live_server: LiveServer) -> None:
    ids = [await create(live_server) for _ in range(3)]
    for run_id in ids:
        await live_server.client.post(f"/api/runs/{run_id}/pause")
    seqs = await all_seqs(live_server)
    after = seqs[2]
    got = await entries(live_server.client, "/api/stream", len(seqs) - 3, last_event_id=after)
    assert [e["seq"] for e in got] == seqs[3:]
    by_query = await entries(live_server.client, f"/api/stream?last_event_id={seqs[-2]}", 1)
    assert [e["seq"] for e in by_query] == seqs[-1:]


async def test_global_stream_filters_by_definition(live_server: LiveServer) -> None:
    reader = asyncio.create_task(entries(live_server.client, "/api/stream?definition=approval", 1))
    await eventually(lambda: _subscribers(live_server, 1))
    run_id = await create(live_server)
    assert (await reader)[0]["run_id"] == run_id
    bad = await live_server.client.get("/api/stream?definition=nope")
    assert (bad.status_code, bad.headers["content-type"]) == (422, "application/problem+json")
    assert (await live_server.client.get("/api/runs/nope/stream")).status_code == 404
    bad_id = await live_server.client.get("/api/stream", headers={"Last-Event-ID": "x"})
    assert bad_id.status_code == 422


async def _subscribers(live: LiveServer, count: int) -> bool:
    return live.runtime.feed.subscriber_count == count


async def burst(live: LiveServer, transitions: int) -> None:
    """`transitions` history entries from the API: runs created, then paused and resumed."""
    made = 0
    while made < transitions:
        run_id = await create(live)
        made += 1
        while made < transitions and made % 20:
            action = "pause" if made % 2 else "resume"
            await live.client.post(f"/api/runs/{run_id}/{action}")
            made += 1


async def test_reconnecting_during_a_burst_gets_every_seq_once_in_order(
    live_server: LiveServer,
) -> None:
    start = (await all_seqs(live_server) or [0])[-1]
    producer = asyncio.create_task(burst(live_server, 200))
    seen: list[int] = []
    last = start
    while len(seen) < 200:  # read a few, drop the connection, resume from the last id
        got = await entries(live_server.client, "/api/stream", min(37, 200 - len(seen)), last)
        seen += [e["seq"] for e in got]
        last = seen[-1]
    await producer
    assert seen == (await all_seqs(live_server))[-200:]
    assert len(set(seen)) == 200


async def test_heartbeat_and_disconnect_cleanup(database_url: str) -> None:
    async with serve(database_url, heartbeat_s=0.2) as live:
        async with live.client.stream("GET", "/api/stream") as response:
            assert response.status_code == 200
            await eventually(lambda: _subscribers(live, 1))
            # Nothing happens on the feed, so the idle stream gets the heartbeat (an SSE
            # comment) every heartbeat_s: two of them must arrive well within the bound.
            received = b""
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    async for chunk in response.aiter_raw():
                        received += chunk
                        if received.count(b": ping\n\n") >= 2:
                            break
            assert received.count(b": ping\n\n") >= 2, f"no heartbeats, only {received!r}"
        await eventually(lambda: _subscribers(live, 0))


async def raw_slow_client(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An SSE client with a tiny receive buffer that then stops reading."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def test_a_slow_client_is_dropped_and_a_fast_one_keeps_up(database_url: str) -> None:
    async with serve(database_url, sndbuf=8192, feed_buffer=16) as live:
        reader, writer = await raw_slow_client(live.url)
        fast = asyncio.create_task(entries(live.client, "/api/stream", 120))
        await eventually(lambda: _subscribers(live, 2))
        padding = {"note": "x" * 20_000}  # large entries fill the slow client's socket fast
        for _ in range(40):
            run_id = await create(live, output=0.9, **padding)
            await live.client.post(f"/api/runs/{run_id}/pause")
            await live.client.post(f"/api/runs/{run_id}/resume")
        got = await fast
        assert len({e["seq"] for e in got}) == 120
        # The fast client has hung up; the slow one was dropped, and its connection cut.
        await eventually(lambda: _subscribers(live, 0))
        # What reached the slow client is still readable, then its stream ends (the server
        # aborted it, so with a reset rather than the last chunk): it would reconnect.
        received = await asyncio.wait_for(_read_to_end(reader), 30)
        assert b"event: transition" in received
        writer.close()


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
            if chunks[-1].endswith(b"0\r\n\r\n"):  # the chunked response's last chunk
                break
    return b"".join(chunks)


async def test_commits_out_of_seq_order_are_never_skipped(pg_database_url: str) -> None:
    """PostgreSQL: seq N+1 may not become visible before seq N (DESIGN.md, commit order)."""
    async with serve(pg_database_url) as live:
        run_id = await create(live)
        follower = asyncio.create_task(
            entries(live.client, "/api/stream", 2, last_event_id=(await all_seqs(live))[-1])
        )
        await eventually(lambda: _subscribers(live, 1))
        async with live.runtime.store.engine.connect() as slow:
            # A transition that has taken its seq but not committed yet...
            await slow.begin()
            await slow.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x5160FF})
            row = (await slow.execute(select(HISTORY).limit(1))).one()._mapping
            await slow.execute(
                HISTORY.insert().values(
                    {**{k: v for k, v in row.items() if k != "seq"}, "version": 99}
                )
            )
            # ...while a later one tries to commit: it must wait for the first.
            later = asyncio.create_task(live.client.post(f"/api/runs/{run_id}/pause"))
            await eventually(lambda: _waiting_on_advisory_lock(live))
            live.runtime.feed.wake()
            await slow.commit()
        assert (await later).status_code == 200
        got = await follower
        assert [e["event"] for e in got] == ["create", "pause"]
        assert got[0]["seq"] < got[1]["seq"]


async def _waiting_on_advisory_lock(live: LiveServer) -> bool:
    async with live.runtime.store.read() as conn:
        query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool((await conn.execute(query)).scalar())

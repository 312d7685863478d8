"""`signoff purge` as a user runs it, a subprocess on the database a real server keeps serving
(SQLite and PostgreSQL): bad input changes nothing, a dry run neither; the export verifies
with `signoff audit verify`, so does the server's history after it, and the feed says where
the purged range ends to a client resuming inside it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from httpx_sse import aconnect_sse

from signoff.engine.dispatch.dispatcher import utcnow
from tests.events_support import order_server
from tests.helpers import LiveServer
from tests.purge_support import counts, history_of, rows

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _signoff(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args],
        capture_output=True,
        text=True,
        env={**ENV, **env},
        timeout=120,
    )


async def signoff(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_signoff, {"SIGNOFF_DATABASE_URL": database_url}, *args)


async def event(live: LiveServer, run_id: str, name: str) -> None:
    answer = await live.client.post(f"/api/runs/{run_id}/events", json={"event": name})
    assert answer.status_code == 200, answer.text


async def sse(live: LiveServer, after: int, count: int) -> list[tuple[str, str, Any]]:
    """The first `count` messages of the global feed resumed after `after`."""
    got: list[tuple[str, str, Any]] = []
    headers = {"Last-Event-ID": str(after)}
    async with aconnect_sse(live.client, "GET", "/api/stream", headers=headers) as source:
        async for message in source.aiter_sse():
            if not message.data:  # the retry advice
                continue
            got.append((message.event, message.id, json.loads(message.data)))
            if len(got) == count:
                return got
    raise AssertionError(f"the feed ended after {got}")


async def test_purge_exports_deletes_and_the_server_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    async with order_server(database_url) as live:
        c, store = live.client, live.runtime.store
        made = await c.post("/api/runs", json={"definition": "approval", "input": {"output": 0.9}})
        live_run = made.json()["id"]
        old = []
        for i in range(3):
            placed = await c.post(
                "/api/events",
                json={
                    "id": f"p-{i}",
                    "name": "order.placed",
                    "data": {"order_id": f"o{i}", "amount": 1},
                },
            )
            assert placed.status_code == 200, placed.text
            old.append(placed.json()["started"][0]["run_id"])
            keyed = await c.post(
                "/api/runs",
                json={"definition": "approval", "input": {"output": 0.9}},
                headers={"Idempotency-Key": f"k-{i}"},
            )
            old.append(keyed.json()["id"])
            await event(live, live_run, "pause" if i % 2 == 0 else "resume")
        for run_id in old:
            await event(live, run_id, "cancel")
        before = utcnow()
        await event(live, live_run, "resume")
        kept = await history_of(store, live_run)
        was = await counts(store)
        assert (was["events"], was["idempotency"]) == (3, 6)  # 3 event starts, 3 keys
        export = tmp_path / "purged.ndjson"

        # Bad input: a clear message, exit status 2, nothing changed, no file.
        future = (utcnow() + timedelta(days=1)).isoformat()
        for args, says in (
            (["--finished-before", future], "in the future"),
            (["--finished-before", "last tuesday"], "is not a date"),
            (["--finished-before", before.isoformat(), "--batch", "0"], "at least 1"),
        ):
            done = await signoff(database_url, "purge", *args, "--export", str(export))
            assert (done.returncode, says in done.stderr) == (2, True), done.stderr
        assert not export.exists()
        dry = await signoff(
            database_url, "purge", "--finished-before", before.isoformat(), "--dry-run"
        )
        assert dry.returncode == 0, dry.stderr
        assert "would purge 6 run(s)" in dry.stdout
        assert rows(await counts(store)) == rows(was)

        done = await signoff(
            database_url, "purge", "--finished-before", before.isoformat(),
            "--export", str(export), "--batch", "2",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "purging 6 run(s)" in done.stdout and "3 events" in done.stdout
        now = await counts(store)
        assert now["runs"] == was["runs"] - 6
        assert (now["events"], now["idempotency"]) == (0, 0)
        assert await history_of(store, live_run) == kept
        again = await signoff(database_url, "purge", "--finished-before", before.isoformat())
        assert again.returncode == 0 and "nothing changed" in again.stdout
        assert rows(await counts(store)) == rows(now)
        exists = await signoff(
            database_url, "purge", "--finished-before", before.isoformat(), "--export", str(export)
        )
        assert exists.returncode == 2 and "never overwritten" in exists.stderr

        # The export verifies on its own, and so does what the server still holds.
        offline = await signoff(database_url, "audit", "verify", str(export))
        assert offline.returncode == 0, offline.stderr
        online = await signoff(database_url, "audit", "verify", "--url", live.url)
        assert online.returncode == 0, online.stderr
        assert "purged range(s) passed over" in online.stdout

        # A client resuming inside the purged range is told where it ends, then goes on.
        lines = [json.loads(line) for line in export.read_text().splitlines()]
        purged = [e["seq"] for e in lines if e["type"] == "entry" and e["run_id"] in old]
        got = await sse(live, purged[0], 2)
        (kind, last, gap), (then, seq, entry) = got
        assert (kind, then) == ("purged", "transition")
        assert gap["last_seq"] in purged and last == str(gap["last_seq"])
        assert (gap["after_seq"] or 0) < purged[0] < gap["next_seq"]
        assert int(seq) == gap["next_seq"] == entry["seq"] and entry["run_id"] not in old
        # Resuming from the range's end: no purged message, straight on.
        assert (await sse(live, gap["last_seq"], 1))[0][0] == "transition"


async def test_vacuum_gives_the_space_back(tmp_path: Path) -> None:
    database = tmp_path / "signoff.db"
    url = f"sqlite+aiosqlite:///{database}"
    async with order_server(url) as live:
        made = await live.client.post(
            "/api/runs", json={"definition": "approval", "input": {"output": 0.9}}
        )
        padding = "x" * 4000
        for _ in range(60):
            run = await live.client.post(
                "/api/runs",
                json={"definition": "approval", "input": {"output": 0.9, "note": padding}},
            )
            await event(live, run.json()["id"], "cancel")
        before = utcnow()
        await event(live, made.json()["id"], "pause")
    size = os.path.getsize(database)
    done = await signoff(url, "purge", "--finished-before", before.isoformat(), "--vacuum")
    assert done.returncode == 0, done.stderr
    assert "vacuum:" in done.stdout
    assert os.path.getsize(database) < size / 2

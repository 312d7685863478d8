"""The Python client and the `runs`/`watch` commands, against a real server."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from signoff.cli import runs as cli_runs
from signoff.client import ApiError, SignoffClient
from signoff.engine.views import HistoryEntry
from tests.helpers import eventually, serve, waiting_run


async def test_client_covers_the_run_api(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        run_id = await waiting_run(client, ref_id="PO-1", ref_type="order")
        other = await waiting_run(client)
        assert (await client.approve(run_id, reason="fine")).state == "finished"
        rejected = await client.reject(other, reason="numbers are off")
        assert rejected.state == "sending_to_queue"

        page = await client.list(ref_id="PO-1", ref_type="order")
        assert [r.id for r in page.items] == [run_id]
        assert [r.id for r in (await client.list(state="finished")).items] == [run_id]
        every = [r.id async for r in client.all(limit=1)]  # one run per page, both pages
        assert sorted(every) == sorted([run_id, other])

        history = await client.history(run_id)
        assert [e.event for e in history] == ["create", "process", "processed", "approve"]
        assert history[-1].reason == "fine"
        sent = await client.send(other, "pause")
        assert sent.lifecycle == "paused"


async def test_client_raises_the_servers_problem(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        with pytest.raises(ApiError) as missing:
            await client.get("no-such-run")
        assert missing.value.status == 404
        assert missing.value.problem["status"] == 404
        run = await client.create("approval")
        with pytest.raises(ApiError) as refused:
            await client.approve(run.id)
        assert refused.value.status == 409
        assert "approve" in refused.value.message
        assert (await client.get(run.id)).version == 1  # nothing changed


def test_an_error_message_is_one_line() -> None:
    page = "<html>\n  <body>\n    <h1>502 Bad Gateway</h1>\n  </body>\n</html>\n"  # a proxy's
    error = ApiError(502, {"title": "Bad\nGateway", "detail": page})
    assert (
        error.message == "502 Bad Gateway: <html> <body> <h1>502 Bad Gateway</h1> </body> </html>"
    )
    assert error.problem["detail"] == page  # the problem itself is kept as it came


async def test_follow_survives_a_server_restart(database_url: str) -> None:
    async with serve(database_url) as first:
        port = int(first.url.rsplit(":", 1)[1])
        client = SignoffClient(first.url)
        run_id = await waiting_run(client)
        seen: list[HistoryEntry] = []

        async def collect() -> None:
            async for entry in client.follow(run_id=run_id, retry_s=0.05):
                seen.append(entry)

        follower = asyncio.create_task(collect())

        async def three() -> bool:
            return len(seen) == 3

        await eventually(three)  # create, process, processed: replayed from the start
    # The server is gone: the follower retries until one is back on the same port.
    await asyncio.sleep(0.3)
    async with serve(database_url, port=port):
        await client.reject(run_id, reason="again")

        async def all_of_them() -> bool:
            return len(seen) >= 5  # reject, then the job ran again: processed

        await eventually(all_of_them, timeout=20)
        history = await client.history(run_id)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await client.aclose()
    assert [e.seq for e in seen] == [e.seq for e in history]  # every entry, once, in order
    assert [e.event for e in seen] == ["create", "process", "processed", "reject", "processed"]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNOFF_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
async def test_runs_commands(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        created = await asyncio.to_thread(
            _cli,
            live.url,
            "runs",
            "create",
            "approval",
            "--input",
            '{"output": 0.9}',
            "--ref-id",
            "INV-7",
            "--count",
            "2",
            "--process",
        )
        assert created.returncode == 0, created.stderr
        runs = [json.loads(line) for line in created.stdout.splitlines()]
        assert [r["state"] for r in runs] == ["sending_to_queue"] * 2
        ids = [r["id"] for r in runs]
        for run_id in ids:

            async def waiting(run_id: str = run_id) -> bool:
                return (await client.get(run_id)).state == "waiting_for_approval"

            await eventually(waiting)

        listed = await asyncio.to_thread(
            _cli, live.url, "runs", "list", "--ref-id", "INV-7", "--json"
        )
        assert sorted(json.loads(line)["id"] for line in listed.stdout.splitlines()) == sorted(ids)
        table = await asyncio.to_thread(_cli, live.url, "runs", "list")
        assert ids[0] in table.stdout and "waiting_for_approval" in table.stdout

        approved = await asyncio.to_thread(_cli, live.url, "runs", "approve", ids[0])
        assert json.loads(approved.stdout)["state"] == "finished"
        rejected = await asyncio.to_thread(
            _cli, live.url, "runs", "reject", ids[1], "--reason", "no budget"
        )
        assert json.loads(rejected.stdout)["state"] == "sending_to_queue"

        got = await asyncio.to_thread(_cli, live.url, "runs", "get", ids[0], "--history")
        assert [json.loads(line)["event"] for line in got.stdout.splitlines()][-1] == "approve"

        again = await asyncio.to_thread(_cli, live.url, "runs", "approve", ids[0])
        assert again.returncode == 1 and "409" in again.stdout + again.stderr
        bad = await asyncio.to_thread(_cli, live.url, "runs", "create", "approval", "--input", "{")
        assert bad.returncode == 2 and "--input is not JSON" in bad.stderr
        assert len((await client.list()).items) == 2  # nothing created
        down = await asyncio.to_thread(
            _cli, live.url, "runs", "get", "x", "--url", "http://127.0.0.1:9"
        )
        assert down.returncode == 1 and "cannot reach http://127.0.0.1:9" in down.stderr
        missing = await asyncio.to_thread(_cli, live.url, "runs", "get", "nope")
        assert missing.returncode == 1 and "404" in missing.stderr
        assert (await client.get(ids[0])).version == 4  # the refused approve changed nothing


async def test_watch_shows_runs_as_they_change(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, width=160)
        args = argparse.Namespace(
            command="watch", url=live.url, token=None, definition=None, rows=10
        )
        watcher = asyncio.create_task(cli_runs.run(args, console))

        async def subscribed() -> bool:  # it follows from the present: subscribe first
            return live.runtime.feed.subscriber_count > 0

        await eventually(subscribed)
        run_id = await waiting_run(client)

        async def shown() -> bool:
            return run_id in out.getvalue() and "waiting_for_approval" in out.getvalue()

        await eventually(shown)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

"""`signoff runs list` and `signoff watch` as a user sees them: paging, whole ids, plain pipes."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys

from rich.console import Console

from signoff.cli import runs as cli_runs
from signoff.client import SignoffClient
from tests.helpers import LiveServer, eventually, serve, waiting_run

# As a user's shell runs it: 40 columns (rich's width for stderr too, so wrapping would show),
# and stdout block-buffered when it is a pipe (this environment sets PYTHONUNBUFFERED).
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "COLUMNS": "40"}


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, stdout and stderr both pipes."""
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args, "--url", url],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


async def signoff(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, url, *args)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_runs.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def _subscribed(live: LiveServer) -> None:
    async def one() -> bool:
        return live.runtime.feed.subscriber_count == 1

    await eventually(one, timeout=30)


async def _created(client: SignoffClient, count: int) -> list[str]:
    """`count` new runs' ids, newest first (the order `runs list` shows)."""
    ids = [(await client.create("approval")).id for _ in range(count)]
    return ids[::-1]


async def test_list_says_when_more_runs_exist(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        ids = await _created(client, 3)

        first = await signoff(live.url, "runs", "list", "--limit", "2", "--json")
        assert first.returncode == 0, first.stderr
        assert [json.loads(line)["id"] for line in first.stdout.splitlines()] == ids[:2]
        notice = first.stderr.strip()
        assert "more runs exist" in notice and "--all" in notice
        assert len(notice.splitlines()) == 1  # not wrapped at COLUMNS=40
        cursor = notice.split("--cursor ", 1)[1].split()[0]

        rest = await signoff(live.url, "runs", "list", "--limit", "2", "--cursor", cursor)
        assert rest.returncode == 0, rest.stderr
        assert ids[2] in rest.stdout and ids[0] not in rest.stdout and ids[1] not in rest.stdout
        assert rest.stderr == ""  # the last page: nothing more to say

        exactly = await signoff(live.url, "runs", "list", "--limit", "3")
        assert all(run_id in exactly.stdout for run_id in ids)
        assert exactly.stderr == ""  # three runs, three shown: no notice

        both = await signoff(live.url, "runs", "list", "--limit", "2", "--all")
        assert both.returncode == 2 and "not allowed with" in both.stderr


async def test_list_all_follows_every_page(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        ids = await _created(client, cli_runs.PAGE + 3)  # two pages at the largest page size

        every = await signoff(live.url, "runs", "list", "--all", "--json")
        assert every.returncode == 0, every.stderr
        assert [json.loads(line)["id"] for line in every.stdout.splitlines()] == ids
        assert every.stderr == ""

        table = await signoff(live.url, "runs", "list", "--all")
        assert sum(run_id in table.stdout for run_id in ids) == len(ids)

        most = await signoff(live.url, "runs", "list", "--limit", str(cli_runs.PAGE + 1), "--json")
        assert [json.loads(line)["id"] for line in most.stdout.splitlines()] == ids[:-2]
        assert "more runs exist than these 201" in most.stderr


async def test_list_table_shows_refs_and_whole_ids_in_a_narrow_console(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        ref_id = "PO-" + "7" * 50
        run = await client.create("approval", ref_id=ref_id, ref_type="purchase_order")
        out = io.StringIO()
        for terminal in (True, False):
            console = Console(file=out, width=40, force_terminal=terminal, color_system=None)
            assert await cli_runs.run(_parse("runs", "list", "--url", live.url), console) == 0
        header, *rows = out.getvalue().splitlines()[:2]
        assert header.split()[4:6] == ["ref_type", "ref_id"]
        expected = [run.id, "approval", run.state, run.lifecycle, "purchase_order", ref_id]
        assert rows[0].split()[:6] == expected
        assert out.getvalue().count(run.id) == 2 and out.getvalue().count(ref_id) == 2

        piped = await signoff(live.url, "runs", "list")  # stdout a pipe, COLUMNS=40
        line = next(line for line in piped.stdout.splitlines() if run.id in line)
        assert line.split()[:6] == expected


async def test_watch_prints_a_plain_line_per_transition_when_piped(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        read_end, write_end = os.pipe()  # our own pipe, so the test can close its end
        watcher = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "signoff", "watch", "--url", live.url),
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
        )
        os.close(write_end)
        assert watcher.stderr is not None
        stdout = os.fdopen(read_end)  # closed mid-test, on purpose, and again below
        try:
            await _subscribed(live)  # the feed of every run starts from now
            run_id = await waiting_run(client)
            lines: list[str] = []
            # Each line arrives as its transition lands: flushed, though stdout is a pipe.
            while not lines or "waiting_for_approval" not in lines[-1]:
                line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 20)
                assert line, await watcher.stderr.read()
                lines.append(line.rstrip("\n"))
            history = await client.history(run_id)

            stdout.close()  # the reader leaves, as `| head -3` would
            await client.approve(run_id)  # the next line meets a closed pipe
            assert await asyncio.wait_for(watcher.wait(), 20) == 0
            assert await watcher.stderr.read() == b""  # no BrokenPipeError traceback
        finally:
            if watcher.returncode is None:  # first, so that a blocked readline sees the end
                watcher.kill()
                await watcher.wait()
            stdout.close()
    assert all("\x1b" not in line for line in lines)  # no live display, no colour codes
    fields = [line.split() for line in lines]
    assert [f[2] for f in fields] == [run_id] * 3  # the whole id, though COLUMNS=40
    assert [f[4:] for f in fields] == [[e.event, e.run.state, e.run.lifecycle] for e in history]
    assert [int(f[0]) for f in fields] == [e.seq for e in history]
    assert {f[3] for f in fields} == {"approval"}


async def test_watch_on_a_narrow_terminal_keeps_ids_whole(database_url: str) -> None:
    async with serve(database_url) as live, SignoffClient(live.url) as client:
        run_id = await waiting_run(client)
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, width=64, color_system=None)
        watcher = asyncio.create_task(cli_runs.run(_parse("watch", "--url", live.url), console))
        try:
            await _subscribed(live)
            assert "waiting_for_approval" in out.getvalue()  # the latest runs, before any change
            await client.approve(run_id)

            async def finished() -> bool:
                assert not watcher.done(), watcher.result()
                return "finished" in out.getvalue()

            await eventually(finished)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        assert run_id in out.getvalue()  # the id, in one piece
        assert "definition" not in out.getvalue()  # dropped, so that 64 columns hold the rest


async def test_a_long_refusal_is_one_line(database_url: str) -> None:
    async with serve(database_url) as live:
        missing = "no-such-run-" + "9" * 60
        several = await signoff(live.url, "runs", "approve", missing, missing + "0")
        assert several.returncode == 1
        lines = several.stderr.splitlines()
        assert len(lines) == 2  # one per refused id, unwrapped at COLUMNS=40
        assert lines[0].startswith(f"signoff: {missing}: 404 ") and "No run has id" in lines[0]
        assert lines[1].startswith(f"signoff: {missing}0: 404 ")
        one = await signoff(live.url, "runs", "get", missing)
        assert one.returncode == 1
        assert one.stderr.startswith("signoff: 404 Not found: No run has id 'no-such-run-999")
        assert len(one.stderr.splitlines()) == 1 and len(one.stderr) > 80


def test_a_malformed_url_is_one_line() -> None:
    bad = _cli("http://[::1", "runs", "list")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "signoff: --url is not a URL (Invalid port: ':1'): http://[::1\n"

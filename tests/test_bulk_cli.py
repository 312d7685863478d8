"""`signoff runs bulk`, `signoff runs replay` and the client's bulk methods against a real server
(SQLite and PostgreSQL): the count first, a confirmation, a progress bar, a line per run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from signoff.client import ApiError, SignoffClient
from signoff.engine import BulkRunResult, BulkStarted, BulkSummary
from tests.helpers import LiveServer, all_runs, get_run
from tests.test_bulk import runs_of


def _cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COLUMNS": "120", **env}
    return subprocess.run(
        [sys.executable, "-m", "signoff", "runs", *args, "--url", url],
        capture_output=True, text=True, env=environ, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def signoff(live: LiveServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, live.url, *args, **env)


async def test_the_command_counts_asks_then_acts_with_a_progress_bar(
    live_server: LiveServer,
) -> None:
    live = live_server
    ids = await runs_of(live, "cli", 2)
    counted = await signoff(live, "bulk", "pause", "--ref-type", "cli", "--dry-run")
    assert counted.returncode == 0, counted.stderr
    assert "2 run(s) match: pause" in counted.stderr
    assert json.loads(counted.stdout)["run_ids"] == ids

    before = await all_runs(live)
    unconfirmed = await signoff(live, "bulk", "pause", "--ref-type", "cli")
    assert unconfirmed.returncode == 1 and "add --yes" in unconfirmed.stderr
    assert await all_runs(live) == before

    # A terminal (as rich is told): the bar counts the runs as their results land.
    done = await signoff(
        live, "bulk", "pause", "--ref-type", "cli", "--yes", "--key", "cli-1",
        TTY_COMPATIBLE="1", TTY_INTERACTIVE="1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2/2" in done.stderr and "━" in done.stderr  # the progress bar
    *lines, summary = done.stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ids
    assert summary == "done 2, skipped 0, failed 0"
    assert all([(await get_run(live, r))["lifecycle"] == "paused" for r in ids])

    # Run again (a new key): both are paused already, so both are skipped with the reason.
    again = await signoff(live, "bulk", "pause", "--ref-type", "cli", "--yes")
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "done 0, skipped 2, failed 0"
    assert f"{ids[0]}: skipped:" in again.stderr

    bad = await signoff(live, "bulk", "pause", "--created-before", "soon", "--dry-run")
    assert bad.returncode == 1 and "400" in bad.stderr


async def test_runs_replay_prints_the_new_runs(live_server: LiveServer) -> None:
    live = live_server
    (original,) = await runs_of(live, "r", 1)
    replayed = await signoff(live, "replay", original, "--same-version")
    assert replayed.returncode == 0, replayed.stderr
    new = json.loads(replayed.stdout)
    assert (new["replay_of"], new["ref_id"]) == (original, "r-0")
    assert (await get_run(live, original))["replays"] == [new["id"]]
    missing = await signoff(live, "replay", "no-such-run")
    assert missing.returncode == 1 and "404" in missing.stderr


async def test_the_client_previews_and_streams_bulk_results(live_server: LiveServer) -> None:
    live = live_server
    ids = await runs_of(live, "py", 2)
    async with SignoffClient(live.url) as client:
        preview = await client.bulk_preview("replay", ref_type="py")
        assert (preview.matched, preview.run_ids) == (2, ids)
        lines = [line async for line in client.bulk("replay", ref_type="py", same_version=True)]
        assert isinstance(lines[0], BulkStarted) and lines[0].matched == 2
        assert isinstance(lines[-1], BulkSummary) and lines[-1].done == 2
        per_run = [line for line in lines if isinstance(line, BulkRunResult)]
        assert [r.run_id for r in per_run] == ids
        for result in per_run:
            assert result.new_run_id is not None
            assert (await client.get(result.new_run_id)).replay_of == result.run_id
        try:
            async for _ in client.bulk("resume"):  # no filter
                raise AssertionError("no line expected")
        except ApiError as refused:
            assert refused.status == 422
        else:
            raise AssertionError("an empty filter is refused")

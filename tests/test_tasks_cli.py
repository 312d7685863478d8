"""`signoff tasks` and the client's task methods against a real server (SQLite and
PostgreSQL): the inbox, claiming, reassigning, one decision for several runs, "why", dry runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import msgspec
import pytest

from signoff.client import ApiError, SignoffClient
from signoff.engine import TaskPage
from tests.helpers import LiveServer
from tests.tasks_support import new_leave, people_server


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with people_server(database_url) as server:
        yield server


def _cli(url: str, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNOFF_TOKEN": f"{who}-secret", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args, "--url", url],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


async def signoff(live: LiveServer, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, live.url, who, *args)


async def test_the_command_line_lists_claims_and_decides(live: LiveServer) -> None:
    runs = [(await new_leave(live, ref_type="employee", ref_id=f"e-{i}"))["id"] for i in range(3)]
    listed = await signoff(live, "mia", "tasks")
    assert listed.returncode == 0, listed.stderr
    assert all(r in listed.stdout for r in runs) and "3 task(s) await you" in listed.stdout
    assert "0 task(s)" in (await signoff(live, "hal", "tasks")).stdout
    claimed = await signoff(live, "mia", "tasks", "claim", runs[0])
    assert claimed.returncode == 0 and f"{runs[0]}\tmanager_review\tmia" in claimed.stdout
    assert runs[0] not in (await signoff(live, "max", "tasks", "list")).stdout
    moved = await signoff(live, "olga", "tasks", "reassign", runs[0], "max")
    assert moved.returncode == 0 and "\tmax" in moved.stdout
    why = await signoff(live, "mia", "tasks", "why", runs[0])
    assert "approve\tno\t" in why.stdout and "claimed by max" in why.stdout
    decided = await signoff(live, "mia", "tasks", "decide", "reject", *runs, "--reason", "no")
    assert decided.returncode == 1  # one refused: the exit says so
    assert "2 decided, 1 refused" in decided.stdout and f"{runs[0]}\t409" in decided.stdout
    refused = await signoff(live, "ann", "tasks", "claim", runs[1])
    assert refused.returncode == 1 and "409" in refused.stderr + refused.stdout


async def test_the_client_speaks_tasks(live: LiveServer) -> None:
    run = (await new_leave(live))["id"]
    async with SignoffClient(live.url, "mia-secret") as mia:
        page = await mia.tasks(sort="age")
        assert [t.run_id for t in page.items] == [run] and page.counts.total == 1
        tried = await mia.dry_run(run, "approve", {"days": 1})
        assert tried.run.state == "hr_review" and "task.created" in tried.notifications
        assert (await mia.get(run)).state == "manager_review"  # the dry run changed nothing
        allowed = {p.event: p.allowed for p in (await mia.permissions(run)).events}
        assert allowed["approve"] and not allowed["appeal"]
        claimed = await mia.claim(run)
        assert claimed.tasks[0].assignee == "mia"
        delegated = await mia.delegate(run, "max")
        assert delegated.tasks[0].acting_for == "mia"
        with pytest.raises(ApiError) as caught:
            await mia.release(run)
        assert caught.value.status == 409
    async with SignoffClient(live.url, "max-secret") as max_:
        outcome = await max_.decide_many("approve", [run])
        assert outcome.decided == 1


async def test_past_the_count_limit_the_command_line_and_client_say_so(database_url: str) -> None:
    async with people_server(database_url, task_count_limit=2) as live:
        for _ in range(3):
            await new_leave(live)
        listed = await signoff(live, "mia", "tasks")
        assert listed.returncode == 0, listed.stderr
        assert "2+ task(s) await you, 0 overdue" in listed.stdout
        async with SignoffClient(live.url, "mia-secret") as mia:
            found = (await mia.tasks()).counts
            assert (found.total, found.exact) == (2, False)
            found = (await mia.tasks(ref_id="none")).counts
            assert (found.total, found.exact) == (0, True)
    # An older server's answer has no `exact`: its counts were exact.
    counts = b'{"total":1,"overdue":0,"by_definition":{"leave":1}}'
    old = b'{"items":[],"counts":' + counts + b',"limit":50,"offset":0}'
    assert msgspec.json.decode(old, type=TaskPage).counts.exact

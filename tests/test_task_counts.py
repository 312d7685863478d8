"""The inbox's counts through a real server, on SQLite and PostgreSQL: exact up to the
server's count limit (3 here), and past it the soonest-due tasks counted with `exact: false`;
the caller's filters and rules apply to what is counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import LiveServer
from tests.tasks_support import EXPENSE, call, clock_moved_back, inbox, new_leave, people_server

LIMIT = 3


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    overrides = {"task_count_limit": LIMIT, "separation_of_duties": True}
    async with people_server(database_url, **overrides) as server:
        document = {"format": "yaml", "document": EXPENSE}
        deployed = await call(server, "admin", "POST", "/api/definitions", json=document)
        assert deployed.status_code == 201, deployed.text
        yield server


async def expense(live: LiveServer, late: bool = False) -> None:
    """A task for mia, due in an hour (or, `late`, an hour ago)."""
    with clock_moved_back(live, timedelta(hours=2 if late else 0)):
        created = await call(live, "olga", "POST", "/api/runs", json={"definition": "expense"})
    assert created.status_code == 201, created.text


def counts(page: dict[str, Any]) -> tuple[Any, ...]:
    """A page's (total, overdue, by_definition, exact)."""
    found = page["counts"]
    assert set(found) == {"total", "overdue", "by_definition", "exact"}
    return found["total"], found["overdue"], found["by_definition"], found["exact"]


async def test_past_the_limit_the_soonest_due_are_counted(live: LiveServer) -> None:
    for _ in range(2):
        await expense(live, late=True)
    await expense(live)
    for _ in range(3):
        await new_leave(live)  # due in two days: after every expense
    mia = await inbox(live, "mia")
    assert len(mia["items"]) == 6  # the page is not the counts': it lists them all
    assert counts(mia) == (3, 2, {"expense": 3}, False)
    # The admin's inbox (every open task, one range of the index) counts the same way.
    assert counts(await inbox(live, "admin")) == (3, 2, {"expense": 3}, False)
    assert counts(await inbox(live, "mia", sort="age")) == counts(mia)
    # Filtered down to the limit or under it, the counts are exact again.
    leave = await inbox(live, "mia", definition="leave")
    assert counts(leave) == (3, 0, {"leave": 3}, True)
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert counts(await inbox(live, "mia", due_before=soon)) == (3, 2, {"expense": 3}, True)
    assert counts(await inbox(live, "max")) == (3, 0, {"leave": 3}, True)
    assert counts(await inbox(live, "hal")) == (0, 0, {}, True)


async def test_the_callers_rules_apply_to_what_is_counted(live: LiveServer) -> None:
    for who in ("olga", "olga", "olga", "mop"):
        await new_leave(live, who=who)
    # mop is a candidate too, but under separation of duties not for the run mop asked for.
    assert counts(await inbox(live, "mop")) == (3, 0, {"leave": 3}, True)
    assert counts(await inbox(live, "max")) == (3, 0, {"leave": 3}, False)
    # A task claimed by someone else leaves the others' inboxes and their counts.
    run_id = (await inbox(live, "max"))["items"][0]["run_id"]
    claimed = await call(live, "max", "POST", f"/api/runs/{run_id}/tasks/claim")
    assert claimed.status_code == 200, claimed.text
    assert counts(await inbox(live, "mia")) == (3, 0, {"leave": 3}, True)


async def test_more_overdue_than_the_limit_is_a_lower_bound(live: LiveServer) -> None:
    for _ in range(4):
        await expense(live, late=True)
    mia = await inbox(live, "mia")
    assert counts(mia) == (3, 3, {"expense": 3}, False)  # 3+ overdue of 3+
    assert sum(t["overdue"] for t in mia["items"]) == 4

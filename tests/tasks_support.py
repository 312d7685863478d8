"""A definition with declared tasks, deployed as a document, and its people (for the task
tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import LiveServer, serve

PEOPLE = {
    "admin": "admin",
    "olga": "operator",
    "mia": "approver",  # a named candidate of manager_review
    "max": "approver",  # a named candidate of manager_review
    "hal": "approver@hr",  # decides hr_review
    "dora": "approver@directors",  # manager_review escalates to directors
    "ann": "approver",  # an approver nothing is offered to
    "val": "viewer",
    "mop": "operator+approver",  # creates runs and is a candidate: separation of duties
}
TOKENS = ",".join(f"{who}:{roles}:{who}-secret" for who, roles in PEOPLE.items())

# The README's own example (its "Human tasks" section), so that the document it shows is the
# one these tests deploy.
README = Path(__file__).parents[1] / "README.md"
LEAVE = README.read_text().split("# leave.yaml\n", 1)[1].split("```", 1)[0]

# Two approvals from the review group, counted once each (a quorum).
PANEL = """
name: panel
signoff:
  kinds: {review: wait, accepted: success}
  deciders: {review: panel}
  decisions: [approve]
states:
  review:
    initial: true
    transitions:
      - {event: approve, target: accepted, cond: "approvals >= 2"}
      - {event: approve, target: review}
      # An operator may close an urgent review at once.
      - {event: close, target: accepted, cond: "input['urgent']"}
  accepted: {final: true}
"""
PANELISTS = ("pat", "pia", "pol")

# Tasks for mia with a due time of their own (leave's are due two days after they open).
EXPENSE = """
name: expense
signoff:
  kinds: {review: wait, paid: success, refused: failure}
  decisions: [approve, reject]
  tasks:
    review: {users: [mia], due: 1h}
states:
  review:
    initial: true
    transitions:
      - {event: approve, target: paid}
      - {event: reject, target: refused}
  paid: {final: true}
  refused: {final: true}
"""


def headers(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}-secret"}


@asynccontextmanager
async def people_server(database_url: str, **overrides: Any) -> AsyncIterator[LiveServer]:
    """A server with PEOPLE (and the panel) as tokens, `leave` and `panel` deployed."""
    tokens = TOKENS + "," + ",".join(f"{p}:approver@panel:{p}-secret" for p in PANELISTS)
    async with serve(database_url, tokens=tokens, **overrides) as live:
        for document in (LEAVE, PANEL):
            deployed = await live.client.post(
                "/api/definitions",
                json={"format": "yaml", "document": document},
                headers=headers("admin"),
            )
            assert deployed.status_code == 201, deployed.text
        yield live


async def call(live: LiveServer, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return await live.client.request(method, path, headers=headers(who), **kw)


async def new_leave(live: LiveServer, who: str = "olga", **body: Any) -> dict[str, Any]:
    created = await call(live, who, "POST", "/api/runs", json={"definition": "leave", **body})
    assert created.status_code == 201, created.text
    run: dict[str, Any] = created.json()
    return run


async def inbox(live: LiveServer, who: str, **params: Any) -> dict[str, Any]:
    found = await call(live, who, "GET", "/api/tasks", params=params)
    assert found.status_code == 200, found.text
    page: dict[str, Any] = found.json()
    return page


def run_ids(page: dict[str, Any]) -> list[str]:
    return [t["run_id"] for t in page["items"]]


@asynccontextmanager
async def unchanged(live: LiveServer, run_id: str, *, inboxes: bool = True) -> AsyncIterator[None]:
    """The run, its history (and everyone's inbox) are the same after the block."""

    async def state() -> tuple[Any, ...]:
        run = (await call(live, "admin", "GET", f"/api/runs/{run_id}")).json()
        past = (await call(live, "admin", "GET", f"/api/runs/{run_id}/history")).json()
        people = ("admin", "mia", "max", "hal", "dora") if inboxes else ()
        everyone = [await inbox(live, who) for who in people]
        return run, past, everyone

    before = await state()
    yield
    assert await state() == before


@contextmanager
def clock_moved_back(live: LiveServer, by: timedelta) -> Iterator[None]:
    """Transitions in the block happen `by` earlier (their tasks open and fall due then)."""
    dispatcher = live.runtime.dispatcher
    real = dispatcher.clock

    def earlier() -> datetime:
        return real() - by

    dispatcher.clock = earlier
    try:
        yield
    finally:
        dispatcher.clock = real

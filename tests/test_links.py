"""Approval links through a real server, on SQLite and PostgreSQL: a task's notification
carries a link per person who may decide it; opening one changes nothing; confirming decides
as that person with the API's checks; a link is dead once used, once the run moved on, or
after its expiry; an altered or foreign link is refused; an open server makes none."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.helpers import LiveServer, eventually, serve
from tests.tasks_support import call, new_leave, people_server, unchanged
from tests.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
async def told(database_url: str) -> AsyncIterator[tuple[LiveServer, Receiver]]:
    async with webhook_receiver() as receiver, people_server(database_url) as live:
        hook = await call(
            live, "admin", "POST", "/api/webhooks",
            json={"url": receiver.url, "events": ["task.created"]},
        )  # fmt: skip
        receiver.secret = hook.json()["secret"]
        yield live, receiver


async def links_for(receiver: Receiver, run_id: str) -> dict[tuple[str, str], str]:
    def created() -> list[dict[str, Any]]:
        return [
            r.body
            for r in receiver.received
            if r.type == "task.created" and r.body["data"]["run_id"] == run_id
        ]

    async def arrived() -> bool:
        return bool(created())

    await eventually(arrived)
    message = created()[0]
    return {(k["actor"], k["event"]): k["url"] for k in message["data"]["links"]}


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


async def confirm(live: LiveServer, url: str, reason: str = "") -> Any:
    return await live.client.post(path_of(url), data={"reason": reason})


async def test_links_go_to_who_may_decide_and_decide_as_them(
    told: tuple[LiveServer, Receiver],
) -> None:
    live, receiver = told
    run = await new_leave(live)
    links = await links_for(receiver, run["id"])
    assert set(links) == {(p, e) for p in ("mia", "max", "mop") for e in ("approve", "reject")}
    async with unchanged(live, run["id"]):  # opening a link (a mail scanner) changes nothing
        opened = await live.client.get(path_of(links["mia", "approve"]))
        assert opened.status_code == 200 and "text/html" in opened.headers["content-type"]
        assert "mia" in opened.text and "approve" in opened.text and "<form" in opened.text
    done = await confirm(live, links["mia", "approve"], "fine by me")
    assert done.status_code == 200, done.text
    past = (await call(live, "olga", "GET", f"/api/runs/{run['id']}/history")).json()["items"]
    assert [(e["event"], e["actor"], e["reason"]) for e in past][-1] == (
        "approve", "mia", "fine by me"
    )  # fmt: skip
    async with unchanged(live, run["id"]):
        again = await confirm(live, links["mia", "approve"])  # used
        assert again.status_code == 409 and "already used" in again.text, again.text
        other = await confirm(live, links["max", "reject"], "no")  # the run moved on
        assert other.status_code == 409 and "moved on" in other.text
        assert (await live.client.get(path_of(links["max", "reject"]))).status_code == 409


async def test_a_link_dies_when_the_run_moves_on_even_where_it_waits(
    told: tuple[LiveServer, Receiver],
) -> None:
    live, receiver = told
    run = await new_leave(live)
    url = (await links_for(receiver, run["id"]))["mia", "approve"]
    for control in ("pause", "resume"):  # back where it was, at a later version
        assert (await call(live, "olga", "POST", f"/api/runs/{run['id']}/{control}")).is_success
    async with unchanged(live, run["id"]):
        refused = await confirm(live, url)
        assert refused.status_code == 409 and "moved on" in refused.text


async def test_altered_and_foreign_links_are_refused(
    told: tuple[LiveServer, Receiver], database_url: str
) -> None:
    live, receiver = told
    run = await new_leave(live)
    url = (await links_for(receiver, run["id"]))["mia", "approve"]
    body, mac = path_of(url).removeprefix("/links/").split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    async with unchanged(live, run["id"]):
        for token in (forged, body + ".", "x", "a.b.c", "%00", "A" * 3000):
            refused = await live.client.post(f"/links/{token}", data={"reason": ""})
            assert refused.status_code in (400, 403, 404), (token, refused.status_code)
            assert (await live.client.get(f"/links/{token}")).status_code in (400, 403, 404)
    # Another server (other tokens) does not honour this server's links.
    async with serve(database_url, tokens="mia:approver:other") as stranger:
        assert (await stranger.client.post(path_of(url))).status_code == 403


async def test_a_claimed_task_links_only_its_assignee(told: tuple[LiveServer, Receiver]) -> None:
    live, receiver = told
    run = await new_leave(live)
    await links_for(receiver, run["id"])
    await call(live, "mia", "POST", f"/api/runs/{run['id']}/tasks/claim")
    hook = await call(
        live, "admin", "POST", "/api/webhooks",
        json={"url": receiver.url, "events": ["task.reassigned"]},
    )  # fmt: skip
    assert hook.status_code == 201
    receiver.secret = hook.json()["secret"]  # the newest subscription's deliveries
    moved = await call(
        live, "olga", "POST", f"/api/runs/{run['id']}/tasks/reassign", json={"to": "max"}
    )
    assert moved.status_code == 200

    async def reassigned() -> bool:
        return any(r.type == "task.reassigned" for r in receiver.received)

    await eventually(reassigned)
    message = next(r.body for r in receiver.received if r.type == "task.reassigned")
    assert {k["actor"] for k in message["data"]["links"]} == {"max"}


async def test_expired_links_are_dead(database_url: str) -> None:
    async with (
        webhook_receiver() as receiver,
        people_server(database_url, link_ttl_s=0.001) as live,
    ):
        hook = await call(live, "admin", "POST", "/api/webhooks", json={"url": receiver.url})
        receiver.secret = hook.json()["secret"]
        run = await new_leave(live)
        url = (await links_for(receiver, run["id"]))["mia", "approve"]
        async with unchanged(live, run["id"]):
            refused = await confirm(live, url)
            assert refused.status_code == 409 and "expired" in refused.text


async def test_a_link_is_confirmed_in_a_browser(
    told: tuple[LiveServer, Receiver], browser: Browser
) -> None:
    live, receiver = told
    run = await new_leave(live)
    url = (await links_for(receiver, run["id"]))["max", "reject"]
    page = await browser.new_page()
    page.on("pageerror", lambda exc: pytest.fail(f"page error: {exc}"))
    opened = await page.goto(live.url + path_of(url))
    assert opened is not None and opened.status == 200
    await expect(page.locator("h1")).to_have_text("Reject?")
    await expect(page.locator("main")).to_contain_text(run["id"])
    view = (await call(live, "olga", "GET", f"/api/runs/{run['id']}")).json()
    assert view["version"] == run["version"]  # the page alone changed nothing
    await page.fill("textarea[name=reason]", "not this week")
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Done")
    await expect(page.locator("main")).to_contain_text("refused")
    past = (await call(live, "olga", "GET", f"/api/runs/{run['id']}/history")).json()["items"]
    assert (past[-1]["event"], past[-1]["actor"], past[-1]["reason"]) == (
        "reject", "max", "not this week"
    )  # fmt: skip
    await page.go_back()
    await page.reload()  # the page again, for a link now used: it says so, and does nothing
    await expect(page.locator("main")).to_contain_text("moved on")
    await page.close()

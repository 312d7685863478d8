"""Human tasks in the web monitor, in headless Chromium: "Awaiting me" and its live count,
claiming from a run's view, a disabled button that says why, a decision's typed form, and a
bulk decision. SQLite only, like the other monitor tests: the browser is what is under test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from signoff.engine.charts.describe import describe
from signoff.engine.documents.compile import compile_document
from tests.helpers import LiveServer, signed_in
from tests.tasks_support import (
    EXPENSE,
    LEAVE,
    call,
    clock_moved_back,
    headers,
    inbox,
    new_leave,
    people_server,
    run_ids,
)

pytestmark = pytest.mark.slow  # Chromium

SCREENSHOT = os.environ.get("SIGNOFF_AWAITING_SCREENSHOT")  # set to refresh docs/awaiting-me.png


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with people_server(f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}") as server:
        document = {"format": "yaml", "document": EXPENSE}
        deployed = await call(server, "admin", "POST", "/api/definitions", json=document)
        assert deployed.status_code == 201, deployed.text
        yield server


async def new_run(live: LiveServer, definition: str, ref_id: str) -> str:
    body = {"definition": definition, "ref_type": "employee", "ref_id": ref_id}
    created = await call(live, "olga", "POST", "/api/runs", json=body)
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


def refs(page: Page) -> Locator:
    """The inbox's items, as their refs, in the order shown."""
    return page.locator("#inbox-list li .ref")


async def open_run(page: Page, run_id: str) -> None:
    await page.click(f'#inbox-list button.open[data-run-id="{run_id}"]')
    await expect(page.locator("#run-title")).to_contain_text(run_id)


async def test_mia_opens_on_awaiting_me_whose_count_follows_the_feed(
    browser: Browser, live: LiveServer, tmp_path: Path
) -> None:
    with clock_moved_back(live, timedelta(hours=2)):
        await new_run(live, "expense", "x-late")  # due an hour ago
    await new_run(live, "leave", "e-1")  # due in two days
    await new_run(live, "expense", "x-1")  # due in an hour, opened last
    await call(live, "olga", "POST", "/api/runs", json={"definition": "panel"})  # not hers

    page = await signed_in(browser, live.url, "mia-secret")
    await expect(page.locator("#inbox")).to_be_visible()
    await expect(page.locator("#runs-card")).to_be_hidden()
    count = page.locator("#inbox-count")
    await expect(count).to_have_text("3")
    await expect(count).to_have_attribute("data-overdue", "1")
    await expect(refs(page)).to_have_text(["employee x-late", "employee x-1", "employee e-1"])
    late = page.locator('#inbox-list li[data-overdue="true"]')
    await expect(late.locator(".ref")).to_have_text("employee x-late")
    await expect(late.locator(".badge.overdue")).to_have_text("overdue")
    await expect(page.locator("#inbox-summary")).to_have_text("3 awaiting you, 1 overdue")

    await page.select_option("#inbox-sort", "age")  # oldest first
    await expect(refs(page)).to_have_text(["employee x-late", "employee e-1", "employee x-1"])
    await page.select_option("#inbox-definition", "expense")
    await expect(refs(page)).to_have_text(["employee x-late", "employee x-1"])
    await expect(count).to_have_text("3")  # the badge counts everything awaiting her
    await page.select_option("#inbox-definition", "")

    # New work reaches her without a reload; work decided elsewhere leaves.
    await new_run(live, "leave", "e-2")
    await expect(count).to_have_text("4")
    await expect(refs(page)).to_have_count(4)
    await expect(page.locator('#inbox-definition option[value="leave"]')).to_have_text("leave (2)")
    x1 = run_ids(await inbox(live, "mia", ref_id="x-1"))[0]
    await call(live, "admin", "POST", f"/api/runs/{x1}/approve")
    await expect(count).to_have_text("3")
    await expect(refs(page)).to_have_text(["employee x-late", "employee e-1", "employee e-2"])

    await open_run(page, run_ids(await inbox(live, "mia", ref_id="x-late"))[0])
    await expect(page.locator('#tasks li[data-slot="review"] .due')).to_contain_text("overdue")
    # For the README: a leave request open beside the inbox, two tasks picked.
    e1 = run_ids(await inbox(live, "mia", ref_id="e-1"))[0]
    await page.check(f'#inbox-list input.pick[data-run-id="{e1}"]')
    await page.check('#inbox-list li[data-overdue="true"] input.pick')
    await open_run(page, e1)
    await expect(page.locator("#diagram svg")).to_have_count(1)
    await page.screenshot(path=SCREENSHOT or str(tmp_path / "awaiting-me.png"), full_page=True)
    await page.close()


async def test_past_the_count_limit_the_badge_says_so(browser: Browser, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limited.db'}"
    async with people_server(url, task_count_limit=2) as live:
        for i in range(3):
            await new_leave(live, ref_type="employee", ref_id=f"e-{i}")
        page = await signed_in(browser, live.url, "mia-secret")
        count = page.locator("#inbox-count")
        await expect(count).to_have_text("2+")
        await expect(count).to_have_attribute("data-exact", "false")
        await expect(page.locator("#inbox-summary")).to_have_text("2+ awaiting you")
        leave = page.locator('#inbox-definition option[value="leave"]')
        await expect(leave).to_have_text("leave (2+)")
        await expect(refs(page)).to_have_count(3)  # the list is a page, not the counts
        await page.close()


async def test_an_operator_opens_on_all_runs(browser: Browser, live: LiveServer) -> None:
    # Nothing awaits an operator (nor anyone on an open server: tests/test_monitor.py).
    page = await signed_in(browser, live.url, "olga-secret")
    await expect(page.locator("#runs-card")).to_be_visible()
    await expect(page.locator("#views")).to_be_hidden()
    await page.close()


async def test_claiming_from_the_run_view_takes_the_task_from_max(
    browser: Browser, live: LiveServer
) -> None:
    run = await new_leave(live, ref_type="employee", ref_id="e-9")
    mia = await signed_in(browser, live.url, "mia-secret")
    max_ = await signed_in(browser, live.url, "max-secret")
    await expect(max_.locator("#inbox-count")).to_have_text("1")

    await open_run(mia, run["id"])
    task = mia.locator('#tasks li[data-slot="manager_review"]')
    await expect(task).to_contain_text("for mia, max, mop")
    await expect(task.locator(".assignee")).to_have_text("unassigned")
    claim = task.locator('button[data-action="claim"]')
    await expect(claim).to_have_attribute("data-allowed", "true")  # the server's verdict came
    await claim.click()
    await expect(task.locator(".assignee")).to_have_text("mia")
    await expect(task.locator('button[data-action="release"]')).to_be_enabled()
    await expect(task.locator('button[data-action="delegate"]')).to_be_visible()

    # max's page follows: the task left his inbox, and his Approve says why it is not his.
    await expect(max_.locator("#inbox-count")).to_have_text("0")
    await expect(max_.locator("#inbox-list li")).to_have_count(0)
    await expect(max_.locator("#inbox-empty")).to_be_visible()
    assert run["id"] not in run_ids(await inbox(live, "max"))
    await max_.click("#tab-runs")
    await max_.click(f'#run-list button[data-run-id="{run["id"]}"]')
    approve = max_.locator('#actions button[data-event="approve"]')
    await expect(approve).to_be_disabled()
    await expect(approve).to_have_attribute("data-reasons", "claimed")
    past = (await call(live, "admin", "GET", f"/api/runs/{run['id']}/history")).json()["items"]
    assert (past[-1]["event"], past[-1]["actor"]) == ("task.claim", "mia")
    await mia.close()
    await max_.close()


async def test_an_operator_reassigns_and_the_assignee_delegates_by_name(
    browser: Browser, live: LiveServer
) -> None:
    run = await new_leave(live, ref_type="employee", ref_id="e-7")
    olga = await signed_in(browser, live.url, "olga-secret")
    await olga.click(f'#run-list button[data-run-id="{run["id"]}"]')
    task = olga.locator('#tasks li[data-slot="manager_review"]')
    await expect(task.locator('button[data-action="delegate"]')).to_have_count(0)  # not hers
    await task.locator("input.task-to").fill("mia")
    await task.locator('button[data-action="reassign"]').click()
    await expect(task.locator(".assignee")).to_have_text("mia")

    mia = await signed_in(browser, live.url, "mia-secret")
    await open_run(mia, run["id"])
    mine = mia.locator('#tasks li[data-slot="manager_review"]')
    await mine.locator("input.task-to").fill("max")
    await mine.locator('button[data-action="delegate"]').click()
    await expect(mine.locator(".assignee")).to_have_text("max (for mia)")
    await expect(task.locator(".assignee")).to_have_text("max (for mia)")  # olga's page, live
    assert run_ids(await inbox(live, "max")) == [run["id"]]
    await olga.close()
    await mia.close()


async def test_a_disabled_approve_tells_ann_why(browser: Browser, live: LiveServer) -> None:
    run = await new_leave(live, ref_type="employee", ref_id="e-3")
    ann = await signed_in(browser, live.url, "ann-secret")
    await expect(ann.locator("#inbox-count")).to_have_text("0")
    await ann.click("#tab-runs")
    await ann.click(f'#run-list button[data-run-id="{run["id"]}"]')
    approve = ann.locator('#actions button[data-event="approve"]')
    await expect(approve).to_be_disabled()
    why = await call(live, "ann", "GET", f"/api/runs/{run['id']}/permissions")
    verdict = next(e for e in why.json()["events"] if e["event"] == "approve")
    assert not verdict["allowed"] and verdict["reasons"], verdict
    await expect(approve).to_have_attribute("title", verdict["reasons"][0]["message"])
    await expect(approve).to_have_attribute(
        "title", "ann is not among those who decide in manager_review: mia or max or mop."
    )
    await expect(approve).to_have_attribute("data-reasons", "group")
    claim = ann.locator('#tasks button[data-action="claim"]')
    await expect(claim).to_be_disabled()  # she is not among its candidates either
    # mia, who may, sees the same button enabled.
    mia = await signed_in(browser, live.url, "mia-secret")
    await open_run(mia, run["id"])
    await expect(mia.locator('#actions button[data-event="approve"]')).to_have_attribute(
        "data-allowed", "true"
    )
    await ann.close()
    await mia.close()


async def test_the_typed_approve_form_shows_the_servers_refusal_then_decides(
    browser: Browser, live: LiveServer
) -> None:
    run = await new_leave(live, ref_type="employee", ref_id="e-4")
    page = await signed_in(browser, live.url, "mia-secret")
    await open_run(page, run["id"])
    form = page.locator('#event-forms fieldset[data-event="approve"]')
    days = form.locator('input[data-field="days"]')
    await expect(days).to_have_attribute("type", "number")
    await expect(days).to_have_attribute("min", "1")
    await expect(days).to_have_attribute("max", "60")
    await expect(page.locator('#event-forms fieldset[data-event="reject"]')).to_have_count(0)

    await days.fill("0")
    await page.click('#actions button[data-event="approve"]')
    problem = form.locator(".problem")
    await expect(problem).to_contain_text("0 is less than the minimum of 1 (at $.days)")
    await expect(page.locator("#error")).to_be_hidden()  # beside the form, not in the banner
    await expect(page.locator("#business-state")).to_have_text("Manager review")

    await days.fill("3")
    await page.click('#actions button[data-event="approve"]')
    await expect(page.locator("#business-state")).to_have_text("Hr review")
    past = (await call(live, "admin", "GET", f"/api/runs/{run['id']}/history")).json()["items"]
    assert (past[-1]["event"], past[-1]["data"]) == ("approve", {"days": 3})
    await page.close()


async def test_a_bulk_reject_of_two_selected_reports_each(
    browser: Browser, live: LiveServer
) -> None:
    runs = [await new_leave(live, ref_type="employee", ref_id=f"b-{i}") for i in range(3)]
    page = await signed_in(browser, live.url, "mia-secret")
    await expect(page.locator("#inbox-count")).to_have_text("3")
    for run in runs[:2]:
        await page.check(f'#inbox-list input.pick[data-run-id="{run["id"]}"]')
    await expect(page.locator("#bulk-selected")).to_have_text("2")
    await page.select_option("#bulk-event", "reject")
    await page.fill("#bulk-reason", "budget freeze")
    await page.click("#bulk-apply")

    results = page.locator("#bulk-results li")
    await expect(results).to_have_count(2)
    for i, run in enumerate(runs[:2]):
        await expect(results.nth(i)).to_have_attribute("data-run-id", run["id"])
        await expect(results.nth(i)).to_have_attribute("data-status", "200")
        await expect(results.nth(i)).to_contain_text(f"employee b-{i} · decided")
    await expect(page.locator("#bulk-summary")).to_have_text("reject: 2 decided, 0 refused")
    await expect(refs(page)).to_have_text(["employee b-2"])
    await expect(page.locator("#inbox-count")).to_have_text("1")
    for run in runs[:2]:
        view = (await call(live, "admin", "GET", f"/api/runs/{run['id']}")).json()
        past = (await call(live, "admin", "GET", f"/api/runs/{run['id']}/history")).json()
        assert view["state"] == "refused"
        assert (past["items"][-1]["actor"], past["items"][-1]["reason"]) == ("mia", "budget freeze")
    await page.close()


async def test_a_refused_bulk_decision_names_the_problem_per_run(
    browser: Browser, live: LiveServer
) -> None:
    run = await new_leave(live, ref_type="employee", ref_id="r-1")
    page = await signed_in(browser, live.url, "mia-secret")
    await page.check(f'#inbox-list input.pick[data-run-id="{run["id"]}"]')
    await page.select_option("#bulk-event", "reject")
    await page.click("#bulk-apply")  # no reason: leave requires one to reject
    result = page.locator("#bulk-results li")
    await expect(result).to_have_attribute("data-status", "422")
    await expect(result).to_contain_text("refused: ")
    await expect(page.locator("#bulk-summary")).to_have_text("reject: 0 decided, 1 refused")
    await expect(page.locator(f'#inbox-list input.pick[data-run-id="{run["id"]}"]')).to_be_checked()
    await page.close()


# --- what the monitor reads: the chart description carries decision data and tasks ----------


async def test_a_definition_describes_its_decision_data_and_its_tasks(live: LiveServer) -> None:
    leave = (await live.client.get("/api/definitions/leave", headers=headers("val"))).json()
    assert leave["event_data"] == {
        "approve": {
            "type": "object",
            "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 60}},
            "additionalProperties": False,
        }
    }
    assert leave["tasks"]["manager_review"] == {
        "groups": [],
        "users": ["mia", "max", "mop"],
        "due_after_s": 2 * 86400,
        "remind_after_s": 4 * 3600,
        "escalate_after_s": 86400,
        "escalate_to": "directors",
    }
    assert leave["tasks"]["hr_review"]["due_after_s"] == 5 * 86400
    listed = (await live.client.get("/api/definitions", headers=headers("val"))).json()
    by_name = {d["name"]: d for d in listed["items"]}
    assert by_name["leave"]["event_data"] == leave["event_data"]
    assert by_name["approval"]["event_data"] == {} and by_name["approval"]["tasks"] == {}


class Amount(msgspec.Struct, frozen=True):
    amount: int
    comment: str = ""


def test_a_code_events_type_is_described_as_its_json_schema() -> None:
    import dataclasses

    leave = compile_document(LEAVE, "yaml").definition
    typed = dataclasses.replace(leave, event_schemas={}, event_types={"approve": Amount})
    info: Any = describe(typed)
    assert info.event_data == {"approve": msgspec.json.schema(Amount)}
    assert info.event_data["approve"]["$defs"]["Amount"]["required"] == ["amount"]

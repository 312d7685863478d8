"""The web monitor in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from tests.helpers import LiveServer, serve, signed_in

pytestmark = pytest.mark.slow  # Chromium

SCREENSHOT = os.environ.get("SIGNOFF_SCREENSHOT")  # set to refresh docs/monitor.png
REVIEW_SCREENSHOT = os.environ.get("SIGNOFF_REVIEW_SCREENSHOT")  # docs/monitor-review.png


@pytest.fixture
async def monitor_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with serve(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}") as live:
        yield live


async def open_monitor(browser: Browser, live: LiveServer) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: pytest.fail(f"page error: {exc}"))
    await page.goto(live.url + "/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def processed_run(
    live: LiveServer, headers: dict[str, str], definition: str, input: dict[str, Any]
) -> dict[str, Any]:
    """A run created and sent to processing through the API, as an operator."""
    body = {"definition": definition, "input": input}
    run: dict[str, Any] = (await live.client.post("/api/runs", json=body, headers=headers)).json()
    await live.client.post(f"/api/runs/{run['id']}/process", headers=headers)
    return run


async def lit_in_diagram(page: Page, state: str) -> None:
    """The chart in the page fills `state` (and only it) as active."""
    lit = page.locator("#diagram g.node").filter(has=page.locator('[fill="turquoise"]'))
    await expect(lit.locator("title")).to_have_text([state])


async def test_drive_a_run_end_to_end_while_a_second_window_watches(
    browser: Browser, monitor_server: LiveServer, tmp_path: Path
) -> None:
    page = await open_monitor(browser, monitor_server)
    watcher = await open_monitor(browser, monitor_server)
    await expect(page.locator("#error")).to_be_hidden()

    await page.fill("#create-input", '{"output": 0.9}')
    await page.fill("#create-ref-type", "invoice")
    await page.fill("#create-ref-id", "INV-42")
    await page.click("#create-button")
    business = page.locator("#business-state")
    await expect(business).to_have_attribute("data-state", "unprocessed")
    run_id = (await page.locator("#run-title").text_content() or "").split(" · ")[1]

    # The second window sees the new run arrive live and follows it.
    await watcher.click(f'#run-list button[data-run-id="{run_id}"]')
    await expect(watcher.locator("#business-state")).to_have_text("Unprocessed")

    await expect(page.locator("#actions button")).to_have_text(["Process", "Pause", "Cancel"])
    await page.click('#actions button[data-event="process"]')
    await expect(business).to_have_text("Waiting for approval")  # the worker's step, pushed
    await expect(page.locator("#lifecycle-state")).to_have_text("waiting")
    await expect(page.locator("#ctx-output")).to_have_text("0.9")
    await expect(watcher.locator("#business-state")).to_have_text("Waiting for approval")
    await lit_in_diagram(page, "waiting_for_approval")

    await page.fill("#reason", "numbers check out")
    await page.click('#actions button[data-event="approve"]')
    await expect(business).to_have_text("Finished")
    await expect(page.locator("#lifecycle-state")).to_have_text("completed")
    await lit_in_diagram(page, "finished")
    await expect(watcher.locator("#business-state")).to_have_text("Finished")
    await lit_in_diagram(watcher, "finished")
    await expect(page.locator("#timeline li")).to_have_count(4)
    await expect(page.locator("#timeline li").nth(1)).to_contain_text("there")
    await expect(watcher.locator("#actions button")).to_have_count(0)
    await page.screenshot(path=SCREENSHOT or str(tmp_path / "monitor.png"), full_page=True)


async def test_a_refused_action_shows_the_error(
    browser: Browser, monitor_server: LiveServer
) -> None:
    page = await open_monitor(browser, monitor_server)
    await page.fill("#create-input", '{"output": 0.9}')
    await page.click("#create-button")
    await page.click('#actions button[data-event="process"]')
    await expect(page.locator("#business-state")).to_have_text("Waiting for approval")
    await expect(page.locator("#error")).to_be_hidden()
    await page.click('#actions button[data-event="reject"]')  # no reason given
    await expect(page.locator("#error")).to_be_visible()
    await expect(page.locator("#error-detail")).to_contain_text("reason")
    await expect(page.locator("#business-state")).to_have_text("Waiting for approval")
    await page.fill("#create-input", "{not json")
    await page.click("#create-button")
    await expect(page.locator("#error-title")).to_have_text("Input is not JSON")


async def test_the_page_reconnects_and_resumes_after_a_drop(
    browser: Browser, monitor_server: LiveServer
) -> None:
    page = await open_monitor(browser, monitor_server)
    first = await monitor_server.client.post("/api/runs", json={"definition": "approval"})
    run_id = first.json()["id"]
    await expect(page.locator(f'#run-list button[data-run-id="{run_id}"]')).to_have_count(1)
    monitor_server.runtime.feed.disconnect_all()  # the server ends every stream
    await monitor_server.client.post(f"/api/runs/{run_id}/pause")  # while the page is away
    await page.click(f'#run-list button[data-run-id="{run_id}"]')
    await expect(page.locator("#lifecycle-state")).to_have_text("paused")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    second = await monitor_server.client.post("/api/runs", json={"definition": "approval"})
    await expect(
        page.locator(f'#run-list button[data-run-id="{second.json()["id"]}"]')
    ).to_have_count(1)


XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


async def test_hostile_text_renders_as_text(browser: Browser, monitor_server: LiveServer) -> None:
    client = monitor_server.client
    run = (
        await client.post(
            "/api/runs",
            json={
                "definition": "approval",
                "ref_type": "<b>bold</b>",
                "ref_id": XSS,
                "input": {"output": 0.9, "note": XSS},
            },
        )
    ).json()
    await client.post(f"/api/runs/{run['id']}/process")
    page = await open_monitor(browser, monitor_server)
    await page.click(f'#run-list button[data-run-id="{run["id"]}"]')
    await expect(page.locator("#business-state")).to_have_text("Waiting for approval")
    await page.fill("#reason", XSS)
    await page.click('#actions button[data-event="reject"]')
    await expect(page.locator("#timeline li").nth(3)).to_contain_text(XSS)
    await expect(page.locator("#run-input")).to_contain_text("<script>window.pwned=1</script>")
    await expect(page.locator("#run-ref")).to_contain_text("<b>bold</b>")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#detail img, #detail script, #run-list b").count() == 0
    policy = (await client.get("/")).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


async def test_the_page_asks_for_a_token_and_shows_what_the_role_may_do(
    browser: Browser, tmp_path: Path
) -> None:
    tokens = "anna:approver:a-secret,otto:operator:o-secret"
    async with serve(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}", tokens=tokens) as live:
        headers = {"Authorization": "Bearer o-secret"}
        run = await processed_run(live, headers, "approval", {"output": 0.9})
        page = await browser.new_page()
        await page.goto(live.url + "/")
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#app")).to_be_hidden()
        await page.fill("#token", "a-secret")
        await page.click("#login-button")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        await expect(page.locator("#whoami")).to_have_text("anna · approver")
        await expect(page.locator("#create-form")).to_be_hidden()  # approvers do not create
        await page.click("#tab-runs")  # a signed-in approver opens on "Awaiting me"
        await page.click(f'#run-list button[data-run-id="{run["id"]}"]')
        await expect(page.locator("#business-state")).to_have_text("Waiting for approval")
        await expect(page.locator("#actions button")).to_have_text(["Approve", "Reject"])
        await page.click('#actions button[data-event="approve"]')
        await expect(page.locator("#business-state")).to_have_text("Finished")
        history = (await live.client.get(f"/api/runs/{run['id']}/history", headers=headers)).json()[
            "items"
        ]
        assert history[-1]["actor"] == "anna"
        assert await page.evaluate("sessionStorage.getItem('signoff-token')") == "a-secret"
        await page.click("#logout")
        await expect(page.locator("#login")).to_be_visible()
        await page.close()


async def test_a_purchase_order_is_reviewed_by_region_in_the_page(
    browser: Browser, tmp_path: Path
) -> None:
    tokens = (
        "otto:operator:o-secret,fay:approver@finance:fay-secret,"
        "finn:approver@finance:finn-secret,lee:approver@legal:lee-secret"
    )
    async with serve(f"sqlite+aiosqlite:///{tmp_path / 'po.db'}", tokens=tokens) as live:
        otto = {"Authorization": "Bearer o-secret"}
        run = await processed_run(live, otto, "purchase_order", {"amount": 25000})

        fay = await signed_in(browser, live.url, "fay-secret")
        await expect(fay.locator("#whoami")).to_have_text("fay · approver @ finance")
        await fay.click("#tab-runs")  # from "Awaiting me", where a signed-in approver opens
        await fay.click(f'#run-list button[data-run-id="{run["id"]}"]')
        await expect(fay.locator("#business-state")).to_have_text("Review")
        # The definition version the run is on (runs stay on theirs) is in the title.
        await expect(fay.locator("#run-title")).to_have_text(f"purchase_order v1 · {run['id']}")
        regions = fay.locator("#regions li")
        await expect(regions).to_have_text(
            ["legal · 0 of 1 approvals", "finance · 0 of 2 approvals"]
        )
        # fay is in finance only: she sees finance's buttons, not legal's.
        await expect(fay.locator("#actions button")).to_have_text(
            ["Approve finance", "Reject finance"]
        )
        await fay.click('#actions button[data-event="approve"][data-region="finance"]')
        await expect(regions).to_have_text(
            ["legal · 0 of 1 approvals", "finance · 1 of 2 approvals (fay)"]
        )
        # She counted once this round: only her veto is left to her.
        await expect(fay.locator("#actions button")).to_have_text(["Reject finance"])
        lit = fay.locator("#diagram g.node").filter(has=fay.locator('[fill="turquoise"]'))
        await expect(lit.locator("title")).to_have_text(["legal_pending", "finance_partial"])
        await fay.screenshot(path=REVIEW_SCREENSHOT or str(tmp_path / "review.png"), full_page=True)

        lee = await signed_in(browser, live.url, "lee-secret")
        await lee.click("#tab-runs")
        await lee.click(f'#run-list button[data-run-id="{run["id"]}"]')
        await expect(lee.locator("#actions button")).to_have_text(["Approve legal", "Reject legal"])
        await lee.click('#actions button[data-event="approve"][data-region="legal"]')
        await expect(lee.locator('#regions li[data-region="legal"]')).to_have_attribute(
            "data-status", "approved"
        )
        # fay's page follows the feed: legal is done there too, and her buttons stay finance's.
        await expect(fay.locator('#regions li[data-region="legal"]')).to_have_text(
            "legal · approved (lee)"
        )

        finn = {"Authorization": "Bearer finn-secret"}
        done = await live.client.post(
            f"/api/runs/{run['id']}/approve", json={"region": "finance"}, headers=finn
        )
        assert done.status_code == 200, done.text
        for page in (fay, lee):
            await expect(page.locator("#business-state")).to_have_text("Approved")
            await expect(page.locator("#review")).to_be_hidden()
            await expect(page.locator("#actions button")).to_have_count(0)
        await expect(fay.locator("#timeline li").last).to_contain_text("approve (finance) by finn")
        await fay.close()
        await lee.close()


PHONE = ViewportSize(width=390, height=844)


async def new_run(
    live: LiveServer,
    definition: str = "approval",
    *,
    ref_id: str | None = None,
    process: bool = False,
    headers: dict[str, str] | None = None,
) -> str:
    """The id of a run created through the API (and sent to processing, with `process`)."""
    body: dict[str, Any] = {"definition": definition, "input": {"output": 0.9, "amount": 100}}
    if ref_id is not None:
        body |= {"ref_type": "invoice", "ref_id": ref_id}
    created = await live.client.post("/api/runs", json=body, headers=headers)
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    if process:
        await live.client.post(f"/api/runs/{run_id}/process", headers=headers)
    return run_id


def listed(page: Page) -> Locator:
    """The short ids the run list shows, newest first (compare with `shown(...)`)."""
    return page.locator("#run-list button .id")


def shown(*run_ids: str) -> list[str]:
    return [run_id[-12:] for run_id in run_ids]


async def test_the_search_finds_runs_by_ref_id_prefix_beyond_the_first_page(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    old = await new_run(live, ref_id="INV-2024-0001")
    for i in range(50):  # a full first page without it
        await new_run(live, ref_id=f"PO-{i}")
    page = await open_monitor(browser, live)
    await expect(listed(page)).to_have_count(50)
    await expect(page.locator(f'#run-list button[data-run-id="{old}"]')).to_have_count(0)
    await page.fill("#search", "INV-2024")
    await expect(listed(page)).to_have_text(shown(old))  # the API searched, not the page
    # Live: a ref that only contains the prefix stays out, one that starts with it comes in
    # (the feed is in order, so the first has arrived by the time the second shows).
    miss = await new_run(live, ref_id="PO-INV-2024")
    hit = await new_run(live, ref_id="INV-2024-0002")
    await expect(listed(page)).to_have_text(shown(hit, old))
    assert miss not in await page.locator("#run-list").inner_html()


async def test_the_definition_filter_lists_only_its_runs_and_keeps_to_it_live(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    approval = await new_run(live, "approval")
    order = await new_run(live, "purchase_order")
    page = await open_monitor(browser, live)
    await expect(listed(page)).to_have_text(shown(order, approval))
    await page.select_option("#definition-filter", "purchase_order")
    await expect(listed(page)).to_have_text(shown(order))
    await new_run(live, "approval")  # not a purchase order: it must not show up
    late_order = await new_run(live, "purchase_order")
    await expect(listed(page)).to_have_text(shown(late_order, order))
    await page.select_option("#definition-filter", "")
    await expect(listed(page)).to_have_count(4)


async def test_the_lifecycle_filter_follows_runs_into_and_out_of_it(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    paused = await new_run(live)
    await live.client.post(f"/api/runs/{paused}/pause")
    queued = await new_run(live)
    third = await new_run(live)
    page = await open_monitor(browser, live)
    await expect(listed(page)).to_have_text(shown(third, queued, paused))
    await page.select_option("#lifecycle-filter", "paused")
    await expect(listed(page)).to_have_text(shown(paused))
    await live.client.post(f"/api/runs/{queued}/pause")  # joins the list
    await expect(listed(page)).to_have_text(shown(queued, paused))
    await live.client.post(f"/api/runs/{paused}/resume")  # leaves it
    await expect(listed(page)).to_have_text(shown(queued))
    await new_run(live)  # queued, not paused: it must not show up
    await live.client.post(f"/api/runs/{third}/pause")
    await expect(listed(page)).to_have_text(shown(third, queued))


APPROVAL_STATES = ["Unprocessed", "Sending to queue", "Waiting for approval", "Finished", "Error"]


async def test_the_state_filter_offers_only_states_a_listed_run_can_be_in(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    waiting = await new_run(live, process=True)
    unprocessed = await new_run(live)
    page = await open_monitor(browser, live)
    states = page.locator("#state-filter option")
    # Every definition's top-level states, each once ("Error" is in both), no region states.
    await expect(states).to_have_text(
        ["all", *APPROVAL_STATES, "Draft", "Processing", "Review", "Approved"]
    )
    await expect(page.locator("#lifecycle-filter option")).to_have_text(
        ["all", "Queued", "Running", "Waiting", "Errored", "Paused", "Completed", "Cancelled"]
    )
    await page.select_option("#state-filter", "review")
    await page.select_option("#definition-filter", "purchase_order")
    await expect(states).to_have_text(["all", "Draft", "Processing", "Review", "Approved", "Error"])
    await expect(page.locator("#state-filter")).to_have_value("review")  # still offered: kept
    await page.select_option("#definition-filter", "approval")
    await expect(states).to_have_text(["all", *APPROVAL_STATES])
    await expect(page.locator("#state-filter")).to_have_value("")  # no approval run is in review
    await expect(listed(page)).to_have_text(shown(unprocessed, waiting))
    await page.select_option("#state-filter", "waiting_for_approval")
    await expect(listed(page)).to_have_text(shown(waiting))


async def test_an_empty_list_says_what_to_do(browser: Browser, monitor_server: LiveServer) -> None:
    page = await open_monitor(browser, monitor_server)
    empty = page.locator("#empty")
    await expect(page.locator("#empty-text")).to_have_text(
        "No runs yet: create one with the form above."
    )
    await expect(page.locator("#clear-filters")).to_be_hidden()
    await page.fill("#create-ref-id", "INV-7")
    await page.click("#create-button")
    await expect(listed(page)).to_have_count(1)
    await expect(empty).to_be_hidden()
    await page.fill("#search", "PO-")
    await page.select_option("#lifecycle-filter", "paused")
    await expect(page.locator("#empty-text")).to_have_text("No runs match these filters.")
    await expect(page.locator("#clear-filters")).to_be_visible()
    await expect(listed(page)).to_have_count(0)
    await page.click("#clear-filters")
    await expect(page.locator("#search")).to_have_value("")
    await expect(page.locator("#lifecycle-filter")).to_have_value("")
    await expect(listed(page)).to_have_count(1)
    await expect(empty).to_be_hidden()


async def test_an_approver_is_told_runs_appear_once_created(
    browser: Browser, tmp_path: Path
) -> None:
    tokens = "anna:approver:a-secret,otto:operator:o-secret"
    async with serve(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tokens=tokens) as live:
        page = await signed_in(browser, live.url, "a-secret")
        await page.click("#tab-runs")  # from "Awaiting me", where a signed-in approver opens
        empty = page.locator("#empty")
        await expect(page.locator("#empty-text")).to_have_text(
            "No runs yet: they appear here as soon as an operator creates one."
        )
        run_id = await new_run(live, headers={"Authorization": "Bearer o-secret"})
        await expect(listed(page)).to_have_text(shown(run_id))  # brought by the feed
        await expect(empty).to_be_hidden()
        await page.close()


# Each visible badge: its text, its height in font sizes (one line is about 1.8), how it wraps.
BADGE_SHAPES = """() => [...document.querySelectorAll('.badge')]
    .filter((b) => b.offsetParent !== null)
    .map((b) => [b.textContent,
                 b.getBoundingClientRect().height / parseFloat(getComputedStyle(b).fontSize),
                 getComputedStyle(b).whiteSpace])"""


async def test_on_a_phone_a_tapped_run_shows_its_detail_with_whole_badges_and_a_legible_chart(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    runs = [await new_run(live, ref_id=f"INV-2024-{i:04d}", process=True) for i in range(6)]
    # A ref with no break opportunity: it must not squeeze the badges beside it.
    runs.append(await new_run(live, ref_id="INV2024SUPPLEMENTARYORDER0006", process=True))
    page = await browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    await page.goto(live.url + "/")
    waiting = page.locator('#run-list .badge[data-state="waiting_for_approval"]')
    await expect(waiting).to_have_count(7)
    await expect(page.locator("#detail")).to_be_hidden()

    await page.locator(f'#run-list button[data-run-id="{runs[0]}"]').tap()  # the list's last
    await expect(page.locator("#run-title")).to_contain_text(runs[0])
    await expect(page.locator("#run-title")).to_be_in_viewport(ratio=1)
    box = await page.locator("#detail").bounding_box()
    # At the top of the screen (within a pixel: the layout above it has fractional heights).
    assert box is not None and -1 < box["y"] < PHONE["height"], box

    shapes = await page.evaluate(BADGE_SHAPES)
    assert len(shapes) == 2 * 7 + 2, shapes  # two per run in the list, two in the detail
    assert all(height < 2.4 for _, height, _ in shapes), shapes  # one line, not stretched
    assert all(wrap == "nowrap" for _, _, wrap in shapes), shapes  # and never broken over two
    sideways = await page.locator("#run-list").evaluate("(l) => l.scrollWidth - l.clientWidth")
    assert sideways <= 0  # the long ref wraps inside its row

    svg = page.locator("#diagram svg")
    await expect(svg).to_have_count(1)
    natural = await svg.evaluate("(s) => s.width.baseVal.value")  # its own width, in px
    fitted = await svg.evaluate("(s) => s.getBoundingClientRect().width")
    assert fitted < PHONE["width"] < natural  # shrunk to fit the phone: too small to read
    await page.locator("#diagram-zoom").tap()
    await expect(page.locator("#diagram-zoom")).to_have_attribute("aria-pressed", "true")
    assert await svg.evaluate("(s) => s.getBoundingClientRect().width") >= natural - 1
    # The chart scrolls in its box; the page stays the phone's width.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.locator("#diagram-zoom").tap()
    await expect(page.locator("#diagram-zoom")).to_have_text("Enlarge")
    assert await svg.evaluate("(s) => s.getBoundingClientRect().width") == fitted
    await page.close()


async def test_a_whole_session_logs_no_console_error_and_no_failed_request(
    browser: Browser, monitor_server: LiveServer
) -> None:
    live = monitor_server
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    await page.goto(live.url + "/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")
    icon = await page.request.get(f"{live.url}/static/favicon.svg")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")

    await page.fill("#create-input", '{"output": 0.9}')
    await page.fill("#create-ref-id", "INV-1")
    await page.click("#create-button")
    await page.click('#actions button[data-event="process"]')
    await expect(page.locator("#business-state")).to_have_text("Waiting for approval")
    await page.click('#actions button[data-event="approve"]')
    await expect(page.locator("#business-state")).to_have_text("Finished")
    await page.click("#diagram-zoom")
    await page.fill("#search", "INV-")
    await page.select_option("#definition-filter", "approval")
    await page.select_option("#lifecycle-filter", "completed")
    await expect(listed(page)).to_have_count(1)
    await page.select_option("#lifecycle-filter", "cancelled")
    await expect(page.locator("#empty")).to_be_visible()
    await page.click("#clear-filters")
    await expect(listed(page)).to_have_count(1)  # listed again: the last request has answered
    assert problems == []
    await page.close()


async def test_a_deployed_documents_create_form_is_built_from_its_input_schema(
    browser: Browser, monitor_server: LiveServer
) -> None:
    from tests.test_documents import YAML_TEXT

    deployed = await monitor_server.client.post(
        "/api/definitions", json={"format": "yaml", "document": YAML_TEXT}
    )
    assert deployed.status_code == 201, deployed.text
    page = await open_monitor(browser, monitor_server)
    await page.select_option("#create-definition", "expense_claim")
    fields = page.locator("#create-fields input")
    await expect(fields).to_have_count(4)  # amount, currency, payee, purpose
    await page.fill('#create-fields input[data-field="amount"]', "7500")
    await page.fill('#create-fields input[data-field="payee"]', "Grace")
    await page.click("#create-button")
    await expect(page.locator("#run-title")).to_contain_text("expense_claim v1")
    await expect(page.locator("#run-input")).to_contain_text('"amount": 7500')
    await expect(page.locator("#run-input")).to_contain_text('"payee": "Grace"')
    # The chart's own event, sent from its button.
    await page.click('#actions button[data-event="submit"]')
    await expect(page.locator("#business-state")).to_have_text("Manager review")
    # A required field left empty: the browser does not send the form.
    await page.fill('#create-fields input[data-field="payee"]', "")
    await page.click("#create-button")
    assert await page.locator('#create-fields input[data-field="payee"]').evaluate(
        "input => !input.validity.valid"
    )
    await page.close()


async def test_a_run_of_a_definition_this_server_lacks_is_shown_and_offers_no_action(
    browser: Browser, tmp_path: Path, example_on_path: None
) -> None:
    from expense_report import pack

    from signoff import Registry, Settings
    from signoff.machines.lifecycle import Lifecycle

    url = f"sqlite+aiosqlite:///{tmp_path / 'foreign.db'}"
    registry = Registry.of_packs([pack(Settings())], Lifecycle)
    async with serve(url, registry=registry) as theirs:
        body = {"definition": "expense_report", "input": {"amount": 5, "payee": "Al"}}
        run_id = (await theirs.client.post("/api/runs", json=body)).json()["id"]
    async with serve(url) as ours:  # Signoff's own charts only
        page = await open_monitor(browser, ours)
        await page.click(f'#run-list button[data-run-id="{run_id}"]')
        await expect(page.locator("#not-loaded")).to_be_visible()
        await expect(page.locator("#business-state")).to_have_text("submitted")
        await expect(page.locator("#actions button")).to_have_count(0)
        await expect(page.locator("#error")).to_be_hidden()  # no chart asked for, no error
        await page.close()

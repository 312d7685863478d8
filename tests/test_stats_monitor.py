"""The monitor's stats view in headless Chromium: after runs were created and decided at known
times, its charts and tables name the right states, percentiles, SLA breaches, approvers and
days. SQLite only, like the other monitor tests: the browser is what is under test."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.helpers import LiveServer, eventually, serve, signed_in

pytestmark = pytest.mark.slow  # Chromium

SCREENSHOT = os.environ.get("SIGNOFF_STATS_SCREENSHOT")  # set to refresh docs/stats.png

TOKENS = "olga:operator:olga-secret,vera:viewer:vera-secret," + ",".join(
    f"{who}:approver:{who}-secret" for who in ("ann", "bob", "cy")
)
END = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # "now" on the server
SLA_S = 86400  # the approval chart's SLA on waiting_for_approval
# Hours each run waits for its decision; every 7th is cancelled instead, every 6th rejected
# first (and approved two hours after it comes back).
WAITS_H = [0.5, 2, 5, 20, 30, 3, 8, 50, 1, 12, 4, 26, 0.25, 6, 16, 2.5, 40, 9, 1.5, 7]
WAITS_H += [3.5, 0.75, 22, 10, 1, 36, 5, 2, 14, 6]
APPROVERS = ("ann", "bob", "cy")
HIGH = {"output": 0.9}  # the job's output: above the threshold, a person decides


@dataclass
class Expected:
    waits: list[float]  # every stay in waiting_for_approval, seconds
    decisions: Counter[str]
    finished: Counter[str]  # day → finished runs
    now: Counter[str]  # state → runs there now


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with serve(f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}", tokens=TOKENS) as server:
        yield server


async def step(live: LiveServer, at: datetime, who: str, path: str, **body: object) -> str:
    live.runtime.dispatcher.clock = lambda: at
    response = await live.client.post(path, json=body or None, headers=bearer(who))
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}-secret"}


async def waiting(live: LiveServer, run_id: str) -> None:
    async def there() -> bool:
        run = await live.client.get(f"/api/runs/{run_id}", headers=bearer("vera"))
        return bool(run.json()["state"] == "waiting_for_approval")

    await eventually(there)


async def seed(live: LiveServer) -> Expected:
    """Thirty approval runs over the four weeks before END, decided as WAITS_H says; two more
    left waiting and one left unprocessed."""
    want = Expected([], Counter(), Counter(), Counter())
    start = END - timedelta(days=29)
    for i, hours in enumerate(WAITS_H):
        at = start + timedelta(hours=i * 22.5)
        run = await step(live, at, "olga", "/api/runs", definition="approval", input=HIGH)
        at += timedelta(minutes=5 + (7 * i) % 40)
        await step(live, at, "olga", f"/api/runs/{run}/process")
        await waiting(live, run)
        at += timedelta(hours=hours)
        want.waits.append(hours * 3600)
        approver = APPROVERS[i % 3]
        if i % 7 == 3:
            await step(live, at, "olga", f"/api/runs/{run}/cancel")
        else:
            if i % 6 == 5:
                await step(live, at, approver, f"/api/runs/{run}/reject", reason="redo")
                want.decisions[approver] += 1
                await waiting(live, run)
                at += timedelta(hours=2)
                want.waits.append(2 * 3600)
            await step(live, at, approver, f"/api/runs/{run}/approve")
            want.decisions[approver] += 1
        want.finished[at.date().isoformat()] += 1
    for _ in range(2):
        run = await step(live, END, "olga", "/api/runs", definition="approval", input=HIGH)
        await step(live, END, "olga", f"/api/runs/{run}/process")
        await waiting(live, run)
    await step(live, END, "olga", "/api/runs", definition="approval")
    want.now.update({"waiting_for_approval": 2, "unprocessed": 1})
    return want


async def test_the_stats_view_shows_time_in_state_breaches_approvers_and_days(
    browser: Browser, live: LiveServer, tmp_path: Path
) -> None:
    want = await seed(live)
    page = await signed_in(browser, live.url, "vera-secret")
    await page.click("#stats-open")
    view = page.locator("#stats-view")
    await expect(view).to_be_visible()
    await expect(page.locator("#runs-card")).to_be_hidden()
    await expect(view).to_have_attribute("data-definition", "approval")
    # The default period: the 30 days up to the server's today.
    await expect(page.locator("#stats-since")).to_have_value("2026-02-15")
    await expect(page.locator("#stats-until")).to_have_value("2026-03-16")

    breaches = sum(1 for w in want.waits if w > SLA_S)
    row = page.locator('#stay-chart g.stay-row[data-state="waiting_for_approval"]')
    await expect(row).to_have_attribute("data-stays", str(len(want.waits)))
    await expect(row).to_have_attribute("data-breaches", str(breaches))
    await expect(row).to_have_attribute("data-sla", str(SLA_S))
    await expect(row).to_have_class("stay-row breached")
    await expect(row.locator("rect.bar")).to_have_count(3)
    waits = sorted(want.waits)
    p50 = float(await row.locator('rect[data-quantile="p50"]').get_attribute("data-seconds") or 0)
    assert abs(p50 - waits[len(waits) // 2 - 1]) <= 0.09 * waits[len(waits) // 2 - 1]
    p99 = float(await row.locator('rect[data-quantile="p99"]').get_attribute("data-seconds") or 0)
    assert abs(p99 - waits[-1]) <= 0.09 * waits[-1]
    await expect(row.locator('rect[data-quantile="p99"]')).to_have_class("bar p99 over")
    await expect(row.locator("line.sla")).to_have_attribute("data-seconds", str(SLA_S))
    label = re.compile(rf"^waiting_for_approval: p50 .*, SLA 24\.0 h, {breaches} breached$")
    await expect(row).to_have_attribute("aria-label", label)
    # States with no SLA and no ended stay (finished, error) draw no row.
    drawn = page.locator("#stay-chart g.stay-row")
    await expect(drawn).to_have_count(3)

    await expect(page.locator("#stats-breaches strong")).to_have_text(str(breaches))
    await expect(page.locator("#stats-finished strong")).to_have_text(str(len(WAITS_H)))
    await expect(page.locator("#stats-now strong")).to_have_text(str(sum(want.now.values())))
    table = page.locator("#state-rows")
    await expect(table.locator('tr[data-state="waiting_for_approval"] td').nth(1)).to_have_text("2")
    await expect(table.locator('tr[data-state="unprocessed"] td').nth(1)).to_have_text("1")

    approvers = page.locator("#approver-rows tr")
    ranked = sorted(want.decisions.items(), key=lambda kv: (-kv[1], kv[0]))
    await expect(approvers).to_have_count(len(ranked))
    for i, (actor, n) in enumerate(ranked):
        await expect(approvers.nth(i)).to_have_attribute("data-actor", actor)
        await expect(approvers.nth(i).locator("td").first).to_have_text(str(n))

    points = page.locator("#throughput-chart circle.point")
    await expect(points).to_have_count(30)
    for day, n in want.finished.items():
        point = page.locator(f'#throughput-chart circle[data-day="{day}"]')
        await expect(point).to_have_attribute("data-finished", str(n))
    cancelled = page.locator('#throughput-chart g.series[data-series="cancelled"]')
    await expect(cancelled).to_have_count(1)

    if SCREENSHOT:
        await page.screenshot(path=SCREENSHOT, full_page=True)

    # A narrower period: since the last decision's day, one run finished or none.
    last = max(want.finished)
    await page.fill("#stats-since", last)
    await page.locator("#stats-since").dispatch_event("change")
    await expect(points).to_have_count((END.date() - datetime.fromisoformat(last).date()).days + 1)
    await expect(page.locator("#stats-finished strong")).to_have_text(str(want.finished[last]))

    # The view follows the feed: a new run is in progress at once.
    await expect(page.locator("#stats-now strong")).to_have_text("3")
    await step(live, END, "olga", "/api/runs", definition="approval")
    await expect(page.locator("#stats-now strong")).to_have_text("4")

    await page.click("#stats-open")
    await expect(page.locator("#runs-card")).to_be_visible()
    await page.close()

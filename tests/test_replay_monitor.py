"""Replay in the web monitor (headless Chromium): the button on a run's detail, and the links
between a run and its replays, kept live by the feed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.helpers import TOKENS, auth, serve, signed_in

pytestmark = pytest.mark.slow  # Chromium

SCREENSHOT = os.environ.get("SIGNOFF_REPLAY_SCREENSHOT")  # set to refresh docs/replay.png


async def test_an_operator_replays_a_run_and_follows_the_links(
    browser: Browser, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}"
    async with serve(url, tokens=TOKENS) as live:
        body = {"definition": "approval", "input": {"output": 0.9}, "ref_type": "invoice",
                "ref_id": "INV-2041"}  # fmt: skip
        made = await live.client.post("/api/runs", json=body, headers=auth("operator"))
        original = made.json()["id"]

        page = await signed_in(browser, live.url, "o-secret")
        await page.click(f'#run-list button[data-run-id="{original}"]')
        await expect(page.locator("#run-title")).to_contain_text(original)
        await expect(page.locator("#replay-links p")).to_have_count(0)
        await page.click("#replay-button")
        # The new run is shown, linked to the original.
        await expect(page.locator("#replay-of button")).to_have_text(original)
        new = (await page.locator("#run-title").text_content() or "").split(" · ")[1]
        assert new != original
        await expect(page.locator("#run-ref")).to_contain_text("INV-2041")
        await expect(page.locator("#business-state")).to_have_text("Unprocessed")

        await page.click("#replay-of button")
        await expect(page.locator("#run-title")).to_contain_text(original)
        await expect(page.locator("#replays button")).to_have_text([new])
        # Someone else replays it, on its own version: the feed adds it here, newest first.
        replayed = await live.client.post(
            f"/api/runs/{original}/replay", params={"same_version": "true"},
            headers=auth("operator"),
        )  # fmt: skip
        other = replayed.json()["id"]
        await expect(page.locator("#replays button")).to_have_text([other, new])
        await page.screenshot(path=SCREENSHOT or str(tmp_path / "replay.png"), full_page=True)
        await page.click(f'#replays button[data-run-id="{other}"]')
        await expect(page.locator("#replay-of button")).to_have_text(original)

        # A viewer sees the links, not the button.
        viewer = await signed_in(browser, live.url, "v-secret")
        await viewer.click(f'#run-list button[data-run-id="{original}"]')
        await expect(viewer.locator("#replays button")).to_have_count(2)
        await expect(viewer.locator("#replay-controls")).to_be_hidden()

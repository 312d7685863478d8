"""The example that lives outside Signoff, as a user runs it: Signoff's wheel and the example's
wheel installed in a fresh virtualenv; a stock `signoff serve` finds the example through its
entry point, with no flag; a payment service on loopback fails now and then; people decide in
the monitor (Chromium), each in their own group's step, with the example's own events."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.helpers import EXAMPLE, eventually, run_ok, signed_in, signoff_serve
from tests.payments import payment_service

pytestmark = pytest.mark.slow  # a virtualenv from wheels, servers, Chromium
TOKENS = (
    "sam:operator:sam-secret,mia:approver@managers:mia-secret,"
    "fay:approver@finance:fay-secret,finn:approver@finance:finn-secret,root:admin:root-secret"
)


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}-secret"}


async def test_the_installed_example_runs_on_a_stock_server_decided_in_the_monitor(
    wheel_venv: Path, database_url: str, browser: Browser, tmp_path: Path
) -> None:
    async with (
        payment_service(fail_every=2) as payments,
        signoff_serve(
            [wheel_venv / "bin" / "signoff"],
            tmp_path,
            {
                "SIGNOFF_DATABASE_URL": database_url,
                "SIGNOFF_TOKENS": TOKENS,
                "EXPENSE_PAYMENT_URL": payments.url,
            },
        ) as (url, log),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        assert any("definitions: " in line and "expense_report v1" in line for line in log)
        names = (await client.get("/api/definitions", headers=bearer("sam"))).json()["items"]
        assert {d["name"] for d in names} >= {"expense_report", "approval", "purchase_order"}
        claim = {"amount": 7500, "payee": "Grace", "purpose": "conference"}
        created = await client.post(
            "/api/runs",
            json={"definition": "expense_report", "input": claim, "ref_id": "EXP-7"},
            headers=bearer("sam"),
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        run_button = f'#run-list button[data-run-id="{run_id}"]'

        # sam submits with the example's own event, from the monitor (POST …/events).
        sam = await signed_in(browser, url, "sam-secret")
        posted: list[str] = []
        sam.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        await sam.click(run_button)
        await sam.click('#actions button[data-event="submit"]')
        await expect(sam.locator("#business-state")).to_have_text("Manager review")
        assert posted == [f"{url}/api/runs/{run_id}/events"]

        # Who decides in each step, in the page: finance sees no button in the manager's step.
        fay = await signed_in(browser, url, "fay-secret")
        await fay.click("#tab-runs")  # from "Awaiting me", where a signed-in approver opens
        await fay.click(run_button)
        await expect(fay.locator("#business-state")).to_have_text("Manager review")
        await expect(fay.locator("#actions button")).to_have_count(0)
        mia = await signed_in(browser, url, "mia-secret")
        await mia.click("#tab-runs")
        await mia.click(run_button)
        await expect(mia.locator("#actions button")).to_have_text(["Approve", "Reject"])
        await mia.click('#actions button[data-event="approve"]')
        await expect(mia.locator("#business-state")).to_have_text("Finance review")
        await expect(mia.locator("#actions button")).to_have_count(0)
        await expect(fay.locator("#actions button")).to_have_text(["Approve", "Reject"])
        await fay.click('#actions button[data-event="approve"]')
        await expect(fay.locator("#timeline li").last).to_contain_text("approve by fay")
        second = await client.post(
            f"/api/runs/{run_id}/events", json={"event": "approve"}, headers=bearer("finn")
        )
        assert second.status_code == 200, second.text

        # The payment job pays through the flaky service; the page shows each attempt.
        await expect(sam.locator("#business-state")).to_have_text("Paid", timeout=30_000)
        await expect(sam.locator('#jobs li[data-status="done"]')).to_contain_text("pay_expense")
        await expect(sam.locator("#jobs .attempts li")).to_have_text(
            [re_text("#1 failed", "503"), re_text("#2 succeeded")]
        )
        assert payments.payments == {run_id: "pay-1"}

        async def recorded() -> bool:
            view = (await client.get(f"/api/runs/{run_id}", headers=bearer("sam"))).json()
            return bool(view["context"].get("payment_id") == "pay-1")

        await eventually(recorded)
        for page in (sam, fay, mia):
            await page.close()

        # The same process as a document, deployed to the running server with the installed
        # command, then decided by the same people.
        document = tmp_path / "expense_claim.yaml"
        document.write_text(
            (EXAMPLE / "expense_report" / "expense_claim.yaml")
            .read_text()
            .replace("http://127.0.0.1:8099/payments", payments.url)
        )
        added = run_ok(
            wheel_venv / "bin" / "signoff", "definitions", "add", document,
            "--url", url, "--token", "root-secret",
        )  # fmt: skip
        assert added.strip() == "expense_claim deployed as version 1"
        claim = {"definition": "expense_claim", "input": {"amount": 90, "payee": "Lin"}}
        created = await client.post("/api/runs", json=claim, headers=bearer("sam"))
        doc_run = created.json()["id"]
        for who, event in (("sam", "submit"), ("mia", "approve"), ("fay", "approve")):
            sent = await client.post(
                f"/api/runs/{doc_run}/events", json={"event": event}, headers=bearer(who)
            )
            assert sent.status_code == 200, sent.text

        async def doc_paid() -> bool:
            view = (await client.get(f"/api/runs/{doc_run}", headers=bearer("sam"))).json()
            return bool(view["state"] == "paid")

        await eventually(doc_paid, timeout=30)


def re_text(*parts: str) -> re.Pattern[str]:
    """A pattern for a text that holds each part, in order."""
    return re.compile(".*".join(re.escape(p) for p in parts))

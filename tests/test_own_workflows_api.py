"""Your own workflow through a real server: the expense example decided over HTTP by the
groups of each wait state, its payment job's attempts, and a stock server that has not
loaded it (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from signoff import Pack, Registry
from signoff.machines.lifecycle import Lifecycle
from signoff.machines.registry import build_registry
from tests.helpers import LiveServer, assert_problem, eventually, serve, unchanged
from tests.payments import payment_service

pytestmark = pytest.mark.usefixtures("example_on_path")
TOKENS = (
    "sam:operator:sam-secret,mia:approver@managers:mia-secret,"
    "fay:approver@finance:fay-secret,finn:approver@finance:finn-secret,vera:viewer:vera-secret"
)


def as_(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}-secret"}


def expense_registry(payment_url: str | None) -> Registry:
    """The example's definition, with its payment job (None: without a handler for it)."""
    from expense_report import EXPENSE_REPORT
    from expense_report.payment import pay_expense

    jobs = [] if payment_url is None else [pay_expense(payment_url)]
    return Registry.of_packs([Pack("expense_report", [EXPENSE_REPORT], jobs)], Lifecycle)


async def send(live: LiveServer, run_id: str, who: str, event: str, **body: Any) -> Any:
    return await live.client.post(
        f"/api/runs/{run_id}/events", json={"event": event, **body}, headers=as_(who)
    )


async def run_json(live: LiveServer, run_id: str) -> dict[str, Any]:
    response = await live.client.get(f"/api/runs/{run_id}", headers=as_("vera"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_expense_report_is_decided_by_each_steps_group_and_paid(
    database_url: str,
) -> None:
    async with payment_service(fail_every=2) as payments:
        registry = expense_registry(payments.url)
        async with serve(database_url, registry=registry, tokens=TOKENS) as live:
            live.client.headers.update(as_("vera"))  # reads (and `unchanged`) as a viewer
            claim = {"amount": 7500, "currency": "EUR", "payee": "Grace", "purpose": "flights"}
            created = await live.client.post(
                "/api/runs",
                json={"definition": "expense_report", "input": claim},
                headers=as_("sam"),
            )
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            assert (await send(live, run_id, "sam", "submit")).status_code == 200

            # Finance may not decide the manager's step; nothing changes.
            async with unchanged(live, run_id):
                refused = await send(live, run_id, "fay", "approve")
                problem = assert_problem(refused, 403)
                assert problem["type"] == "urn:signoff:problem:state-forbidden"
                assert "fay is not in the managers group" in problem["detail"]
            assert (await send(live, run_id, "mia", "approve")).status_code == 200
            # Nor the manager finance's: one person cannot approve both steps.
            async with unchanged(live, run_id):
                assert_problem(await send(live, run_id, "mia", "approve"), 403)
            assert (await send(live, run_id, "fay", "approve")).status_code == 200
            assert (await run_json(live, run_id))["state"] == "finance_review"  # 7,500: two
            async with unchanged(live, run_id):
                again = assert_problem(await send(live, run_id, "fay", "approve"), 409)
                assert again["type"] == "urn:signoff:problem:duplicate-approval"
            assert (await send(live, run_id, "finn", "approve")).status_code == 200

            async def is_paid() -> bool:
                return bool((await run_json(live, run_id))["state"] == "paid")

            await eventually(is_paid)
            view = await run_json(live, run_id)
            assert (view["lifecycle"], view["context"]["payment_id"]) == ("completed", "pay-1")
            # The service failed the first request (503): the job tried again with the same
            # Idempotency-Key, and the claim was paid once.
            assert [k for k, _ in payments.requests] == [run_id, run_id]
            assert payments.payments == {run_id: "pay-1"}
            assert payments.requests[0][1] == {
                "run_id": run_id,
                "amount": 7500,
                "currency": "EUR",
                "payee": "Grace",
            }

            jobs = await live.client.get(f"/api/runs/{run_id}/jobs", headers=as_("vera"))
            assert jobs.status_code == 200, jobs.text
            (job,) = jobs.json()["items"]
            assert (job["kind"], job["state"], job["status"]) == ("pay_expense", "paying", "done")
            assert (job["attempts"], job["max_attempts"]) == (2, 6)
            results = [(a["number"], a["result"], a["error"]) for a in job["attempt_log"]]
            assert results == [
                (1, "failed", "payment service answered 503"),
                (2, "succeeded", None),
            ]
            missing = await live.client.get("/api/runs/nope/jobs", headers=as_("vera"))
            assert_problem(missing, 404)


async def test_a_stock_server_lists_runs_it_cannot_run_and_refuses_their_events(
    database_url: str,
) -> None:
    async with serve(database_url, registry=expense_registry(None)) as live:
        created = await live.client.post(
            "/api/runs",
            json={"definition": "expense_report", "input": {"amount": 10, "payee": "Bo"}},
        )
        run_id = created.json()["id"]
        await live.client.post("/api/runs", json={"definition": "expense_report", "input": {}})

    async with serve(database_url, registry=build_registry(0.0)) as stock:
        listed = await stock.client.get("/api/runs")
        assert listed.status_code == 200, listed.text
        (foreign,) = [r for r in listed.json()["items"] if r["id"] == run_id]
        assert (foreign["definition_loaded"], foreign["allowed_events"]) == (False, [])
        async with unchanged(stock, run_id):
            refused = await stock.client.post(
                f"/api/runs/{run_id}/events", json={"event": "submit"}
            )
            problem = assert_problem(refused, 409)
            assert problem["type"] == "urn:signoff:problem:definition-not-loaded"
            assert "expense_report v1, which this server has not loaded" in problem["detail"]
        assert (await stock.client.get(f"/api/runs/{run_id}/history")).status_code == 200
        assert_problem(await stock.client.get(f"/api/runs/{run_id}/diagram"), 404)
        assert (await stock.client.get(f"/api/runs/{run_id}")).json()["definition_loaded"] is False


async def test_a_job_kind_nobody_runs_shows_in_metrics(database_url: str) -> None:
    async with serve(database_url, registry=expense_registry(None)) as live:
        created = await live.client.post(
            "/api/runs",
            json={"definition": "expense_report", "input": {"amount": 10, "payee": "Bo"}},
        )
        run_id = created.json()["id"]
        for event in ("submit", "approve", "approve"):
            sent = await live.client.post(f"/api/runs/{run_id}/events", json={"event": event})
            assert sent.status_code == 200, sent.text
        metrics = (await live.client.get("/metrics")).text
        assert 'signoff_jobs_unclaimed_seconds{kind="pay_expense"}' in metrics
        jobs = (await live.client.get(f"/api/runs/{run_id}/jobs")).json()["items"]
        assert [(j["kind"], j["status"]) for j in jobs] == [("pay_expense", "ready")]

"""Webhooks through a real server, on SQLite and PostgreSQL: admins subscribe; every transition's
notifications reach a real receiver on loopback that fails and times out now and then, signed,
once or more under one id; dead deliveries are redelivered from the API and the CLI; refusals
are problem+json and change nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from signoff.client import SignoffClient
from tests.helpers import (
    TOKENS,
    Json,
    LiveServer,
    assert_problem,
    auth,
    eventually,
    serve,
)
from tests.webhook_receiver import Receiver, webhook_receiver

ADMIN = auth("admin")
FAST = {
    "tokens": TOKENS,
    "webhook_retry_base_s": 0.005,
    "webhook_retry_cap_s": 0.02,
    "webhook_timeout_s": 0.5,
}


@asynccontextmanager
async def server(database_url: str, **overrides: Any) -> AsyncIterator[LiveServer]:
    async with serve(database_url, **{**FAST, **overrides}) as live:
        yield live


async def subscribe(live: LiveServer, receiver: Receiver, **body: Any) -> Json:
    response = await live.client.post(
        "/api/webhooks", json={"url": receiver.url, **body}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created: Json = response.json()
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created


async def approved_run(live: LiveServer) -> str:
    """A run taken through approval to its end; its id."""
    async with SignoffClient(live.url, "o-secret") as operator:
        run = await operator.create("approval", input={"output": 0.9})
        await operator.process(run.id)

        async def waiting() -> bool:
            return (await operator.get(run.id)).state == "waiting_for_approval"

        await eventually(waiting)
    async with SignoffClient(live.url, "a-secret") as approver:
        await approver.approve(run.id)

        async def settled() -> bool:
            return (await approver.get(run.id)).state not in ("waiting_for_approval",)

        await eventually(settled)
    return run.id


async def deliveries(live: LiveServer, webhook_id: str, **params: Any) -> list[Json]:
    items: list[Json] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await live.client.get(
            f"/api/webhooks/{webhook_id}/deliveries", params=query, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def all_settled(live: LiveServer, webhook_id: str, status: str, at_least: int) -> list[Json]:
    """Wait until the subscription has `at_least` deliveries and all are `status`."""
    found: list[Json] = []

    async def settled() -> bool:
        nonlocal found
        found = await deliveries(live, webhook_id)
        return len(found) >= at_least and all(d["status"] == status for d in found)

    await eventually(settled, timeout=30)
    return found


async def transitions(live: LiveServer, run_id: str) -> set[tuple[str, int]]:
    response = await live.client.get(f"/api/runs/{run_id}/history", headers=ADMIN)
    return {(run_id, e["run"]["version"]) for e in response.json()["items"]}


def notified(receiver: Receiver, type_: str = "transition") -> set[tuple[str, int]]:
    return {
        (r.body["data"]["run_id"], r.body["data"]["version"])
        for r in receiver.received
        if r.type == type_
    }


async def test_every_transition_is_notified_signed_with_stable_ids(database_url: str) -> None:
    # Every 3rd request fails and every 4th hangs past the timeout (then still lands: a
    # duplicate the receiver must drop by its id).
    async with (
        webhook_receiver(fail_every=3, hang_every=4, hang_s=1.0) as receiver,
        server(database_url) as live,
    ):
        hook = await subscribe(live, receiver, events=["transition"])
        runs = [await approved_run(live) for _ in range(3)]
        expected = set().union(*[await transitions(live, r) for r in runs])
        done = await all_settled(live, hook["id"], "done", len(expected))

        async def all_arrived() -> bool:
            return notified(receiver) == expected

        await eventually(all_arrived, timeout=10)
        assert len(done) == len(expected)  # one delivery per transition
        assert {d["message_id"] for d in done} == receiver.ids()
        assert receiver.refused == []  # every request verified
        # Duplicates (a timed-out attempt that still landed) carry their delivery's id.
        by_id = Counter(r.id for r in receiver.received)
        retried = [d for d in done if d["attempts"] > 1]
        assert retried and all(d["attempt_log"][0]["result"] == "failed" for d in retried)
        for r in receiver.received:
            assert r.body["type"] == "transition" and r.headers["webhook-id"] == r.id
        assert sum(by_id.values()) >= len(by_id)
        metrics = (await live.client.get("/metrics", headers=ADMIN)).text
        assert 'signoff_webhook_deliveries_total{result="delivered"}' in metrics
        assert "signoff_webhook_latency_seconds_count" in metrics


async def test_filters_by_definition_and_by_event(database_url: str) -> None:
    async with (
        webhook_receiver() as approvals,
        webhook_receiver() as orders,
        webhook_receiver() as created,
        server(database_url) as live,
    ):
        a = await subscribe(live, approvals, definitions=["approval"], events=["transition"])
        b = await subscribe(live, orders, definitions=["purchase_order"])
        c = await subscribe(live, created, events=["task.created"])
        run_id = await approved_run(live)
        expected = await transitions(live, run_id)
        await all_settled(live, a["id"], "done", len(expected))
        assert notified(approvals) == expected
        assert {r.type for r in created.received} <= {"task.created"}
        await all_settled(live, c["id"], "done", 0)
        assert await deliveries(live, b["id"]) == [] and orders.requests == 0


async def test_dead_deliveries_are_redelivered_from_the_api_and_the_cli(
    database_url: str,
) -> None:
    async with webhook_receiver(fail_every=1) as receiver, server(database_url) as live:
        hook = await subscribe(live, receiver, max_attempts=2, events=["transition"])
        run_id = await approved_run(live)
        expected = await transitions(live, run_id)
        dead = await all_settled(live, hook["id"], "dead", len(expected))
        assert all(d["attempts"] == 2 and len(d["attempt_log"]) == 2 for d in dead)
        assert [d["id"] for d in dead] == sorted((d["id"] for d in dead), reverse=True)
        assert receiver.received == [] and receiver.requests == 2 * len(expected)
        filtered = await deliveries(live, hook["id"], status="dead")
        assert filtered == dead and await deliveries(live, hook["id"], status="done") == []

        receiver.fail_every = 0
        first = dead[-1]
        path = f"/api/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver"
        response = await live.client.post(path, headers=ADMIN)
        assert response.status_code == 202, response.text

        async def delivered() -> bool:
            return [r.id for r in receiver.received] == [first["message_id"]]

        await eventually(delivered)
        # A done delivery's id answers 409 only while pending: done ones may go again.
        out = await _cli(live, "webhooks", "redeliver", hook["id"], "--dead")
        assert out.returncode == 0 and f"{len(dead) - 1} deliveries" in out.stdout, out
        done = await all_settled(live, hook["id"], "done", len(expected))
        assert {d["message_id"] for d in done} == receiver.ids() == {d["message_id"] for d in dead}
        listing = await _cli(live, "webhooks", "deliveries", hook["id"], "--status", "done")
        assert listing.stdout.count("\tdone\ttransition\t") == len(expected), listing


async def test_refusals_are_problems_and_change_nothing(database_url: str) -> None:
    async with webhook_receiver() as receiver, server(database_url) as live:
        hook = await subscribe(live, receiver)
        before = (await live.client.get("/api/webhooks", headers=ADMIN)).json()
        hooks = f"/api/webhooks/{hook['id']}"
        unknown = "/api/webhooks/0191f7c4-0000-7000-8000-000000000000"
        good = {"url": receiver.url}
        refusals: list[tuple[str, str, dict[str, Any], dict[str, str], int]] = [
            ("POST", "/api/webhooks", {"json": good}, auth("operator"), 403),
            ("POST", "/api/webhooks", {"json": good}, auth("approver"), 403),
            ("GET", "/api/webhooks", {}, auth("viewer"), 403),
            ("POST", "/api/webhooks", {"json": good}, {}, 401),
            ("DELETE", hooks, {}, auth("operator"), 403),
            ("POST", "/api/webhooks", {"json": {"url": "ftp://example.com/x"}}, ADMIN, 422),
            ("POST", "/api/webhooks", {"json": {"url": "not a url"}}, ADMIN, 422),
            ("POST", "/api/webhooks", {"json": {"url": "http://u:p@example.com/"}}, ADMIN, 422),
            ("POST", "/api/webhooks", {"json": {**good, "events": ["run.exploded"]}}, ADMIN, 400),
            ("POST", "/api/webhooks", {"json": {**good, "definitions": ["a b"]}}, ADMIN, 422),
            ("POST", "/api/webhooks", {"json": {**good, "max_attempts": 0}}, ADMIN, 400),
            ("POST", "/api/webhooks", {"json": {**good, "colour": "red"}}, ADMIN, 400),
            ("POST", "/api/webhooks", {"content": b"{", "headers": _json()}, ADMIN, 400),
            ("POST", "/api/webhooks", {"json": {}}, ADMIN, 400),
            ("GET", unknown, {}, ADMIN, 404),
            ("PATCH", unknown, {"json": {"active": False}}, ADMIN, 404),
            ("DELETE", unknown, {}, ADMIN, 404),
            ("PATCH", hooks, {"json": {"url": "gopher://x"}}, ADMIN, 422),
            ("PATCH", hooks, {"json": {"events": ["nope"]}}, ADMIN, 400),
            ("GET", f"{unknown}/deliveries", {}, ADMIN, 404),
            ("GET", f"{hooks}/deliveries", {"params": {"status": "lost"}}, ADMIN, 400),
            ("POST", f"{hooks}/deliveries/99999/redeliver", {}, ADMIN, 404),
            ("POST", f"{unknown}/deliveries/1/redeliver", {}, ADMIN, 404),
            ("POST", f"{unknown}/deliveries/redeliver", {}, ADMIN, 404),
        ]
        for method, path, kw, headers, status in refusals:
            extra = kw.pop("headers", {})
            response = await live.client.request(method, path, headers={**headers, **extra}, **kw)
            body = assert_problem(response, status)
            if status == 404 and "redeliver" not in path and method != "GET":
                assert body["type"] == "urn:signoff:problem:webhook-not-found"
        after = (await live.client.get("/api/webhooks", headers=ADMIN)).json()
        assert after == before and "secret" not in after["items"][0]


async def test_a_host_outside_the_allowed_hosts_is_refused(database_url: str) -> None:
    async with (
        webhook_receiver() as receiver,
        server(database_url, http_allowed_hosts="hooks.example.com") as live,
    ):
        response = await live.client.post(
            "/api/webhooks", json={"url": receiver.url}, headers=ADMIN
        )
        body = assert_problem(response, 422)
        assert body["type"] == "urn:signoff:problem:invalid-webhook"
        assert "SIGNOFF_HTTP_ALLOWED_HOSTS" in body["detail"]
        listed = (await live.client.get("/api/webhooks", headers=ADMIN)).json()
        assert listed == {"items": []}


async def test_an_admin_manages_subscriptions_from_the_cli(database_url: str) -> None:
    async with webhook_receiver() as receiver, server(database_url) as live:
        added = await _cli(live, "webhooks", "add", receiver.url, "--event", "task.created")
        assert added.returncode == 0, added.stderr
        webhook_id = added.stdout.split("\t")[0]
        assert "secret (shown once): whsec_" in added.stdout
        listed = await _cli(live, "webhooks", "list")
        assert f"{webhook_id}\t{receiver.url}\ttask.created\tall definitions\tactive" in (
            listed.stdout
        )
        pending = await _cli(live, "webhooks", "redeliver", webhook_id, "1")
        assert pending.returncode == 1 and "404" in pending.stderr
        removed = await _cli(live, "webhooks", "remove", webhook_id)
        assert removed.returncode == 0
        assert (await _cli(live, "webhooks", "list")).stdout == ""


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


async def _cli(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "signoff", *args, "--url", live.url, "--token", "r-secret"]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )

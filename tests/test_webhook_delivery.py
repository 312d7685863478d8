"""Delivering webhook jobs, on SQLite and PostgreSQL, to a real receiver on loopback: signed,
retried with backoff under one message id, dead after the last attempt, redelivered.

Delivery rows are written here as the outbox writes them (one job of kind `webhook` per
notification and subscription), so each rule is seen without a transition in the way; the
worker's clock is moved past each backoff instead of waiting for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from signoff.api.metrics import Metrics
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.errors import DeliveryPendingError
from signoff.engine.ids import uuid7
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.retry import RetryPolicy
from signoff.engine.runtime import Runtime
from signoff.engine.storage.statements import sql
from signoff.engine.webhooks import store, subscriptions
from signoff.engine.webhooks.delivery import DeliveryPolicy
from signoff.engine.webhooks.store import Delivery, Subscription
from tests.webhook_receiver import Receiver, webhook_receiver

_ENQUEUE = sql(
    """INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,
    created_for_version, created_at, updated_at, subscription_id)
    VALUES ($1, 'webhook', '', $2, 'ready', 0, $3, $4, 1, $4, $4, $5)"""
)


class Clock:
    """The worker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver(hang_s=5.0) as r:
        yield r


async def subscribe(rt: Runtime, url: str, **options: Any) -> Subscription:
    """A subscription to no definition that runs here: the outbox writes it nothing, so its
    deliveries are the test's own."""
    return await subscriptions.create(
        rt.store,
        url,
        actor="root",
        now=utcnow(),
        allowed=lambda _: True,
        definitions=["written.by.the.test"],
        **options,
    )


async def enqueue(rt: Runtime, sub: Subscription, type_: str = "transition") -> str:
    """A delivery of a new notification about a new run, as the outbox writes it; its id."""
    run = await rt.dispatcher.create("approval", actor="otto", input={"output": 0.9})
    msg_id = f"msg_{uuid7()}"
    message = {"type": type_, "timestamp": utcnow().isoformat(), "data": {"run_id": run.run_id}}
    payload = {"id": msg_id, "type": type_, "message": message}
    async with rt.store.write() as tx:
        await tx.execute(_ENQUEUE, run.run_id, payload, sub.max_attempts, utcnow(), sub.id)
    return msg_id


def worker(rt: Runtime, clock: Clock, observer: Metrics | None = None, **policy: Any) -> Worker:
    retry = RetryPolicy(1, base_s=60.0, cap_s=600.0, jitter=False)
    return Worker(
        rt.dispatcher,
        rt.store,
        rt.registry,
        clock=clock,
        observer=observer,
        webhooks=DeliveryPolicy(**{"timeout_s": 2.0, "retry": retry, **policy}),
    )


async def rounds(w: Worker, clock: Clock, n: int, *, step_s: float = 3600.0) -> int:
    """Claim and run what is due `n` times, moving the clock past any backoff between; how
    many jobs ran."""
    ran = 0
    for _ in range(n):
        for job in await w.claim(16):
            await w.process(job)
            ran += 1
        clock.advance(step_s)
    return ran


async def log(rt: Runtime, sub: Subscription, status: str | None = None) -> list[Delivery]:
    return (await store.deliveries(rt.store, sub.id, status, 200, None))[0]


async def test_a_delivery_arrives_signed_and_is_done(runtime: Runtime, receiver: Receiver) -> None:
    sub = await subscribe(runtime, receiver.url)
    receiver.secret = sub.secret
    msg_id = await enqueue(runtime, sub)
    metrics = Metrics()
    assert await rounds(worker(runtime, Clock(), metrics), Clock(), 1) == 1
    [got] = receiver.received
    assert got.id == msg_id and got.type == "transition"
    assert got.headers["content-type"] == "application/json"
    [delivery] = await log(runtime, sub)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("done", 1, 204)
    assert delivery.message_id == msg_id and delivery.attempt_log == []
    sample = metrics.registry.get_sample_value
    assert sample("signoff_webhook_deliveries_total", {"result": "delivered"}) == 1
    assert sample("signoff_webhook_latency_seconds_count") == 1


async def test_a_wrong_secret_is_refused_by_the_receiver(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url)
    receiver.secret = (await subscribe(runtime, receiver.url)).secret  # another's
    await enqueue(runtime, sub)
    await rounds(worker(runtime, Clock()), Clock(), 1)
    assert receiver.received == [] and len(receiver.refused) == 1
    [delivery] = await log(runtime, sub)
    assert delivery.status == "ready" and "answered 401" in (delivery.last_error or "")


async def test_failed_attempts_are_retried_under_one_id_then_dead_then_redelivered(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url, max_attempts=3)
    receiver.secret, receiver.fail_every = sub.secret, 1
    msg_id = await enqueue(runtime, sub)
    clock, metrics = Clock(), Metrics()
    w = worker(runtime, clock, metrics)
    # The first retry waits its backoff (60 s here): not due a minute early.
    assert await rounds(w, clock, 1, step_s=59.0) == 1
    assert await rounds(w, clock, 1, step_s=2.0) == 0
    assert await rounds(w, clock, 10) == 2  # attempts 2 and 3, then nothing more
    [dead] = await log(runtime, sub, "dead")
    assert (dead.attempts, len(dead.attempt_log)) == (3, 3)
    assert all("answered 500" in entry["error"] for entry in dead.attempt_log)
    assert receiver.requests == 3 and receiver.received == []
    sample = metrics.registry.get_sample_value
    assert sample("signoff_webhook_deliveries_total", {"result": "retried"}) == 2
    assert sample("signoff_webhook_deliveries_total", {"result": "dead"}) == 1
    assert sample("signoff_webhook_failures_total", {"reason": "status"}) == 3

    receiver.fail_every = 0
    await store.redeliver(runtime.store, sub.id, dead.id, clock())
    with pytest.raises(DeliveryPendingError):  # it is ready again: not twice
        await store.redeliver(runtime.store, sub.id, dead.id, clock())
    assert await rounds(w, clock, 3) == 1
    assert [r.id for r in receiver.received] == [msg_id]  # the same webhook-id as before
    [done] = await log(runtime, sub)
    assert (done.id, done.status, done.attempts) == (dead.id, "done", 1)


async def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url)
    receiver.secret, receiver.hang_every = sub.secret, 1
    msg_id = await enqueue(runtime, sub)
    clock = Clock()
    w = worker(runtime, clock, timeout_s=0.2)
    await rounds(w, clock, 1)
    [delivery] = await log(runtime, sub)
    assert delivery.status == "ready"
    assert "did not answer within 0.2 s" in (delivery.last_error or "")
    receiver.hang_every = 0
    await rounds(w, clock, 1)
    assert [r.id for r in receiver.received] == [msg_id]


async def test_redirects_are_not_followed(runtime: Runtime, receiver: Receiver) -> None:
    sub = await subscribe(runtime, receiver.url, max_attempts=1)
    receiver.secret, receiver.redirect = sub.secret, receiver.url + "/elsewhere"
    await enqueue(runtime, sub)
    await rounds(worker(runtime, Clock()), Clock(), 1)
    assert receiver.requests == 1
    [dead] = await log(runtime, sub, "dead")
    assert "answered 307" in (dead.last_error or "")


async def test_a_paused_runs_notifications_are_still_delivered(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url)
    receiver.secret = sub.secret
    msg_id = await enqueue(runtime, sub)
    [delivery] = await log(runtime, sub)
    await runtime.dispatcher.dispatch(delivery.run_id, "pause", actor="otto")
    await rounds(worker(runtime, Clock()), Clock(), 1)
    assert [r.id for r in receiver.received] == [msg_id]


async def test_an_inactive_or_disallowed_subscription_is_not_called(
    runtime: Runtime, receiver: Receiver
) -> None:
    inactive = await subscribe(runtime, receiver.url, active=False)
    elsewhere = await subscribe(runtime, receiver.url)
    await enqueue(runtime, inactive)
    await enqueue(runtime, elsewhere)
    clock = Clock()
    await rounds(worker(runtime, clock, allowed=lambda url: False), clock, 1)
    assert receiver.requests == 0
    [dead] = await log(runtime, inactive, "dead")
    assert "inactive" in (dead.last_error or "")
    [dead] = await log(runtime, elsewhere, "dead")
    assert "SIGNOFF_HTTP_ALLOWED_HOSTS" in (dead.last_error or "")
    # Reactivated, its dead deliveries are redelivered together.
    await subscriptions.change(
        runtime.store, inactive.id, {"active": True}, utcnow(), lambda _: True
    )
    receiver.secret = inactive.secret
    assert await store.redeliver_dead(runtime.store, inactive.id, clock()) == 1
    await rounds(worker(runtime, clock), clock, 1)
    assert len(receiver.received) == 1


async def test_a_worker_that_dies_mid_delivery_leaves_it_to_another(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url, max_attempts=2)
    receiver.secret = sub.secret
    msg_id = await enqueue(runtime, sub)
    clock = Clock()
    dead_worker = worker(runtime, clock)
    assert len(await dead_worker.claim(1)) == 1  # claimed, then never finished
    clock.advance(31)  # past its lease
    await rounds(worker(runtime, clock), clock, 1)
    assert [r.id for r in receiver.received] == [msg_id]
    [done] = await log(runtime, sub)
    assert (done.status, done.attempts) == ("done", 2)


async def test_a_last_attempt_whose_worker_died_is_dead(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url, max_attempts=1)
    await enqueue(runtime, sub)
    clock = Clock()
    assert len(await worker(runtime, clock).claim(1)) == 1
    clock.advance(31)
    await rounds(worker(runtime, clock), clock, 1)
    assert receiver.requests == 0
    [dead] = await log(runtime, sub, "dead")
    assert dead.attempts == 2 and len(dead.attempt_log) == 1


async def test_deleting_a_subscription_deletes_its_deliveries(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = await subscribe(runtime, receiver.url)
    await enqueue(runtime, sub)
    await store.delete(runtime.store, sub.id)
    assert await rounds(worker(runtime, Clock()), Clock(), 1) == 0
    assert receiver.requests == 0

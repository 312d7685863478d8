"""Delivering a claimed webhook job: sign it, POST it, record what became of the attempt.

A delivery never reaches its run. A 2xx answer marks the job done; a timeout, a connection that
fails, or any other answer (redirects are not followed) puts it back with a backoff, and after
its last attempt it is dead: kept, with every attempt in its log, until an admin redelivers it.
A subscription that was deactivated, or whose host SIGNOFF_HTTP_ALLOWED_HOSTS no longer allows,
is not called: its deliveries go dead at once, to be redelivered once it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec

from signoff.engine.errors import LeaseLostError
from signoff.engine.model.retry import RetryPolicy
from signoff.engine.observer import Observer
from signoff.engine.storage.jobs import WEBHOOK_KIND, ClaimedJob, JobStatus
from signoff.engine.storage.store import Store
from signoff.engine.tracing import Tracer
from signoff.engine.webhooks import signing
from signoff.engine.webhooks.store import find

log = logging.getLogger("signoff.webhooks")
_ENCODER = msgspec.json.Encoder()
# A receiver's answer is not used; reading a little of it keeps the connection reusable.
MAX_ANSWER_BYTES = 4096

KeepLease = Callable[[ClaimedJob, Awaitable[int]], Awaitable[int]]


def _any_host(url: str) -> bool:
    return True


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are attempted: each attempt's time limit, the backoff between attempts
    (each delivery's own max_attempts, its subscription's, bounds them), and which URLs may be
    called."""

    timeout_s: float = 10.0
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=8, base_s=5.0, cap_s=3600.0)
    )
    allowed: Callable[[str], bool] = _any_host


class _Failed(Exception):
    """An attempt failed in a way that may pass: retried with backoff."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # timeout, connection, status or lost


class _Refused(_Failed):
    """Not attempted: the subscription cannot take it now. Dead at once."""

    def __init__(self, message: str) -> None:
        super().__init__("refused", message)


class Deliverer:
    """Delivers the webhook jobs one worker claims, over one pool of connections.

    `clock` is the worker's (due times, latency); `wall` stamps `webhook-timestamp`, which
    receivers compare with their own clocks, so it is always real time.
    """

    def __init__(
        self,
        store: Store,
        policy: DeliveryPolicy,
        observer: Observer,
        clock: Callable[[], datetime],
        wall: Callable[[], float] = time.time,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.observer = observer
        self.clock = clock
        self.wall = wall
        self.tracer = tracer or Tracer()
        self._client: httpx.AsyncClient | None = None

    async def deliver(self, job: ClaimedJob, keep_lease: KeepLease) -> None:
        """Attempt the delivery (under `keep_lease`, which extends the job's lease while it
        runs) and record the result on the job."""
        try:
            status = await keep_lease(job, self._attempt(job))
        except LeaseLostError:
            log.info("delivery %s: lease lost during the attempt; another worker has it", job.id)
            return
        except _Failed as exc:
            await self._failed(job, exc)
            return
        await self._record(job, JobStatus.DONE, outcome={"status": status})
        if job.created_at is not None:
            self.observer.webhook_delivered((self.clock() - job.created_at).total_seconds())

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _attempt(self, job: ClaimedJob) -> int:
        if job.attempts > job.max_attempts:  # its last lease expired: the worker died
            raise _Failed("lost", job.last_error or "the worker stopped during the last attempt")
        sub = await find(self.store, job.subscription_id or "")
        if sub is None:
            raise _Refused("its subscription was deleted")
        if not sub.active:
            raise _Refused("its subscription is inactive")
        if not self.policy.allowed(sub.url):
            raise _Refused(f"{sub.url}: its host is not in SIGNOFF_HTTP_ALLOWED_HOSTS")
        msg_id = str(job.payload["id"])
        body = _ENCODER.encode(job.payload["message"])
        headers = {
            "content-type": "application/json",
            "user-agent": "signoff",
            **signing.headers(sub.secret, msg_id, int(self.wall()), body),
        }
        self.observer.job_attempt(WEBHOOK_KIND)
        limit = self.policy.timeout_s
        # Traced, the request has a span of its own, and its `traceparent` header names it.
        with self.tracer.delivery(sub.url, str(job.payload.get("type", ""))) as trace_headers:
            headers.update(trace_headers)
            try:
                async with asyncio.timeout(limit):  # the whole attempt, however slowly
                    return await self._post(sub.url, body, headers)
            except TimeoutError:
                raise _Failed("timeout", f"{sub.url} did not answer within {limit:g} s") from None
            except httpx.TimeoutException as exc:
                message = f"{sub.url} did not answer in time ({type(exc).__name__})"
                raise _Failed("timeout", message) from exc
            except httpx.TransportError as exc:
                message = f"{sub.url} could not be reached: {exc!r}"
                raise _Failed("connection", message) from exc

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.policy.timeout_s, follow_redirects=False)
        request = self._client.build_request("POST", url, content=body, headers=headers)
        answer = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in answer.aiter_raw():
                read += len(chunk)
                if read > MAX_ANSWER_BYTES:
                    break
        finally:
            await answer.aclose()
        if not 200 <= answer.status_code < 300:
            raise _Failed("status", f"{url} answered {answer.status_code}")
        return answer.status_code

    async def _failed(self, job: ClaimedJob, exc: _Failed) -> None:
        error = str(exc)
        attempts = self.policy.retry
        dead = isinstance(exc, _Refused) or attempts.exhausted(job.attempts, job.max_attempts)
        self.observer.webhook_failed(exc.reason, dead)
        now = self.clock()
        attempt_log = job.logged(now, error)
        if dead:
            log.warning("delivery %s is dead after %d attempt(s): %s", job.id, job.attempts, error)
            await self._record(job, JobStatus.DEAD, error=error, attempt_log=attempt_log)
            return
        due = now + timedelta(seconds=attempts.delay_s(job.attempts))
        await self._record(job, JobStatus.READY, due_at=due, error=error, attempt_log=attempt_log)

    async def _record(
        self,
        job: ClaimedJob,
        status: JobStatus,
        *,
        due_at: datetime | None = None,
        error: str | None = None,
        outcome: dict[str, Any] | None = None,
        attempt_log: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            await self.store.release_job(
                job.lease,
                self.clock(),
                status,
                due_at=due_at,
                error=error,
                outcome=outcome,
                attempt_log=attempt_log,
            )
        except LeaseLostError:
            # Another worker took it over (this attempt outlived its lease), or the
            # subscription was deleted: what this attempt found is not recorded.
            log.info("delivery %s: lease lost before its result was recorded", job.id)

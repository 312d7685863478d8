"""Wires the engine together: store, dispatcher, queries, feed, workers and the catalog of
chart documents."""

from __future__ import annotations

import asyncio
import logging

from signoff.engine.dispatch.backfill import open_old_tasks
from signoff.engine.dispatch.dispatcher import Dispatcher, utcnow
from signoff.engine.dispatch.outcome import Committed
from signoff.engine.documents.catalog import Catalog
from signoff.engine.documents.http_job import host_allowed, http_job
from signoff.engine.feed.broadcaster import Feed
from signoff.engine.feed.subscription import Published
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.registry import Registry
from signoff.engine.model.retry import RetryPolicy
from signoff.engine.observer import Observer
from signoff.engine.settings import Settings
from signoff.engine.storage import job_counts
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.queries import RunQueries
from signoff.engine.storage.stats_rollup import roll_up
from signoff.engine.storage.store import Store
from signoff.engine.tracing import Tracer, from_env
from signoff.engine.webhooks.delivery import DeliveryPolicy

log = logging.getLogger("signoff.runtime")


class Runtime:
    """Everything one Signoff process runs; `start()` migrates and starts `workers` workers.
    `tracer` makes its spans: by default as the OTEL_* variables say (signoff.engine.tracing)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        observer: Observer | None = None,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        hosts = [h.strip() for h in settings.http_allowed_hosts.split(",") if h.strip()]
        self.allowed_hosts = tuple(hosts)  # for http jobs and webhook subscriptions
        registry.add_job(http_job(hosts))  # chart documents' built-in job, run by every worker
        self.observer = observer or Observer()
        self.tracer = from_env() if tracer is None else tracer
        self.store = Store.open(settings.database_url, pool_size=settings.pool_size)
        self.catalog = Catalog(
            self.store,
            registry,
            max_bytes=settings.max_document_bytes,
            poll_interval_s=settings.poll_interval_s * 4,
            allowed_hosts=hosts,
        )
        self.dispatcher = Dispatcher(
            self.store,
            registry,
            max_attempts=settings.max_attempts,
            separation_of_duties=settings.separation_of_duties,
            max_input_bytes=settings.max_input_bytes,
            observer=self.observer,
            tracer=self.tracer,
        )
        self.queries = RunQueries(self.store, registry)
        retry = RetryPolicy(settings.max_attempts, settings.retry_base_s, settings.retry_cap_s)
        webhooks = DeliveryPolicy(
            timeout_s=settings.webhook_timeout_s,
            # Only the backoff: each delivery's max_attempts (its subscription's) bounds it.
            retry=RetryPolicy(1, settings.webhook_retry_base_s, settings.webhook_retry_cap_s),
            allowed=self.url_allowed,
        )
        self.workers = [
            Worker(
                self.dispatcher,
                self.store,
                registry,
                concurrency=settings.concurrency,
                poll_interval_s=settings.poll_interval_s,
                lease_s=settings.lease_s,
                retry=retry,
                observer=self.observer,
                webhooks=webhooks,
            )
            for _ in range(settings.workers)
        ]
        self.feed = Feed(
            self.store,
            buffer=settings.feed_buffer,
            heartbeat_s=settings.heartbeat_s,
            poll_interval_s=settings.poll_interval_s,
        )
        # Other processes' commits reach the feed by NOTIFY on PostgreSQL, and so do the jobs
        # they enqueue this process's workers (a worker process of the scale-out layout takes
        # a job the API enqueued at once, not at its next poll); where the store has no such
        # channel (SQLite), polling is what notices them.
        wake = self._wake_all if self.workers else None
        self.listener = self.store.listener(self.feed.wake, self.catalog.changed, wake)
        self._tasks: list[asyncio.Task[None]] = []
        self.dispatcher.listeners += [self._wake_workers, self._publish]

    def url_allowed(self, url: str) -> bool:
        """Whether SIGNOFF_HTTP_ALLOWED_HOSTS lets this server call `url`."""
        return host_allowed(url, self.allowed_hosts)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade(self.store)
        await self.catalog.start()
        await open_old_tasks(self.store, self.registry, utcnow())
        await self.feed.start()
        if self.listener is not None:
            await self.listener.start()
        self._tasks = [asyncio.create_task(w.run(), name="signoff-worker") for w in self.workers]
        if self.workers:
            self._tasks.append(asyncio.create_task(self._roll_up(), name="signoff-stats"))

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await self.feed.stop()
        await self.catalog.stop()
        await asyncio.gather(*(w.stop() for w in self.workers))
        for task in self._tasks:
            if task.get_name() == "signoff-stats":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.store.dispose()
        self.tracer.close()

    async def _roll_up(self) -> None:
        """Fold new history entries into the stats and the run census, and job moves into
        the job counts, every SIGNOFF_STATS_ROLLUP_S, so reading them only has the last few
        seconds left to add."""
        while True:
            await asyncio.sleep(self.settings.stats_rollup_s)
            try:
                await roll_up(self.store)
                await job_counts.fold(self.store)
            except Exception:
                log.exception("folding the counters failed; the next round tries again")

    def _wake_workers(self, committed: Committed) -> None:
        if committed.enqueued_jobs:
            for worker in self.workers:
                worker.wake()

    def _wake_all(self) -> None:
        for worker in self.workers:
            worker.wake()

    def _publish(self, c: Committed) -> None:
        self.feed.offer(Published(c.seq, c.run_id, c.definition, c.entry))

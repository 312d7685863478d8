"""The live feed inside one process: read new history once, fan encoded frames out to clients.

One broadcaster per process publishes history entries in `seq` order. An entry committed in
this process is handed over directly when it is the next seq; anything else (another
process's commit, announced by NOTIFY or found by polling, or a gap) is read from the history
table by a background task. Each entry is encoded as an SSE frame once, and only if someone
listens, then written to every matching subscriber's connection directly where the server
allows it (one write per client, no task per client to wake), else put on its bounded queue. A
subscriber whose queue overflows is dropped; its client reconnects with Last-Event-ID and
replays from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import func, select

from signoff.engine.audit.formats import PurgedLine
from signoff.engine.errors import StorageUnavailableError
from signoff.engine.feed.subscription import (
    BEAT,
    HEARTBEAT,
    Direct,
    FeedFilter,
    Published,
    Subscription,
    purged_frame,
)
from signoff.engine.storage.audit import purged_ranges
from signoff.engine.storage.entries import Entry, read_after
from signoff.engine.storage.schema import HISTORY
from signoff.engine.storage.store import Store

log = logging.getLogger("signoff.feed")
GAP_GRACE_S = 0.02


class Feed:
    """Publishes committed history entries to subscribers, in seq order, without gaps."""

    def __init__(
        self,
        store: Store,
        *,
        buffer: int = 1024,
        batch: int = 256,
        replay_batch: int = 2000,
        poll_interval_s: float = 0.5,
        heartbeat_s: float = 15.0,
    ) -> None:
        self.store = store
        self.buffer = buffer
        self.batch = min(batch, max(1, buffer // 2))
        # A resuming client's entries are read this many at a time and written as one chunk
        # (they go to that client alone, past the mailboxes' bound).
        self.replay_batch = replay_batch
        self.poll_interval_s = poll_interval_s
        self.heartbeat_s = heartbeat_s
        self.last_seq = 0
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._known = 0  # the highest seq known to be committed (offered or notified)
        self._early: dict[int, Published] = {}  # offered ahead of a gap, by seq
        self._read = False  # read the table without waiting out a gap (poll, reconnect)
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        async with self.store.read() as conn:
            self.last_seq = (await conn.execute(select(func.max(HISTORY.c.seq)))).scalar() or 0
        self._task = asyncio.create_task(self._run(), name="signoff-feed")
        self._beat = asyncio.create_task(self._heartbeats(), name="signoff-feed-heartbeat")

    async def stop(self) -> None:
        for task in (self._task, self._beat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.disconnect_all()

    def wake(self, seq: int | None = None) -> None:
        """Entry `seq` was committed somewhere (None: anything may have been): make sure it
        is published, from the table unless this process offers it first."""
        if seq is None:
            self._read = True
            self._wake.set()
        elif seq > self.last_seq:
            self._known = max(self._known, seq)
            self._wake.set()

    def offer(self, entry: Published) -> None:
        """An entry this process just committed: published now if it is the next one, else
        kept until the entries before it arrive (or are read from the table)."""
        if entry.seq == self.last_seq + 1:
            self._publish([entry])
            while self._early and (nxt := self._early.pop(self.last_seq + 1, None)):
                self._publish([nxt])
        elif entry.seq > self.last_seq:
            self._early[entry.seq] = entry
            self._known = max(self._known, entry.seq)
            self._wake.set()

    def disconnect_all(self) -> None:
        """End every client's stream (they reconnect with Last-Event-ID), e.g. on shutdown."""
        for sub in list(self._subscribers):
            self._drop(sub)

    async def follow(
        self,
        where: FeedFilter,
        after: int | None,
        *,
        prefix: bytes = b"",
        on_drop: Callable[[], None] | None = None,
        direct: Direct | None = None,
    ) -> AsyncIterator[bytes]:
        """SSE frames: the entries after `after` from the table, then live ones, then pings.

        Subscribes before replaying, so nothing committed meanwhile is missed, and skips any
        seq already sent, so nothing is sent twice. Without `after`, a run's feed replays the
        whole run and the global feed starts at the present. Frames that queued up while the
        client was being written to go out together, in one chunk.

        `on_drop` is called if the client falls too far behind: typically it aborts the
        connection, since a client that lags is often one whose socket is full, and then this
        generator, blocked writing to it, would not run again to end the stream.

        `direct` writes a frame to the client's connection at once (False if it cannot). Once
        the replay is sent and nothing is queued, live frames go that way, written by the
        broadcaster itself; a frame it cannot write takes the queue, and this generator
        sends it and everything after it, until the queue is empty again.
        """
        sub = Subscription(where, self.buffer, on_drop)
        self._subscribers.add(sub)
        try:
            if prefix:
                yield prefix
            sent = after if after is not None else (0 if where.run_id else self.last_seq)
            async for seq, data in self._replay(where, sent):
                sent = seq
                if data:
                    yield data
            sub.sent = sent
            items = sub.items
            while True:
                if direct is not None and not items:
                    # Everything yielded so far was written when the stream resumed us; from
                    # here the broadcaster writes, in order, after what was yielded.
                    sub.direct = direct
                await sub.wait()
                chunk: list[bytes] = []
                while items:
                    item = items.popleft()
                    if item is None:
                        if chunk:
                            yield b"".join(chunk)
                        return
                    seq, data = item
                    if seq > sub.sent or seq == BEAT:
                        sub.sent = max(sub.sent, seq)
                        chunk.append(data)
                if chunk:
                    yield b"".join(chunk) if len(chunk) > 1 else chunk[0]
        finally:
            self._subscribers.discard(sub)

    async def _replay(self, where: FeedFilter, after: int) -> AsyncIterator[tuple[int, bytes]]:
        """(last seq, frames): each batch read from the table as one chunk of frames."""
        while True:
            batch = await read_after(
                self.store,
                after,
                self.replay_batch,
                run_id=where.run_id,
                definition=where.definition,
            )
            # A run's own entries are never purged while it is stored, and a purged range is
            # always followed by a kept entry (purge keeps the newest): with no entry read
            # there is no range to say. The ranges are read after the entries, so a purge in
            # between is said, not skipped.
            upto = batch.last if batch.full else None
            quiet = where.run_id is not None or not batch.entries
            gaps = [] if quiet else await self._gaps(after, upto)
            frames: list[bytes] = []
            for entry in batch.entries:
                while gaps and gaps[0].next_seq <= entry.seq:
                    after = self._purged(gaps.pop(0), after, frames)
                after = entry.seq
                frames.append(_frame(entry).frame())
            for gap in gaps:
                after = self._purged(gap, after, frames)
            after = max(after, batch.last)
            yield after, b"".join(frames)
            if not batch.full:
                return

    async def _gaps(self, after: int, upto: int | None) -> list[PurgedLine]:
        """The purged ranges ending after `after` (up to `upto`), in seq order."""
        async with self.store.read() as conn:
            ranges = await purged_ranges(conn, after, upto)
        return [ranges[seq] for seq in sorted(ranges)]

    @staticmethod
    def _purged(gap: PurgedLine, after: int, frames: list[bytes]) -> int:
        """Say a purged range the client has not read past (`signoff purge`); the new cursor."""
        if gap.last_seq <= after:
            return after
        frames.append(purged_frame(gap))
        return gap.last_seq

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event fires, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if not self._read and self._known > self.last_seq:
                # Concurrent commits in this process are offered slightly out of order, and
                # NOTIFY can beat the committing task's own offer: give them a moment.
                await asyncio.sleep(GAP_GRACE_S)
                if self._known <= self.last_seq and not self._read:
                    continue
            self._read = False
            try:
                await self._pump()
            except StorageUnavailableError as exc:
                # An outage, not a bug: one line per retry, no traceback.
                log.warning("cannot read new history entries (%s); retrying", exc.__cause__)
                await asyncio.sleep(self.poll_interval_s)
            except Exception:
                log.exception("reading new history entries failed; retrying")
                await asyncio.sleep(self.poll_interval_s)

    async def _pump(self) -> None:
        while True:
            batch = await read_after(self.store, self.last_seq, self.batch)
            self._publish([_frame(e) for e in batch.entries])
            self.last_seq = max(self.last_seq, batch.last)  # past entries not sent
            for seq in [s for s in self._early if s <= self.last_seq]:
                del self._early[seq]
            if not batch.full:
                return

    def _publish(self, entries: Sequence[Published]) -> None:
        for entry in entries:
            if entry.seq <= self.last_seq:
                continue  # published already (offered directly while the table was read)
            self.last_seq = entry.seq
            if not self._subscribers:
                continue
            data = entry.frame()  # made once, shared by every subscriber
            for sub in list(self._subscribers):
                if not sub.filter.matches(entry.run_id, entry.definition):
                    continue
                sub.idle = False
                if not sub.deliver(entry.seq, data):
                    log.info("dropping a feed client %d entries behind", len(sub.items))
                    self._drop(sub)
                    if sub.on_drop is not None:
                        sub.on_drop()

    async def _heartbeats(self) -> None:
        # One task for every client (not a timer per client per message): a client that was
        # sent nothing since the last round gets an SSE comment, so proxies keep it open.
        while True:
            await asyncio.sleep(self.heartbeat_s)
            for sub in list(self._subscribers):
                if sub.idle:
                    sub.deliver(BEAT, HEARTBEAT)
                sub.idle = True

    def _drop(self, sub: Subscription) -> None:
        # The client's stream ends; it reconnects with Last-Event-ID and replays the rest.
        self._subscribers.discard(sub)
        sub.direct = None
        sub.items.clear()
        sub.put(None)


def _frame(entry: Entry) -> Published:
    return Published(entry.seq, entry.run_id, entry.definition, entry.json)

"""One feed client: what it wants, and its bounded mailbox of SSE frames."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from signoff.engine.views import HistoryEntry

_ENCODER = msgspec.json.Encoder()
HEARTBEAT = b": ping\n\n"


@dataclass(frozen=True)
class FeedFilter:
    """Which entries a subscriber wants: one run, one definition, or (both None) all."""

    run_id: str | None = None
    definition: str | None = None

    def matches(self, run_id: str, definition: str) -> bool:
        if self.run_id is not None and run_id != self.run_id:
            return False
        return self.definition is None or definition == self.definition


@dataclass(frozen=True)
class Published:
    """A history entry on its way to subscribers: whom it concerns, and its JSON."""

    seq: int
    run_id: str
    definition: str
    data: bytes

    @classmethod
    def of(cls, entry: HistoryEntry) -> Published:
        return cls(entry.seq, entry.run_id, entry.run.definition, _ENCODER.encode(entry))

    def frame(self) -> bytes:
        """The SSE message."""
        return b"id: %d\nevent: transition\ndata: %s\n\n" % (self.seq, self.data)


BEAT = -1  # the seq of a heartbeat item: always sent, never counted


Item = tuple[int, bytes] | None  # (seq, frame), or None: the stream ends


class Subscription:
    """One client's bounded mailbox: a deque and at most one waiting reader.

    Leaner than asyncio.Queue (no putter/getter deques, no join support) in memory per idle
    client and in work per delivered frame, which is what one process does most of."""

    __slots__ = ("filter", "idle", "items", "limit", "on_drop", "waiter")

    def __init__(
        self, where: FeedFilter, limit: int, on_drop: Callable[[], None] | None = None
    ) -> None:
        self.filter = where
        self.on_drop = on_drop
        self.items: deque[Item] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None
        self.idle = True  # nothing queued since the last heartbeat round

    def put(self, item: Item) -> bool:
        """Queue an item; False if the mailbox is full (end-of-stream always fits)."""
        if item is not None and len(self.items) >= self.limit:
            return False
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def wait(self) -> None:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

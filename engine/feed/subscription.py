"""One feed client: what it wants, and its bounded mailbox of SSE frames."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import msgspec

from signoff.engine.audit.formats import PurgedLine

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

    def frame(self) -> bytes:
        """The SSE message."""
        return b"id: %d\nevent: transition\ndata: %s\n\n" % (self.seq, self.data)


def purged_frame(gap: PurgedLine) -> bytes:
    """The SSE message that says the entries after `after_seq` up to `last_seq` were purged
    (`signoff purge`): its id is `last_seq`, so a client that resumes from it goes on after."""
    return b"id: %d\nevent: purged\ndata: %s\n\n" % (gap.last_seq, _ENCODER.encode(gap))


BEAT = -1  # the seq of a heartbeat item: always sent, never counted


Item = tuple[int, bytes] | None  # (seq, frame), or None: the stream ends

# Writes a frame to the client's connection at once, if it can without waiting (the server
# provides it: api/send_timeout.py); False when the connection is paused or closing, and the
# frame must take the mailbox and the stream's own, bounded, send instead.
Direct: TypeAlias = Callable[[bytes], bool]


class Subscription:
    """One client's bounded mailbox: a deque and at most one waiting reader.

    Leaner than asyncio.Queue (no putter/getter deques, no join support) in memory per idle
    client and in work per delivered frame, which is what one process does most of.

    While the client keeps up and its stream waits with an empty mailbox, `direct` is set:
    `deliver` then writes a frame to the connection itself, with no task to wake per client.
    The first frame it cannot write that way (a full socket) clears `direct` and takes the
    mailbox, and the stream sends it (and what follows) with the send timeout."""

    __slots__ = ("direct", "filter", "idle", "items", "limit", "on_drop", "sent", "waiter")

    def __init__(
        self, where: FeedFilter, limit: int, on_drop: Callable[[], None] | None = None
    ) -> None:
        self.filter = where
        self.on_drop = on_drop
        self.items: deque[Item] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None
        self.idle = True  # nothing queued since the last heartbeat round
        self.direct: Direct | None = None
        self.sent = 0  # the highest seq the client was sent (or had, replayed)

    def deliver(self, seq: int, frame: bytes) -> bool:
        """Send a frame: on the connection at once if `direct` allows, else through the
        mailbox. False if the mailbox is full."""
        direct = self.direct
        if direct is not None:
            if seq <= self.sent and seq != BEAT:
                return True  # sent already
            if direct(frame):
                self.sent = max(self.sent, seq)
                return True
            self.direct = None  # the stream takes over, in order, until it has caught up
        return self.put((seq, frame))

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

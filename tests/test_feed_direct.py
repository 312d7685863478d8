"""Live frames written to the connection by the broadcaster itself, and the switch back to the
stream's own (bounded) send when the connection cannot take them: engine/feed, with a stand-in
for the server's direct write (the real one is exercised by every test in test_feed.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from signoff.engine import FeedFilter, Runtime
from signoff.engine.feed.broadcaster import Feed
from signoff.engine.feed.subscription import HEARTBEAT, Published
from tests.helpers import eventually


class Connection:
    """What reached the client, in order, by either path; `open` says if a direct write is
    taken now (False: as a full socket, the frame must wait for the stream's send)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.direct_writes = 0
        self.open = True

    def direct(self, frame: bytes) -> bool:
        if not self.open:
            return False
        self.direct_writes += 1
        self.received.append(frame)
        return True

    async def drain(self, frames: AsyncIterator[bytes]) -> None:
        async for chunk in frames:  # what the stream yields goes out through its send
            self.received.append(chunk)


def entry(seq: int, definition: str = "approval") -> Published:
    return Published(seq, f"run-{seq}", definition, b'{"seq":%d}' % seq)


def seqs(received: list[bytes]) -> list[int]:
    joined = b"".join(received)
    return [int(line[4:]) for line in joined.split(b"\n") if line.startswith(b"id: ")]


async def _started(feed: Feed, where: FeedFilter, conn: Connection) -> asyncio.Task[None]:
    frames = feed.follow(where, None, direct=conn.direct)
    task = asyncio.create_task(conn.drain(frames))
    await eventually(lambda: _direct_on(feed))
    return task


async def _direct_on(feed: Feed) -> bool:
    return all(sub.direct is not None for sub in feed._subscribers) and bool(feed._subscribers)


async def test_frames_go_direct_then_through_the_stream_then_direct_again(
    runtime: Runtime,
) -> None:
    feed = Feed(runtime.store, buffer=64)
    feed.last_seq = 100
    conn = Connection()
    task = await _started(feed, FeedFilter(), conn)

    for seq in (101, 102, 103):
        feed.offer(entry(seq))
    assert conn.direct_writes == 3  # written in offer(), no task ran in between
    assert seqs(conn.received) == [101, 102, 103]

    conn.open = False  # the socket is full: 104 waits for the stream's send...
    feed.offer(entry(104))
    conn.open = True  # ...and, though the socket has room again, 105 and 106 wait behind it
    for seq in (105, 106):
        feed.offer(entry(seq))
    assert conn.direct_writes == 3
    await eventually(lambda: _direct_on(feed))  # caught up: the broadcaster writes again
    for seq in (107, 108):
        feed.offer(entry(seq))
    assert conn.direct_writes == 5
    assert seqs(conn.received) == list(range(101, 109))  # in order, none missing or twice

    feed.disconnect_all()
    await asyncio.wait_for(task, 5)
    assert feed.subscriber_count == 0


async def test_direct_frames_respect_the_filter(runtime: Runtime) -> None:
    feed = Feed(runtime.store)
    feed.last_seq = 10
    conn = Connection()
    task = await _started(feed, FeedFilter(definition="approval"), conn)
    feed.offer(entry(11, "expense"))
    feed.offer(entry(12))
    assert seqs(conn.received) == [12]
    feed.disconnect_all()
    await asyncio.wait_for(task, 5)


async def test_a_client_that_cannot_take_frames_overflows_and_is_dropped(
    runtime: Runtime,
) -> None:
    feed = Feed(runtime.store, buffer=4)
    feed.last_seq = 0
    dropped: list[bool] = []
    stuck = asyncio.Event()  # never set: the stream's send waits for a socket that stays full
    conn = Connection()
    frames = feed.follow(
        FeedFilter(), None, on_drop=lambda: dropped.append(True), direct=conn.direct
    )

    async def send_stuck() -> None:
        async for _chunk in frames:
            await stuck.wait()

    task = asyncio.create_task(send_stuck())
    await eventually(lambda: _direct_on(feed))
    conn.open = False
    feed.offer(entry(1))  # refused directly: queued, and the stream's send takes it and sticks
    await asyncio.sleep(0)
    for seq in range(2, 10):
        feed.offer(entry(seq))
    assert dropped == [True]  # 4 queued behind the stuck send, the 5th overflows
    assert feed.subscriber_count == 0
    assert conn.direct_writes == 0
    task.cancel()


async def test_heartbeats_go_direct_to_an_idle_client(runtime: Runtime) -> None:
    feed = Feed(runtime.store, heartbeat_s=0.05)
    await feed.start()
    try:
        conn = Connection()
        task = await _started(feed, FeedFilter(), conn)
        await eventually(lambda: _has(conn, HEARTBEAT))
        assert conn.direct_writes >= 1
        feed.disconnect_all()
        await asyncio.wait_for(task, 5)
    finally:
        await feed.stop()


async def _has(conn: Connection, data: bytes) -> bool:
    return data in conn.received

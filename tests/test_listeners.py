"""Listeners after commit are isolated: one that raises is logged and counted, and the caller
still gets the committed result."""

from __future__ import annotations

import logging

import pytest

from signoff.engine import Committed, Observer, Runtime


class Counting(Observer):
    def __init__(self) -> None:
        self.failures = 0

    def listener_failure(self) -> None:
        self.failures += 1


async def test_a_listener_that_raises_leaves_the_transition_committed(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    observer = Counting()
    runtime.dispatcher.observer = observer
    seen: list[int] = []

    def broken(committed: Committed) -> None:
        raise RuntimeError("a listener bug")

    runtime.dispatcher.listeners.insert(0, broken)
    runtime.dispatcher.listeners.append(lambda committed: seen.append(committed.seq))
    with caplog.at_level(logging.ERROR, logger="signoff.dispatcher"):
        created = await runtime.dispatcher.create("approval", actor="a", input={"output": 0.9})
        moved = await runtime.dispatcher.dispatch(created.run_id, "process", actor="a")
    assert created.created and (created.version, moved.version) == (1, 2)
    run = await runtime.queries.get(created.run_id)
    assert (run.version, run.state) == (2, "sending_to_queue")
    assert observer.failures == 2
    assert len(seen) == 2  # the listeners after the broken one still ran
    assert runtime.feed.last_seq == seen[-1]  # and so did the feed's
    assert caplog.text.count("a commit listener failed") == 2

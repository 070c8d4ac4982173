"""bridge.waits: a timed wait on an event that never swallows a cancellation (sans-IO, one event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bridge.waits import wait_event


def test_it_says_whether_the_event_came_within_the_timeout() -> None:
    async def scenario() -> tuple[bool, bool]:
        event = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, event.set)
        came = await wait_event(event, 1.0)
        event.clear()
        return came, await wait_event(event, 0.01)

    assert asyncio.run(scenario()) == (True, False)


async def _loop_ends_when_cancelled_as_woken(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    """A task waiting in a loop, woken and cancelled in the same turn (TWS closing as the bridge stops)."""
    event = asyncio.Event()

    async def serve() -> None:
        while True:
            event.clear()
            await wait(event)

    task = asyncio.create_task(serve())
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    await asyncio.wait([task], timeout=1.0)
    ended = task.done()
    task.cancel()  # a task that swallowed the first gets another, to end the test
    return ended


def test_a_cancellation_in_the_same_turn_as_the_event_ends_the_waiting_loop() -> None:
    assert asyncio.run(_loop_ends_when_cancelled_as_woken(lambda e: wait_event(e, 5.0)))

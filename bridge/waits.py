"""Waiting on an asyncio.Event with a timeout, in a task that must end when cancelled.

Not `asyncio.wait_for(event.wait(), timeout)`: on Python 3.11 it swallows a cancellation that
arrives while the event is being set (CPython gh-86296; 3.12 rewrote wait_for). A task that waits so
in a loop then never ends, and a stop that gathers it hangs for good. The bridge did, when TWS
closed the connection as it was being stopped: the history desk's wake-up and the stop's
cancellation came in the same turn of the loop. `asyncio.timeout` keeps the cancellation.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True once `event` is set, False after `timeout` seconds; a cancellation always propagates."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True

"""Request pacing: TWS disconnects an API client that sends more than 50 messages a second
(error 100, "Max rate of messages per second has been exceeded"). Restoring 100 subscriptions
after a TWS restart would do exactly that, so requests beyond the budget wait their turn.

Sans-IO: the caller passes the clock and asks when to flush next.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Pacer(Generic[T]):
    """At most `limit` items per `window` seconds; the rest queue in order."""

    def __init__(self, limit: int = 45, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()  # send times within the current window
        self._queue: deque[T] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, item: T, now: float) -> list[T]:
        """Queue `item`; returns what may go out now (in submission order)."""
        self._queue.append(item)
        return self.due(now)

    def due(self, now: float) -> list[T]:
        sent = self._sent
        while sent and now - sent[0] >= self.window:
            sent.popleft()
        out: list[T] = []
        while self._queue and len(sent) < self.limit:
            out.append(self._queue.popleft())
            sent.append(now)
        return out

    def next_due(self, now: float) -> float | None:
        """Seconds until queued items may go, or None if nothing waits."""
        if not self._queue:
            return None
        return max(0.0, self._sent[0] + self.window - now) if self._sent else 0.0

    def clear(self) -> None:
        """Drop what waits (the connection it was meant for is gone)."""
        self._queue.clear()
        self._sent.clear()

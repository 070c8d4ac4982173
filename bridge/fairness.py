"""Fair use of TWS's message budget among the bridge's clients (docs/bus.md, Fairness).

TWS takes 50 messages a second from the bridge, for everyone. One client pipelining hundreds
of contract lookups must not push the others' requests seconds back, so what waits for the
pacer waits in lanes, one per client (and one for the bridge's own restores and cancels),
served round-robin; urgent messages (the API start, heartbeats) go first. Instruments TWS
refused are remembered for a while so that asking again costs TWS nothing.

Sans-IO: no sockets, no clock of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

SYSTEM = None  # the lane of the bridge's own requests (restores, cancels)


class Lanes(Generic[T]):
    """Round-robin over lanes, first in first out within each; urgent entries before all."""

    def __init__(self) -> None:
        self._urgent: deque[T] = deque()
        self._lanes: dict[Hashable, deque[T]] = {}
        self._turns: deque[Hashable] = deque()  # lanes with entries, in serving order
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, lane: Hashable, item: T, urgent: bool = False) -> None:
        self._size += 1
        if urgent:
            self._urgent.append(item)
            return
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self._turns.append(lane)
        queue.append(item)

    def pop(self) -> T | None:
        if self._urgent:
            self._size -= 1
            return self._urgent.popleft()
        if not self._turns:
            return None
        lane = self._turns.popleft()
        queue = self._lanes[lane]
        item = queue.popleft()
        if queue:
            self._turns.append(lane)
        else:
            del self._lanes[lane]
        self._size -= 1
        return item

    def remove(self, lane: Hashable, item: T) -> bool:
        """Take a waiting entry out (its requester gave up); False if it is not waiting."""
        queue = self._lanes.get(lane)
        if queue is None or not any(x is item for x in queue):
            return False
        queue.remove(item)
        self._size -= 1
        if not queue:
            del self._lanes[lane]
            self._turns.remove(lane)
        return True

    def ahead_of(self, lane: Hashable, item: T) -> int:
        """How many waiting entries go out before `item` (round-robin), or -1 if it is not waiting."""
        queue = self._lanes.get(lane)
        if queue is None:
            return -1
        place = next((i for i, x in enumerate(queue) if x is item), -1)
        if place < 0:
            return -1
        turn = self._turns.index(lane)
        others = sum(
            min(len(self._lanes[other]), place + (1 if i < turn else 0))
            for i, other in enumerate(self._turns)
            if other != lane
        )
        return len(self._urgent) + place + others

    def drain(self) -> list[T]:
        """Everything waiting, urgent first then by lane; the queue is empty after."""
        items = list(self._urgent) + [x for lane in self._turns for x in self._lanes[lane]]
        self._urgent.clear()
        self._lanes.clear()
        self._turns.clear()
        self._size = 0
        return items


class Refusal(NamedTuple):
    code: int
    message: str
    at: float


class RefusalCache(Generic[K]):
    """Instruments TWS refused (error 200, no security definition), remembered for `ttl` seconds."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._refused: dict[K, Refusal] = {}

    def remember(self, key: K, code: int, message: str, now: float) -> None:
        if self.ttl <= 0:
            return
        if len(self._refused) >= self.size:
            self._refused.pop(next(iter(self._refused)))  # the oldest: dicts keep insertion order
        self._refused.pop(key, None)
        self._refused[key] = Refusal(code, message, now)

    def get(self, key: K, now: float) -> Refusal | None:
        refusal = self._refused.get(key)
        if refusal is None:
            return None
        if now - refusal.at >= self.ttl:
            del self._refused[key]
            return None
        return refusal

    def clear(self) -> None:
        self._refused.clear()

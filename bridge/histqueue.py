"""The historical scheduler's waiting line: a lane per asker, served round-robin, first in first
out within each, as bridge/fairness.py's Lanes; here one entry may wait in several lanes at once
(askers who asked the same thing), so a joiner never waits behind another asker's backlog.

Sans-IO, no clock.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedLanes(Generic[T]):
    """Round-robin over askers' lanes; an entry leaves every lane it waits in when it is served."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, deque[T]] = {}
        self._turns: deque[Hashable] = deque()  # askers with a non-empty lane, in serving order
        self._holders: dict[int, set[Hashable]] = {}  # id(entry) -> askers whose lane holds it
        self.entries = 0  # lane places taken (an entry in two lanes takes two)

    def __len__(self) -> int:
        return self.entries

    def lane_length(self, asker: Hashable) -> int:
        return len(self._lanes.get(asker, ()))

    def holds(self, asker: Hashable, entry: T) -> bool:
        return asker in self._holders.get(id(entry), ())

    def push(self, asker: Hashable, entry: T, front: bool = False) -> None:
        """Queue `entry` in `asker`'s lane (at its front: a retry goes first)."""
        lane = self._lanes.get(asker)
        if lane is None:
            lane = self._lanes[asker] = deque()
            if front:
                self._turns.appendleft(asker)
            else:
                self._turns.append(asker)
        if front:
            lane.appendleft(entry)
        else:
            lane.append(entry)
        self._holders.setdefault(id(entry), set()).add(asker)
        self.entries += 1

    def remove(self, asker: Hashable, entry: T) -> None:
        holders = self._holders.get(id(entry), set())
        if asker not in holders:
            return
        lane = self._lanes[asker]
        lane.remove(entry)
        holders.discard(asker)
        if not holders:
            del self._holders[id(entry)]
        self.entries -= 1
        if not lane:
            del self._lanes[asker]
            self._turns.remove(asker)

    def remove_everywhere(self, entry: T) -> None:
        for asker in list(self._holders.get(id(entry), ())):
            self.remove(asker, entry)

    def heads(self) -> list[tuple[Hashable, T]]:
        """Each lane's first entry, in serving order."""
        return [(asker, self._lanes[asker][0]) for asker in self._turns]

    def serve(self, asker: Hashable, entry: T) -> None:
        """`entry` goes out: it leaves every lane, and `asker` goes to the back of the line."""
        self.remove_everywhere(entry)
        if asker in self._lanes:
            self._turns.remove(asker)
            self._turns.append(asker)

    def ahead(self, asker: Hashable, entry: T) -> list[T]:
        """The distinct entries served before `entry` of `asker`'s lane if nothing else changes."""
        lane = self._lanes[asker]
        place = lane.index(entry)
        turn = self._turns.index(asker)
        before: dict[int, T] = {}
        for i, other in enumerate(self._turns):
            take = place if other == asker or i > turn else place + 1
            for item in itertools.islice(self._lanes[other], take):
                before[id(item)] = item
        before.pop(id(entry), None)
        return list(before.values())

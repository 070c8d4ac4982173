"""Sequence numbers that survive a line being dropped and created again (docs/bus.md, Sequence
numbers and epochs).

A topic's `seq` rises by one per message for the whole life of a bridge process (one epoch), so a
consumer never mistakes a re-created line for a bridge restart. When a line goes, its last seq is
remembered here; a new line for the topic continues from it. Memory is bounded: past
`capacity` topics the oldest is forgotten, and `floor` (the highest seq forgotten) is where a
topic not remembered starts, so no topic's seq can ever go back.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_REMEMBERED_TOPICS = 50_000


class Seqs:
    def __init__(self, capacity: int = MAX_REMEMBERED_TOPICS) -> None:
        self.capacity = capacity
        self.floor = 0
        self._last: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def resume(self, topic: bytes) -> int:
        """The seq a new line for `topic` starts from (its next message is this + 1)."""
        last = self._last.pop(topic, None)
        return self.floor if last is None else last

    def remember(self, topic: bytes, seq: int) -> None:
        """A line for `topic` is gone; its last message had `seq`."""
        self._last[topic] = seq
        self._last.move_to_end(topic)
        if len(self._last) > self.capacity:
            _, forgotten = self._last.popitem(last=False)
            self.floor = max(self.floor, forgotten)

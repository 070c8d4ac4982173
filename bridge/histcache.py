"""Recent historical answers, kept in memory so that asking again costs TWS nothing.

Bounded twice, by bytes (the answers' sizes as the bridge measures them) and by entries, least
recently used first out; each entry also has its own end of freshness (histkey.fresh_until).

Sans-IO: the caller passes the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cached:
    outcome: Any  # histkey.Outcome
    answer: Any  # whatever the bridge stored: bars, ticks, a timestamp
    size: int
    answered_at: float
    fresh_until: float


class AnswerCache:
    """LRU of answers by key, at most `max_bytes` and `max_entries`; stale entries are never served."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entries: int = 10_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self.evicted = 0
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float) -> Cached | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.fresh_until:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: Cached) -> bool:
        """Keep an answer (False if it is stale already or larger than the whole cache)."""
        self._drop(key)
        if entry.fresh_until <= entry.answered_at or entry.size > self.max_bytes:
            return False
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
            self.evicted += 1
        return True

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

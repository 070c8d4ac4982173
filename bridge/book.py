"""The subscription book: which consumers want what, and which TWS requests that costs.

Sans-IO and clock-free (callers pass `now`), so sharing, leases and expiry are tested without
sockets. One `Line` is one TWS request; any number of consumer subscriptions share it, each
holding a lease that must be renewed. The caller sends the TWS request when `subscribe` says
the line is new, and cancels it when `unsubscribe` or `expire` hands a line back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from .protocol import Contract
from .seqs import Seqs


class LineKey(NamedTuple):
    """What makes two subscriptions share one TWS request."""

    instrument: str
    kind: str
    market_data_type: str = "live"
    generic_ticks: str = ""

    @property
    def topic(self) -> str:
        topic = f"{self.kind}/{self.instrument}"
        if self.market_data_type != "live":
            topic += f"/{self.market_data_type}"
        if self.generic_ticks:
            topic += f"/g{self.generic_ticks}"
        return topic


@dataclass(eq=False)
class Line:
    """One TWS request and everything the hot path needs to publish its answers."""

    key: LineKey
    contract: Contract
    req_id: int
    topic: bytes
    leases: dict[str, float] = field(default_factory=dict)  # subscription id -> expiry
    latest: dict[str, object] = field(default_factory=dict)
    seq: int = 0
    # An outage window of this stream alone, closed by its next data: (reason, message, code) of the
    # `resumed` marker to send then (10197, or a line requested again after TWS lost it).
    stale: tuple[str, str, int | None] | None = None
    # The entry of this line's request in the TWS pacer while it may still wait there: a line
    # dropped before TWS saw its request is taken back, not cancelled (a cancel would overtake it).
    queued: object = None


class SubscriptionBook:
    def __init__(self) -> None:
        self._lines: dict[LineKey, Line] = {}
        self._by_req: dict[int, Line] = {}
        self._by_req_field: dict[bytes, Line] = {}  # the same, keyed by req_id as TWS writes it
        self._by_sub: dict[str, Line] = {}
        self._lease_seconds: dict[str, float] = {}
        self.seqs = Seqs()  # a topic's seq goes on where it stopped when its line comes back

    @property
    def by_req_id(self) -> dict[int, Line]:
        """req_id -> line; the hot path's one lookup per event."""
        return self._by_req

    @property
    def by_req_field(self) -> dict[bytes, Line]:
        """req_id as TWS writes it (b"17") -> line: the hot path finds a tick's line from its wire
        field, without int()."""
        return self._by_req_field

    def _index(self, req_id: int, line: Line) -> None:
        self._by_req[req_id] = line
        self._by_req_field[b"%d" % req_id] = line

    def _unindex(self, req_id: int) -> None:
        self._by_req.pop(req_id, None)
        self._by_req_field.pop(b"%d" % req_id, None)

    def lines(self) -> list[Line]:
        return list(self._lines.values())

    def subscription_count(self) -> int:
        return len(self._by_sub)

    def subscribe(
        self, key: LineKey, contract: Contract, req_id: int, lease: float, now: float
    ) -> tuple[Line, str, bool]:
        """Add a consumer subscription. Returns (line, subscription id, whether the line is new).
        `req_id` is used only when the line is new."""
        line = self._lines.get(key)
        is_new = line is None
        if line is None:
            line = Line(key, contract, req_id, key.topic.encode())
            line.seq = self.seqs.resume(line.topic)
            self._lines[key] = line
            self._index(req_id, line)
        sub_id = secrets.token_hex(8)
        line.leases[sub_id] = now + lease
        self._by_sub[sub_id] = line
        self._lease_seconds[sub_id] = lease
        return line, sub_id, is_new

    def renew(self, sub_ids: list[str], now: float) -> tuple[list[str], list[str]]:
        renewed, unknown = [], []
        for sub_id in sub_ids:
            line = self._by_sub.get(sub_id)
            if line is None:
                unknown.append(sub_id)
            else:
                line.leases[sub_id] = now + self._lease_seconds[sub_id]
                renewed.append(sub_id)
        return renewed, unknown

    def unsubscribe(self, sub_id: str) -> tuple[bool, Line | None]:
        """(whether the id was known, the line if it is now unused and must be cancelled)."""
        line = self._by_sub.pop(sub_id, None)
        if line is None:
            return False, None
        del line.leases[sub_id]
        del self._lease_seconds[sub_id]
        return True, self._drop_if_unused(line)

    def expire(self, now: float) -> tuple[list[str], list[Line]]:
        """Drop every lease that lapsed. Returns (dropped subscription ids, lines now unused)."""
        dropped: list[str] = []
        emptied: list[Line] = []
        for line in list(self._lines.values()):
            for sub_id, expiry in list(line.leases.items()):
                if expiry <= now:
                    dropped.append(sub_id)
                    del line.leases[sub_id]
                    del self._by_sub[sub_id]
                    del self._lease_seconds[sub_id]
            unused = self._drop_if_unused(line)
            if unused is not None:
                emptied.append(unused)
        return dropped, emptied

    def remove_line(self, line: Line) -> list[str]:
        """Forget a line TWS refused or cancelled; returns the subscription ids it held."""
        ids = list(line.leases)
        for sub_id in ids:
            self._by_sub.pop(sub_id, None)
            self._lease_seconds.pop(sub_id, None)
        line.leases.clear()
        self._drop_if_unused(line)
        return ids

    def reassign(self, line: Line, req_id: int) -> None:
        """Give a line a new TWS request id (after a reconnect)."""
        self._unindex(line.req_id)
        line.req_id = req_id
        self._index(req_id, line)

    def _drop_if_unused(self, line: Line) -> Line | None:
        if line.leases:
            return None
        if self._lines.pop(line.key, None) is not None:
            self.seqs.remember(line.topic, line.seq)
        self._unindex(line.req_id)
        return line

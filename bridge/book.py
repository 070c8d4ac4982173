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

from .hbars import BarSeries, BarSpec
from .protocol import Contract
from .seqs import Seqs


class LineKey(NamedTuple):
    """What makes two subscriptions share one TWS request."""

    instrument: str
    kind: str
    market_data_type: str = "live"
    generic_ticks: str = ""
    bars: BarSpec | None = None  # hbars: bar size, whatToShow, useRTH

    @property
    def topic(self) -> str:
        topic = f"{self.kind}/{self.instrument}"
        if self.market_data_type != "live":
            topic += f"/{self.market_data_type}"
        if self.generic_ticks:
            topic += f"/g{self.generic_ticks}"
        if self.bars is not None:
            topic += f"/{self.bars.topic}"
        return topic


class ViewKey(NamedTuple):
    """What makes two conflated subscriptions of one line share a view (and its topic)."""

    interval_ms: int
    fields: tuple[str, ...] = ()  # sorted; () is every field

    def topic(self, line_topic: str) -> str:
        topic = f"{line_topic}/every{self.interval_ms}ms"
        return f"{topic}/{','.join(self.fields)}" if self.fields else topic


@dataclass(eq=False)
class View:
    """A conflated view of a line (subscribe with `conflate`): its latest values, or some of them,
    published at most once an interval and only when they changed. The line's stream is published
    once for everyone; a view costs nothing per tick, only per interval."""

    key: ViewKey
    topic: bytes
    subs: set[str] = field(default_factory=set)
    seq: int = 0
    line_seq: int = 0  # the line's seq that the last published values reflect
    sent: dict[str, object] | None = None  # the values last published
    due: float = 0.0  # event-loop time of the next look; 0 until the publisher has seen the view

    def values(self, latest: dict[str, object]) -> dict[str, object]:
        fields = self.key.fields
        return dict(latest) if not fields else {f: latest[f] for f in fields if f in latest}


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
    views: dict[ViewKey, View] = field(default_factory=dict)
    # hbars only: the bars consumers have been told, and the keep-up-to-date request in the
    # historical scheduler (bar_streams.Stream), which sends it when IB's pacing allows.
    series: BarSeries | None = None
    stream: object = None


class SubscriptionBook:
    def __init__(self) -> None:
        self._lines: dict[LineKey, Line] = {}
        self._by_req: dict[int, Line] = {}
        self._by_req_field: dict[bytes, Line] = {}  # the same, keyed by req_id as TWS writes it
        self._by_sub: dict[str, Line] = {}
        self._view_of: dict[str, View] = {}  # subscription id -> its view, for conflated ones
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

    def line(self, key: LineKey) -> Line | None:
        return self._lines.get(key)

    def view_of(self, sub_id: str) -> View | None:
        return self._view_of.get(sub_id)

    def views(self) -> list[tuple[View, Line]]:
        return [(view, line) for line in self._lines.values() for view in line.views.values()]

    def subscribe(
        self, key: LineKey, contract: Contract, req_id: int, lease: float, now: float, view: ViewKey | None = None
    ) -> tuple[Line, str, bool]:
        """Add a consumer subscription (to the line's stream, or to a conflated `view` of it).
        Returns (line, subscription id, whether the line is new). `req_id` is used only when the
        line is new."""
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
        if view is not None:
            shared = line.views.get(view)
            if shared is None:
                topic = view.topic(key.topic).encode()
                shared = line.views[view] = View(view, topic, seq=self.seqs.resume(topic), line_seq=line.seq)
            shared.subs.add(sub_id)
            self._view_of[sub_id] = shared
        return line, sub_id, is_new

    def _forget(self, sub_id: str, line: Line) -> None:
        """A subscription is gone: out of its view, and the view out of the line when it was the last."""
        del line.leases[sub_id]
        del self._lease_seconds[sub_id]
        view = self._view_of.pop(sub_id, None)
        if view is not None:
            view.subs.discard(sub_id)
            if not view.subs:
                del line.views[view.key]
                self.seqs.remember(view.topic, view.seq)

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
        self._forget(sub_id, line)
        return True, self._drop_if_unused(line)

    def expire(self, now: float) -> tuple[list[str], list[Line]]:
        """Drop every lease that lapsed. Returns (dropped subscription ids, lines now unused)."""
        dropped: list[str] = []
        emptied: list[Line] = []
        for line in list(self._lines.values()):
            for sub_id, expiry in list(line.leases.items()):
                if expiry <= now:
                    dropped.append(sub_id)
                    del self._by_sub[sub_id]
                    self._forget(sub_id, line)
            unused = self._drop_if_unused(line)
            if unused is not None:
                emptied.append(unused)
        return dropped, emptied

    def remove_line(self, line: Line) -> list[str]:
        """Forget a line TWS refused or cancelled; returns the subscription ids it held."""
        ids = list(line.leases)
        for sub_id in ids:
            self._by_sub.pop(sub_id, None)
            self._forget(sub_id, line)
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

"""Keep-up-to-date bars, the `hbars` data kind (docs/bus.md, Keep-up-to-date bars): what a line is
(`BarSpec`) and how TWS's answers become complete bars and the forming one (`BarSeries`).

One reqHistoricalData with keepUpToDate per instrument, bar size, whatToShow and useRTH, shared by
every consumer: TWS first sends the backfill (its last bar is the one forming), then
historicalDataUpdate with the forming bar whenever it changes. TWS never says a bar is finished;
its next bar starting is what says so. So a bar is published as complete (`bar_close`) when TWS
first sends a later one, and a complete bar is never published again: a consumer that keeps every
`bar_close` holds exactly the complete bars, in order, without a gap or a duplicate.

Sans-IO and clock-free: rows in, (complete, row) pairs to publish out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from .histrules import BAR_SIZES, longest_duration

KIND = "hbars"
MIN_BAR_SECONDS = 5  # IB keeps bars of 5 seconds and more up to date (keepUpToDate), not 1-second bars
BAR_CHOICES = tuple(name for name, seconds in BAR_SIZES.items() if seconds >= MIN_BAR_SECONDS)
MAX_BACKFILL = 1000  # complete bars a line keeps for late joiners, and the most a subscribe reply carries
MAX_LINES = 30  # of IB's 50 open historical requests (45 with the bridge's margin): the rest is for `history`

Row = list[Any]  # history_rows.BAR_COLUMNS: time, open, high, low, close, volume, wap, count
Published = list[tuple[bool, Row]]  # (complete, bar), in the order to publish them


class BarSpec(NamedTuple):
    """The bar settings of an hbars line: with the instrument, what makes two consumers share it."""

    bar: str  # IB's spelling, e.g. "1 min"
    what: str  # whatToShow, upper-case
    rth: bool  # regular trading hours only

    @property
    def topic(self) -> str:
        """The topic's tail: `1min/TRADES`, `/rth` added for regular trading hours."""
        tail = f"{self.bar.replace(' ', '')}/{self.what}"
        return f"{tail}/rth" if self.rth else tail

    @property
    def seconds(self) -> int:
        return BAR_SIZES[self.bar]

    @property
    def duration(self) -> str:
        """How far back the backfill reaches: one request's worth, the longest IB's step sizes
        allow for the bar (1 min: 1 D, 5 secs: 3600 S, 1 hour: 30 D; daily and longer: 1 Y)."""
        longest = longest_duration(self.bar)
        if longest is None:
            return "1 Y"
        return "30 D" if longest.endswith(" M") else longest  # a month's length depends on the calendar


class BarSeries:
    """The bars of one line as consumers have been told them: the complete ones (the last
    MAX_BACKFILL, for late joiners) and the one forming."""

    def __init__(self, keep: int = MAX_BACKFILL) -> None:
        self.complete: deque[Row] = deque(maxlen=keep)
        self.forming: Row | None = None
        self.backfilled = False  # TWS's backfill has come at least once
        self._incoming: list[Row] = []

    def receive(self, rows: Iterable[Row]) -> None:
        """Part of a backfill (historicalData); it is folded in when the backfill ends."""
        self._incoming.extend(rows)

    def backfill_end(self) -> Published:
        """The backfill is complete: every bar after the last complete one consumers know is new to
        them (after an outage: the bars they missed, and the one forming when it began, now complete);
        the last is the forming bar. Earlier bars were published complete already and stay as they were."""
        by_time = {row[0]: row for row in self._incoming}
        self._incoming = []
        self.backfilled = True
        last = self.complete[-1][0] if self.complete else None
        fresh = [by_time[t] for t in sorted(by_time) if last is None or t > last]
        if not fresh:
            return []
        forming = fresh.pop()
        out: Published = []
        for row in fresh[-(self.complete.maxlen or 0) :]:
            self.complete.append(row)
            out.append((True, row))
        self.forming = forming
        out.append((False, forming))
        return out

    def update(self, row: Row) -> Published:
        """historicalDataUpdate: the forming bar again, or a new one (the previous is then complete)."""
        t = row[0]
        forming = self.forming
        if self.complete and t <= self.complete[-1][0]:
            return []  # a complete bar never changes
        if forming is not None:
            if t < forming[0] or row == forming:
                return []  # out of order, or nothing new
            if t > forming[0]:
                self.complete.append(forming)
                self.forming = row
                return [(True, forming), (False, row)]
        self.forming = row
        return [(False, row)]

    def last(self, count: int) -> list[Row]:
        """The newest `count` complete bars, oldest first (a subscribe reply's backfill)."""
        if count <= 0:
            return []
        held = len(self.complete)
        return [self.complete[i] for i in range(max(0, held - count), held)]

"""What the live market actually did, kept so that history can tell the same story.

Every quote an instrument takes (its opening one and each step) is recorded: aggregated per
second for the last two hours, per minute for a month, and the raw steps for the last 20,000.
Historical bars and ticks of the live era are read from here, so they agree with what
subscribers were sent. The bounds keep a long-running simulator with hundreds of streams to a
few megabytes per instrument; older seconds are derived from their minute (history.py).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .market import Quote

SECOND_RETENTION = 2 * 3600  # 1-second bars span at most 1800 S, 5-second bars 3600 S (TWS's step sizes)
MINUTE_RETENTION = 31 * 24 * 60
STEP_RETENTION = 20_000


class Step(NamedTuple):
    """One quote as it was: the raw material of historical ticks."""

    time: float
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    last: float
    last_size: float
    traded: bool


class Agg:
    """OHLC of trades, bids, asks and midpoints over one bucket of time, with volume and averages."""

    __slots__ = (
        "a_close",
        "a_high",
        "a_low",
        "a_open",
        "ask_sum",
        "b_close",
        "b_high",
        "b_low",
        "b_open",
        "bid_sum",
        "count",
        "m_close",
        "m_high",
        "m_low",
        "m_open",
        "notional",
        "samples",
        "t_close",
        "t_high",
        "t_low",
        "t_open",
        "volume",
    )  # fmt: skip

    def __init__(self, bid: float, ask: float) -> None:
        mid = round((bid + ask) / 2, 10)
        self.t_open = self.t_high = self.t_low = self.t_close = None  # type: float | None
        self.volume = 0.0
        self.count = 0
        self.notional = 0.0
        self.b_open = self.b_high = self.b_low = self.b_close = bid
        self.a_open = self.a_high = self.a_low = self.a_close = ask
        self.m_open = self.m_high = self.m_low = self.m_close = mid
        self.bid_sum = self.ask_sum = 0.0
        self.samples = 0

    def quote(self, bid: float, ask: float) -> None:
        mid = round((bid + ask) / 2, 10)
        self.b_high, self.b_low, self.b_close = max(self.b_high, bid), min(self.b_low, bid), bid
        self.a_high, self.a_low, self.a_close = max(self.a_high, ask), min(self.a_low, ask), ask
        self.m_high, self.m_low, self.m_close = max(self.m_high, mid), min(self.m_low, mid), mid
        self.bid_sum += bid
        self.ask_sum += ask
        self.samples += 1

    def trade(self, price: float, size: float, count: int = 1) -> None:
        if self.t_open is None or self.t_high is None or self.t_low is None:
            self.t_open = self.t_high = self.t_low = price
        self.t_high, self.t_low, self.t_close = max(self.t_high, price), min(self.t_low, price), price
        self.volume = round(self.volume + size, 8)
        self.count += count
        self.notional += price * size

    def merge(self, later: Agg) -> None:
        """Extend this bucket by the one that follows it."""
        self.b_high, self.b_low, self.b_close = (
            max(self.b_high, later.b_high),
            min(self.b_low, later.b_low),
            later.b_close,
        )
        self.a_high, self.a_low, self.a_close = (
            max(self.a_high, later.a_high),
            min(self.a_low, later.a_low),
            later.a_close,
        )
        self.m_high, self.m_low, self.m_close = (
            max(self.m_high, later.m_high),
            min(self.m_low, later.m_low),
            later.m_close,
        )
        self.bid_sum += later.bid_sum
        self.ask_sum += later.ask_sum
        self.samples += later.samples
        if later.t_open is not None:
            if self.t_open is None:
                self.t_open, self.t_high, self.t_low = later.t_open, later.t_high, later.t_low
            else:
                self.t_high = max(self.t_high or later.t_open, later.t_high or later.t_open)
                self.t_low = min(self.t_low or later.t_open, later.t_low or later.t_open)
            self.t_close = later.t_close
            self.volume = round(self.volume + later.volume, 8)
            self.count += later.count
            self.notional += later.notional

    def copy(self) -> Agg:
        out = Agg.__new__(Agg)
        for name in Agg.__slots__:
            setattr(out, name, getattr(self, name))
        return out


class Tape:
    """One instrument's live record since its opening quote."""

    def __init__(self, opening: Quote) -> None:
        self.opened = opening.time
        self.opening_mid = round((opening.bid + opening.ask) / 2, 10)  # where the pre-live path ends
        self.seconds: dict[int, Agg] = {}
        self.minutes: dict[int, Agg] = {}
        self.steps: deque[Step] = deque(maxlen=STEP_RETENTION)
        self.last: Quote = opening
        self.record(opening, traded=opening.traded)

    def record(self, q: Quote, traded: bool | None = None) -> None:
        traded = q.traded if traded is None else traded
        second = int(q.time)
        minute = second - second % 60
        for buckets, key, retention in ((self.seconds, second, SECOND_RETENTION), (self.minutes, minute, 0)):
            agg = buckets.get(key)
            if agg is None:
                agg = buckets[key] = Agg(q.bid, q.ask)
                if retention:
                    self._forget(buckets, key - retention)
                elif len(buckets) > MINUTE_RETENTION:
                    del buckets[next(iter(buckets))]
            agg.quote(q.bid, q.ask)
            if traded:
                agg.trade(q.last, q.last_size)
        self.steps.append(Step(q.time, q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.last_size, traded))
        self.last = q

    @staticmethod
    def _forget(buckets: dict[int, Agg], before: int) -> None:
        while buckets:
            oldest = next(iter(buckets))
            if oldest >= before:
                return
            del buckets[oldest]

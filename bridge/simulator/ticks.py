"""Quotes to the events TWS streams: market-data ticks, tick-by-tick, depth rows, bars.

Pure functions of the market's quotes, so every subscriber of an instrument sees the same
prices, each in its own request id and market-data type.
"""

from __future__ import annotations

from bridge.protocol import TickType as T
from bridge.protocol import events as ev

from .catalogue import Instrument
from .market import Quote

# reqMarketDataType 3/4 (delayed) moves every tick to its delayed twin, 66..76 and 88.
_DELAYED = {
    T.BID: T.DELAYED_BID, T.ASK: T.DELAYED_ASK, T.LAST: T.DELAYED_LAST, T.BID_SIZE: T.DELAYED_BID_SIZE,
    T.ASK_SIZE: T.DELAYED_ASK_SIZE, T.LAST_SIZE: T.DELAYED_LAST_SIZE, T.HIGH: T.DELAYED_HIGH,
    T.LOW: T.DELAYED_LOW, T.VOLUME: T.DELAYED_VOLUME, T.CLOSE: T.DELAYED_CLOSE, T.OPEN: T.DELAYED_OPEN,
    T.LAST_TIMESTAMP: T.DELAYED_LAST_TIMESTAMP,
}  # fmt: skip


def _kind(tick: T, delayed: bool) -> int:
    return int(_DELAYED[tick] if delayed else tick)


def picture(req_id: int, inst: Instrument, q: Quote, delayed: bool) -> list[ev.Event]:
    """Everything a new subscriber (or a snapshot) gets first: the whole current state.

    Forex has no last price or volume (IDEALPRO quotes only); an index has a level (its last)
    and no bid or ask.
    """
    k = [_kind(t, delayed) for t in (T.BID, T.ASK, T.LAST, T.HIGH, T.LOW, T.VOLUME, T.CLOSE, T.OPEN)]
    out: list[ev.Event] = []
    if inst.quotes:
        # tickPrice carries its size: the client reports the matching *_SIZE tick itself.
        out += [ev.TickPrice(req_id, k[0], q.bid, q.bid_size, 0), ev.TickPrice(req_id, k[1], q.ask, q.ask_size, 0)]
    if inst.trades:
        out.append(ev.TickPrice(req_id, k[2], q.last, q.last_size, 0))
        out.append(ev.TickString(req_id, _kind(T.LAST_TIMESTAMP, delayed), str(q.last_time)))
        out.append(ev.TickSize(req_id, k[5], q.volume))
    elif not inst.quotes:
        out.append(ev.TickPrice(req_id, k[2], q.last, 0.0, 0))
    out += [
        ev.TickPrice(req_id, k[3], q.high, 0.0, 0),
        ev.TickPrice(req_id, k[4], q.low, 0.0, 0),
        ev.TickPrice(req_id, k[6], q.close, 0.0, 0),
        ev.TickPrice(req_id, k[7], q.open, 0.0, 0),
    ]
    return out


def _side(
    out: list[ev.Event], req_id: int, price_tick: T, size_tick: T, old: tuple[float, float], new: tuple[float, float],
    delayed: bool,
) -> None:  # fmt: skip
    if new[0] != old[0]:
        out.append(ev.TickPrice(req_id, _kind(price_tick, delayed), new[0], new[1], 0))
    elif new[1] != old[1]:
        out.append(ev.TickSize(req_id, _kind(size_tick, delayed), new[1]))


def changes(req_id: int, inst: Instrument, old: Quote, q: Quote, delayed: bool) -> list[ev.Event]:
    """The ticks of one step: a new price with its size, or a size alone when only it moved."""
    out: list[ev.Event] = []
    if inst.quotes:
        _side(out, req_id, T.BID, T.BID_SIZE, (old.bid, old.bid_size), (q.bid, q.bid_size), delayed)
        _side(out, req_id, T.ASK, T.ASK_SIZE, (old.ask, old.ask_size), (q.ask, q.ask_size), delayed)
    elif q.last != old.last:  # an index: its level
        out.append(ev.TickPrice(req_id, _kind(T.LAST, delayed), q.last, 0.0, 0))
    if q.traded:  # every print is reported, even at an unchanged price
        out.append(ev.TickPrice(req_id, _kind(T.LAST, delayed), q.last, q.last_size, 0))
        out.append(ev.TickString(req_id, _kind(T.LAST_TIMESTAMP, delayed), str(q.last_time)))
    if q.volume != old.volume:
        out.append(ev.TickSize(req_id, _kind(T.VOLUME, delayed), q.volume))
    if q.high != old.high:
        out.append(ev.TickPrice(req_id, _kind(T.HIGH, delayed), q.high, 0.0, 0))
    if q.low != old.low:
        out.append(ev.TickPrice(req_id, _kind(T.LOW, delayed), q.low, 0.0, 0))
    return out


TICK_BY_TICK_KINDS = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}


def tick_by_tick(req_id: int, kind: str, old: Quote | None, q: Quote, exchange: str) -> list[ev.Event]:
    """One step as reqTickByTickData reports it; `old` None means 'first tick, send the state'."""
    time = int(q.time)
    if kind in ("Last", "AllLast"):
        if old is not None and not q.traded:
            return []
        return [ev.TickByTickLast(req_id, TICK_BY_TICK_KINDS[kind], q.last_time, q.last, q.last_size, 0, exchange, "")]
    if kind == "BidAsk":
        if old is not None and (old.bid, old.ask, old.bid_size, old.ask_size) == (q.bid, q.ask, q.bid_size, q.ask_size):
            return []
        return [ev.TickByTickBidAsk(req_id, time, q.bid, q.ask, q.bid_size, q.ask_size, 0)]
    if old is not None and old.mid == q.mid:
        return []
    return [ev.TickByTickMidPoint(req_id, time, round(q.mid, 10))]


def depth_rows(inst: Instrument, q: Quote, rows: int) -> list[tuple[int, int, float, float]]:
    """(side, position, price, size) of a book `rows` deep around the quote; side 0 ask, 1 bid."""
    tick = inst.min_tick
    out = []
    for pos in range(rows):
        # Sizes vary with the step and the level, deterministically, like a book that refills.
        ask_size = float(round(inst.lot * (1 + (q.step * 7 + pos * 13) % 10), 4))
        bid_size = float(round(inst.lot * (1 + (q.step * 11 + pos * 5) % 10), 4))
        out.append((0, pos, round(q.ask + pos * tick, 10), ask_size if pos else q.ask_size))
        out.append((1, pos, round(q.bid - pos * tick, 10), bid_size if pos else q.bid_size))
    return out


def depth_events(req_id: int, inst: Instrument, q: Quote, rows: int, operation: int, smart: bool) -> list[ev.Event]:
    """The book as insert (0) or update (1) operations: updateMktDepth, or L2 with market makers."""
    out: list[ev.Event] = []
    makers = inst.depth_makers or (inst.contract.exchange,)
    for side, pos, price, size in depth_rows(inst, q, rows):
        if smart:
            maker = makers[pos % len(makers)]
            out.append(ev.MarketDepthL2(req_id, pos, maker, operation, side, price, size, True))
        else:
            out.append(ev.MarketDepth(req_id, pos, operation, side, price, size))
    return out


class BarBuilder:
    """Collects one bar period of a reqRealTimeBars subscription (TRADES, BID, ASK or MIDPOINT)."""

    def __init__(self, what_to_show: str, q: Quote) -> None:
        self.what = what_to_show.upper()
        self._reset(self._price(q))

    def _price(self, q: Quote) -> float:
        if self.what == "BID":
            return q.bid
        if self.what == "ASK":
            return q.ask
        if self.what == "TRADES":
            return q.last
        return round(q.mid, 10)

    def _reset(self, price: float) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume = 0.0
        self.notional = 0.0
        self.count = 0

    def add(self, q: Quote) -> None:
        if self.what == "TRADES" and not q.traded:
            return
        price = self._price(q)
        if self.count == 0:
            self.open = self.high = self.low = price
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price
        self.count += 1
        if self.what == "TRADES":
            self.volume += q.last_size
            self.notional += q.last_size * price

    def finish(self, req_id: int, start: int) -> ev.RealTimeBar:
        """The bar that started at `start`; the next one opens at this one's close."""
        wap = self.notional / self.volume if self.volume else self.close
        bar = ev.RealTimeBar(
            req_id, start, self.open, self.high, self.low, self.close, round(self.volume, 4), round(wap, 6), self.count
        )
        self._reset(self.close)
        return bar

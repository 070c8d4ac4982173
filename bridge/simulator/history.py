"""The simulator's past: historical bars and ticks that end where its live market begins.

An instrument's live era starts with its opening quote (the first time anyone asks about it);
from then on history is read from its tape (tape.py), so the bars and ticks of that era are the
quotes and trades subscribers were actually sent. Before it lies a seeded path that ends exactly
at the opening price: one day ("block") at a time, walking back from the open with a daily
random step, and within each block a Brownian bridge of 1-minute prices between the block's
ends. A block depends only on the seed, the conId and its distance from the open, so any span
is drawn on demand and always the same. Seconds inside a minute that has no live record are
drawn through that minute's open, high, low and close, so every bar size tells one story.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from array import array
from bisect import bisect_left
from collections import OrderedDict
from itertools import accumulate

from bridge.protocol import events as ev

from .history_spec import DAY, MONTH, WEEK, BarRequest, format_bar_time, zone
from .instrument import Instrument
from .market import Market
from .tape import Agg, Tape

HISTORY_DAYS = 730  # how far back the seeded path goes: the head timestamp
MAX_TICKS = 1000  # reqHistoricalTicks answers at most this many
TICK_WALK = DAY  # seconds a tick request walks looking for ticks before it answers with what it found
_BLOCK = 1440  # minutes per block
_CACHE_BLOCKS = 512  # 69 kB each
# Annual volatility of the pre-live path by kind, when the instrument names none (implied_vol).
_ANNUAL_VOL = {"STK": 0.3, "FUT": 0.2, "CASH": 0.08, "CRYPTO": 0.6, "IND": 0.18, "OPT": 1.0}


class NoData(Exception):
    """HMDS has nothing for this request (error 162 'HMDS query returned no data')."""


class _Block:
    """1440 minutes of pre-live midpoints: open, high, low, close, and trades (volume, count)."""

    __slots__ = ("close", "count", "high", "low", "open", "volume")

    def __init__(self) -> None:
        self.open, self.high, self.low, self.close = array("d"), array("d"), array("d"), array("d")
        self.volume, self.count = array("d"), array("l")


class History:
    """Bars, ticks and head timestamps for every instrument of one market, from one seed."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.seed = market.seed
        self._anchors: dict[int, list[float]] = {}  # conId -> block boundary prices, newest first
        self._blocks: OrderedDict[tuple[int, int], _Block] = OrderedDict()
        self._carry: tuple[int, Tape, Agg] | None = None  # the last second carried, for the next one

    # --- the live era and the path before it ------------------------------------------------------

    def tape(self, inst: Instrument) -> Tape:
        self.market.quote(inst)  # opens the live era if nobody asked about the instrument yet
        return self.market.tapes[inst.con_id]

    def _origin(self, inst: Instrument) -> int:
        """The minute the live era starts in: the pre-live path ends at its start, at the opening price."""
        opened = int(self.tape(inst).opened)
        return opened - opened % 60

    def head(self, inst: Instrument) -> int:
        return self._origin(inst) - HISTORY_DAYS * DAY

    def _sigma_minute(self, inst: Instrument) -> float:
        annual = inst.implied_vol or _ANNUAL_VOL.get(inst.contract.sec_type, 0.3)
        return annual / math.sqrt(365 * _BLOCK)

    def _anchor(self, inst: Instrument, b: int) -> float:
        """The price at the newer end of block b (block 0 ends at the open)."""
        anchors = self._anchors.get(inst.con_id)
        if anchors is None:
            anchors = self._anchors[inst.con_id] = [self.tape(inst).opening_mid]
        sigma_day = self._sigma_minute(inst) * math.sqrt(_BLOCK)
        while len(anchors) <= b:
            rng = random.Random(f"{self.seed}:{inst.con_id}:day:{len(anchors)}")
            anchors.append(_grid(anchors[-1] * math.exp(rng.gauss(0, sigma_day)), inst.min_tick))
        return anchors[b]

    def _block(self, inst: Instrument, b: int) -> _Block:
        key = (inst.con_id, b)
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
            return block
        older, newer = self._anchor(inst, b + 1), self._anchor(inst, b)
        rng = random.Random(f"{self.seed}:{inst.con_id}:block:{b}")
        sigma, tick, uniform = self._sigma_minute(inst), inst.min_tick, rng.random
        spread = sigma * math.sqrt(3)  # uniform steps of the same variance: a third of gauss's cost
        walk = list(accumulate((2 * uniform() - 1) * spread for _ in range(_BLOCK)))
        drift, end = math.log(newer / older), walk[-1]
        # The bridge: the walk pulled to end at `newer`; prices on the tick grid.
        closes = [round(round(older * math.exp(w - (i / _BLOCK) * (end - drift)) / tick) * tick, 10)
                  for i, w in enumerate(walk, start=1)]  # fmt: skip
        closes[-1] = newer
        opens = [older, *closes[:-1]]
        block = _Block()
        block.open.extend(opens)
        block.close.extend(closes)
        for o, c in zip(opens, closes, strict=True):  # highs and lows a few ticks beyond open and close
            block.high.append(round(max(o, c) + tick * int(uniform() * 3), 10))
            block.low.append(max(round(min(o, c) - tick * int(uniform() * 3), 10), min(o, c, tick)))
        if inst.trades:
            block.volume.extend(round(inst.lot * (1 + int(uniform() * 20)), 4) for _ in range(_BLOCK))
            block.count.extend(1 + int(uniform() * 12) for _ in range(_BLOCK))
        else:
            block.volume.extend([0.0] * _BLOCK)
            block.count.extend([0] * _BLOCK)
        self._blocks[key] = block
        if len(self._blocks) > _CACHE_BLOCKS:
            self._blocks.popitem(last=False)
        return block

    def _prelive(self, inst: Instrument, a: int, b: int) -> Agg | None:
        """The pre-live minutes [a, b) (minute starts, before the origin) as one aggregate."""
        origin = self._origin(inst)
        b = min(b, origin)
        if a >= b:
            return None
        out: Agg | None = None
        half = inst.min_tick if inst.quotes else 0.0
        m = a
        while m < b:
            back = (origin - m - 60) // 60  # minutes before the origin, 0 = the last one
            blk, index = divmod(back, _BLOCK)
            block = self._block(inst, blk)
            # Minutes of one block run oldest first: position = _BLOCK - 1 - index.
            first = _BLOCK - 1 - index
            last = min(_BLOCK, first + (b - m) // 60)
            agg = _agg_of(block, first, last, half, inst.trades)
            if out is None:
                out = agg
            else:
                out.merge(agg)
            m += (last - first) * 60
        return out

    def minute(self, inst: Instrument, m: int, live_keys: list[int] | None = None) -> Agg:
        """One minute's aggregate: live where the tape has it, carried flat across quiet minutes."""
        return self.span(inst, m, m + 60, live_keys) or _flat(self.tape(inst).last)

    def span(self, inst: Instrument, a: int, b: int, live_keys: list[int] | None = None) -> Agg | None:
        """[a, b) in whole minutes: pre-live blocks, then the live tape minute by minute."""
        tape = self.tape(inst)
        origin = self._origin(inst)
        out = self._prelive(inst, a, b)
        if b <= origin:
            return out
        keys = live_keys if live_keys is not None else list(tape.minutes)
        for m in range(max(a, origin), b, 60):
            agg = tape.minutes.get(m)
            if agg is None:
                agg = self._carried(inst, tape, keys, m)
            if out is None:
                out = agg.copy()
            else:
                out.merge(agg)
        return out

    def _carried(self, inst: Instrument, tape: Tape, keys: list[int], m: int) -> Agg:
        """A minute with no live quote: the market stood still at the previous minute's close."""
        i = bisect_left(keys, m)
        if i == 0:
            return _flat_price(tape.opening_mid, inst)
        prev = tape.minutes.get(keys[i - 1])
        if prev is None:
            return _flat(tape.last)
        return _still(prev)

    def second(self, inst: Instrument, s: int, live_keys: list[int] | None = None) -> Agg:
        """One second: the tape's record where it kept one, else drawn through its minute."""
        tape = self.tape(inst)
        agg = tape.seconds.get(s)
        if agg is not None:
            return agg
        if s >= int(tape.opened) and tape.seconds and s >= next(iter(tape.seconds)):
            return self._carried_second(tape, s)
        minute = s - s % 60
        return _split(self.minute(inst, minute, live_keys), s - minute, random.Random(f"{self.seed}:{minute}"))

    def _carried_second(self, tape: Tape, s: int) -> Agg:
        """A second with no live quote: the market stood still since the last one that had some."""
        memo = self._carry
        if memo is not None and memo[0] == s - 1 and memo[1] is tape:
            agg = _still(memo[2])
        else:
            agg = next((_still(p) for b in range(s - 1, s - 3600, -1) if (p := tape.seconds.get(b))), _flat(tape.last))
        self._carry = (s, tape, agg)
        return agg

    # --- bars -----------------------------------------------------------------------------------

    def bars(self, inst: Instrument, req: BarRequest) -> list[ev.HistoricalBar]:
        """The bars of a checked request, oldest first; the last one may still be forming."""
        if not _available(inst, req.what):
            raise NoData
        head = self.head(inst)
        keys = list(self.tape(inst).minutes)
        out = []
        for a, b in _bar_spans(inst, req.start, req.end, req.bar, req.use_rth):
            if a < head:
                continue
            agg = self._aggregate(inst, a, b, keys)
            bar = _bar(inst, agg, a, req, self.seed) if agg is not None else None
            if bar is not None:
                out.append(bar)
        if not out:
            raise NoData
        return out

    def forming(self, inst: Instrument, req: BarRequest, now: float) -> ev.HistoricalBar | None:
        """keepUpToDate: the bar that holds `now`, as it stands."""
        # The bar starting in (now - bar, now]: in a bar's last second the next one has not begun.
        spans = _bar_spans(inst, now - req.bar + 1e-6, now + 1e-6, req.bar, False)
        if not spans:
            return None
        a, b = spans[-1]
        agg = self._aggregate(inst, a, b, list(self.tape(inst).minutes))
        return _bar(inst, agg, a, req, self.seed) if agg is not None else None

    def _aggregate(self, inst: Instrument, a: int, b: int, keys: list[int]) -> Agg | None:
        if b - a >= 60 and a % 60 == 0 and b % 60 == 0:
            return self.span(inst, a, b, keys)
        out: Agg | None = None
        for s in range(a, b):
            agg = self.second(inst, s, keys)
            if out is None:
                out = agg.copy()
            else:
                out.merge(agg)
        return out

    # --- ticks ------------------------------------------------------------------------------------

    def ticks(
        self, inst: Instrument, what: str, start: float | None, end: float | None, count: int, use_rth: bool,
        now: float,
    ) -> list[ev.HistoricalTick | ev.HistoricalTickBidAsk | ev.HistoricalTickLast]:  # fmt: skip
        """Up to `count` (at most 1000) ticks from `start` forward or up to `end` backward."""
        if not _available(inst, what) or (what == "TRADES" and not inst.trades):
            raise NoData
        count = max(1, min(count, MAX_TICKS))
        tape = self.tape(inst)
        steps = _steps_by_second(tape)
        oldest_step = int(tape.steps[0].time) if tape.steps else int(now) + 1
        head, last_second = self.head(inst), int(now)
        forward = start is not None
        s = int(start) if start is not None else int(end if end is not None else now)
        out: list[ev.HistoricalTick | ev.HistoricalTickBidAsk | ev.HistoricalTickLast] = []
        keys = list(tape.minutes)
        for _ in range(TICK_WALK):
            if s < head or s > last_second or len(out) >= count:
                break
            if not use_rth or _in_session(inst, s, True):
                if s >= oldest_step:
                    found = _step_ticks(steps.get(s, ()), what, inst)
                else:
                    found = _agg_ticks(self.second(inst, s, keys), s, what, inst)
                if forward:
                    out += found[: count - len(out)]
                else:
                    out[:0] = found[max(0, len(found) - (count - len(out))) :]
            s += 1 if forward else -1
        if not out:
            raise NoData
        return out


# --- aggregates -----------------------------------------------------------------------------------


def _grid(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


def _agg_of(block: _Block, first: int, last: int, half: float, trades: bool) -> Agg:
    o, c = block.open[first], block.close[last - 1]
    hi, lo = max(block.high[first:last]), min(block.low[first:last])
    agg = Agg(o - half, o + half)
    n = last - first
    agg.b_high, agg.b_low, agg.b_close = hi - half, lo - half, c - half
    agg.a_high, agg.a_low, agg.a_close = hi + half, lo + half, c + half
    agg.m_high, agg.m_low, agg.m_close = hi, lo, c
    closes = sum(block.close[first:last])
    agg.bid_sum, agg.ask_sum, agg.samples = closes - n * half, closes + n * half, n
    if trades:
        volume = sum(block.volume[first:last])
        agg.t_open, agg.t_high, agg.t_low, agg.t_close = o, hi, lo, c
        agg.volume, agg.count = round(volume, 8), sum(block.count[first:last])
        agg.notional = volume * (o + hi + lo + c) / 4
    return agg


def _flat_price(price: float, inst: Instrument) -> Agg:
    half = inst.min_tick if inst.quotes else 0.0
    agg = Agg(price - half, price + half)
    agg.quote(price - half, price + half)
    return agg


def _flat(q: object) -> Agg:
    bid, ask = q.bid, q.ask  # type: ignore[attr-defined]
    agg = Agg(bid, ask)
    agg.quote(bid, ask)
    return agg


def _still(prev: Agg) -> Agg:
    agg = Agg(prev.b_close, prev.a_close)
    agg.quote(prev.b_close, prev.a_close)
    return agg


def _split(minute: Agg, index: int, rng: random.Random) -> Agg:
    """Second `index` of a minute drawn through its open, high, low and close (which every split
    of that minute shares), with a sixtieth of its volume."""
    hi_at, lo_at = rng.randrange(1, 59), rng.randrange(1, 59)
    if lo_at == hi_at:
        lo_at = 59 - hi_at if hi_at != 29 else 30
    points = sorted([(0, 0), (hi_at, 1), (lo_at, 2), (59, 3)])
    prev = points[0]
    for point in points[1:]:
        if index <= point[0]:
            frac = 0.0 if point[0] == prev[0] else (index - prev[0]) / (point[0] - prev[0])
            return _point_agg(minute, prev[1], point[1], frac)
        prev = point
    return _point_agg(minute, 3, 3, 0.0)


def _point_agg(m: Agg, a: int, b: int, frac: float) -> Agg:
    def at(series: tuple[float, float, float, float]) -> float:
        lo_v, hi_v = series[a], series[b]
        return round(lo_v + (hi_v - lo_v) * frac, 10) if frac not in (0.0, 1.0) else (hi_v if frac else lo_v)

    bid = at((m.b_open, m.b_high, m.b_low, m.b_close))
    ask = at((m.a_open, m.a_high, m.a_low, m.a_close))
    agg = Agg(bid, ask)
    agg.quote(bid, ask)
    if m.t_open is not None and m.t_high is not None and m.t_low is not None and m.t_close is not None:
        price = at((m.t_open, m.t_high, m.t_low, m.t_close))
        agg.trade(price, round(m.volume / 60, 8), 0)
    return agg


# --- bar spans, sessions and values ---------------------------------------------------------------------


def _bar_spans(inst: Instrument, start: float, end: float, bar: int, use_rth: bool) -> list[tuple[int, int]]:
    """[a, b) of every bar that starts in [start, end), aligned as TWS aligns them: intraday bars
    on the instrument's local midnight, days, weeks (Mondays) and months (the 1st) on its calendar."""
    tz = zone(inst.time_zone_id)
    out: list[tuple[int, int]] = []
    if bar < DAY:
        local = dt.datetime.fromtimestamp(start, tz)
        midnight = int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
        a = midnight + math.ceil((start - midnight) / bar) * bar
        while a < end:
            if not use_rth or _in_session(inst, a, True):
                out.append((a, a + bar))
            a += bar
        return out
    day = dt.datetime.fromtimestamp(start, tz).date()
    if bar == WEEK:
        day -= dt.timedelta(days=day.weekday())
    elif bar == MONTH:
        day = day.replace(day=1)
    while True:
        nxt = (
            day + dt.timedelta(days=1)
            if bar == DAY
            else day + dt.timedelta(days=7)
            if bar == WEEK
            else _next_month(day)
        )
        a = int(dt.datetime.combine(day, dt.time(), tz).timestamp())
        b = int(dt.datetime.combine(nxt, dt.time(), tz).timestamp())
        if a >= end:
            return out
        if bar == DAY and use_rth:
            window = _session(inst, day, True)
            if window is not None:
                out.append(window)
        elif a >= start - bar:
            out.append((a, b))
        day = nxt


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _session(inst: Instrument, day: dt.date, liquid: bool) -> tuple[int, int] | None:
    """The instrument's session on `day` as [open, close) epoch seconds, None when it is closed."""
    if day.weekday() >= 5 and not inst.weekends:
        return None
    start, end = (inst.liquid or inst.hours) if liquid else inst.hours
    tz = zone(inst.time_zone_id)
    opens_day = day - dt.timedelta(days=1) if end < start else day
    a = dt.datetime.combine(opens_day, dt.time(int(start[:2]), int(start[2:])), tz).timestamp()
    b = dt.datetime.combine(day, dt.time(int(end[:2]), int(end[2:])), tz).timestamp()
    return int(a), int(b) + (60 if end == "2359" else 0)


def _in_session(inst: Instrument, when: float, liquid: bool) -> bool:
    day = dt.datetime.fromtimestamp(when, zone(inst.time_zone_id)).date()
    for d in (day, day + dt.timedelta(days=1)):  # a session may open the evening before
        window = _session(inst, d, liquid)
        if window is not None and window[0] <= when < window[1]:
            return True
    return False


def _available(inst: Instrument, what: str) -> bool:
    """What HMDS has for a kind: forex no trades, an index no quotes, implied volatility only
    where options trade (or for an option itself)."""
    kind = inst.contract.sec_type
    if what in ("TRADES", "ADJUSTED_LAST"):
        return inst.trades or not inst.quotes
    if what in ("MIDPOINT", "BID", "ASK", "BID_ASK"):
        return inst.quotes
    if what == "OPTION_IMPLIED_VOLATILITY":
        return inst.implied_vol > 0 or kind == "OPT"
    return kind != "OPT"  # HISTORICAL_VOLATILITY


def _bar(inst: Instrument, agg: Agg, start: int, req: BarRequest, seed: int) -> ev.HistoricalBar | None:
    date = format_bar_time(start, req.bar, req.format_date, inst)
    what = req.what
    if what in ("TRADES", "ADJUSTED_LAST"):
        if not inst.trades:  # an index: its level, no volume
            return ev.HistoricalBar(date, agg.m_open, agg.m_high, agg.m_low, agg.m_close, 0.0, agg.m_close, 0)
        if agg.t_open is None or agg.t_high is None or agg.t_low is None or agg.t_close is None:
            return None  # no trades in the bar: TWS sends no bar
        wap = round(agg.notional / agg.volume, 6) if agg.volume else agg.t_close
        return ev.HistoricalBar(date, agg.t_open, agg.t_high, agg.t_low, agg.t_close, round(agg.volume, 8), wap,
                                agg.count)  # fmt: skip
    if what == "BID_ASK":  # open: time-average bid, high: max ask, low: min bid, close: time-average ask
        n = max(agg.samples, 1)
        values = (round(agg.bid_sum / n, 10), agg.a_high, agg.b_low, round(agg.ask_sum / n, 10))
    elif what == "BID":
        values = (agg.b_open, agg.b_high, agg.b_low, agg.b_close)
    elif what == "ASK":
        values = (agg.a_open, agg.a_high, agg.a_low, agg.a_close)
    elif what == "MIDPOINT":
        values = (agg.m_open, agg.m_high, agg.m_low, agg.m_close)
    else:  # volatilities: the instrument's annual figure, wandering from bar to bar
        base = inst.implied_vol or _ANNUAL_VOL.get(inst.contract.sec_type, 0.3)
        if what == "HISTORICAL_VOLATILITY":
            base *= 0.9
        rng = random.Random(f"{seed}:{inst.con_id}:{what}:{start}")
        o, c = (round(base * (1 + rng.gauss(0, 0.03)), 6) for _ in range(2))
        values = (o, round(max(o, c) * 1.01, 6), round(min(o, c) * 0.99, 6), c)
    return ev.HistoricalBar(date, *values, -1.0, -1.0, -1)  # no volume, wap or count for these (TWS sends -1)


# --- ticks ------------------------------------------------------------------------------------------


def _steps_by_second(tape: Tape) -> dict[int, list[object]]:
    out: dict[int, list[object]] = {}
    prev = None
    for step in tape.steps:
        out.setdefault(int(step.time), []).append((step, prev))
        prev = step
    return out


def _tick_exchange(inst: Instrument) -> str:
    return inst.contract.primary_exchange or inst.contract.exchange


def _step_ticks(
    items: object, what: str, inst: Instrument
) -> list[ev.HistoricalTick | ev.HistoricalTickBidAsk | ev.HistoricalTickLast]:
    """The ticks one second of live steps printed: each trade; each change of quote or midpoint."""
    out: list[ev.HistoricalTick | ev.HistoricalTickBidAsk | ev.HistoricalTickLast] = []
    for step, prev in items:  # type: ignore[attr-defined]
        t = int(step.time)
        if what == "TRADES":
            if step.traded:
                out.append(ev.HistoricalTickLast(t, 0, step.last, step.last_size, _tick_exchange(inst), ""))
        elif what == "BID_ASK":
            quote = (step.bid, step.ask, step.bid_size, step.ask_size)
            if prev is None or quote != (prev.bid, prev.ask, prev.bid_size, prev.ask_size):
                out.append(ev.HistoricalTickBidAsk(t, 0, *quote))
        else:
            mid = round((step.bid + step.ask) / 2, 10)
            if prev is None or mid != round((prev.bid + prev.ask) / 2, 10):
                out.append(ev.HistoricalTick(t, mid, 0.0))
    return out


def _agg_ticks(
    agg: Agg, s: int, what: str, inst: Instrument
) -> list[ev.HistoricalTick | ev.HistoricalTickBidAsk | ev.HistoricalTickLast]:
    """One tick for a second known only as an aggregate (before the live era, or past the tape's steps)."""
    if what == "TRADES":
        if agg.t_close is None:
            return []
        size = float(max(inst.lot, round(agg.volume, 4)))
        return [ev.HistoricalTickLast(s, 0, agg.t_close, size, _tick_exchange(inst), "")]
    if what == "BID_ASK":
        return [ev.HistoricalTickBidAsk(s, 0, agg.b_close, agg.a_close, float(inst.lot), float(inst.lot))]
    return [ev.HistoricalTick(s, agg.m_close, 0.0)]

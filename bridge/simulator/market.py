"""A seeded random-walk market: one price path per instrument, shared by every subscriber.

Each instrument draws from its own `random.Random`, seeded from the simulator seed and its
conId, so its path depends only on the seed and how many steps it has taken, never on what
else is subscribed. Prices sit on the instrument's tick grid; the spread is one to three ticks.
Forex quotes but never trades (IDEALPRO); an index has a level and no quotes; an option is
priced by Black-Scholes from its underlying's current price, with its greeks alongside.
"""

from __future__ import annotations

import calendar
import random
import time
from dataclasses import dataclass

from .catalogue import Instrument, by_con_id
from .table import black_scholes
from .tape import Tape


@dataclass(frozen=True)
class Quote:
    """The top of book and the session statistics after one step."""

    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float
    high: float
    low: float
    open: float
    close: float  # the previous session's close, as TWS reports it
    time: float  # epoch seconds of the step
    last_time: int  # epoch seconds of the last trade
    traded: bool  # whether this step printed a trade
    step: int
    trade_count: int = 0  # trades since the open
    notional: float = 0.0  # sum of price x size since the open, for the VWAP
    # Options only: (implied vol, delta, gamma, vega, theta, model price, underlying price).
    model: tuple[float, float, float, float, float, float, float] | None = None

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


class Market:
    """The price paths of every instrument the simulator has been asked about."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rngs: dict[int, random.Random] = {}
        self._quotes: dict[int, Quote] = {}
        self._expiries: dict[int, int] = {}  # options' expiry, epoch seconds
        self.tapes: dict[int, Tape] = {}  # what each instrument did live, for history (tape.py)

    def _rng(self, inst: Instrument) -> random.Random:
        rng = self._rngs.get(inst.con_id)
        if rng is None:
            rng = self._rngs[inst.con_id] = random.Random(f"{self.seed}:{inst.con_id}")
        return rng

    def quote(self, inst: Instrument) -> Quote:
        """The instrument's current quote (its opening one if it has never stepped)."""
        q = self._quotes.get(inst.con_id)
        if q is None:
            q = self._quotes[inst.con_id] = self._open(inst)
            self.tapes[inst.con_id] = Tape(q)
        return q

    def step(self, inst: Instrument) -> Quote:
        """Move the instrument one step along its path and return the new quote."""
        q = self.quote(inst)
        rng = self._rng(inst)
        tick = inst.min_tick
        model = None
        if inst.contract.sec_type == "OPT":
            model = self._model(inst, rng)
            mid = _on_grid(max(model[5], tick), tick)
        else:
            mid = _on_grid(q.mid * (1 + rng.gauss(0, inst.volatility)), tick)
        half_spread = rng.randint(1, 3) * tick / 2
        bid = _on_grid(mid - half_spread, tick)
        ask = max(_on_grid(mid + half_spread, tick), _on_grid(bid + tick, tick))
        if model is not None and bid <= 0:
            bid, ask = 0.0, max(ask, tick)
        now = time.time()
        last, last_size, last_time, volume = q.last, q.last_size, q.last_time, q.volume
        trade_count, notional = q.trade_count, q.notional
        if not inst.trades:  # forex and indices: no prints; an index's last is its level
            traded = False
            if not inst.quotes:
                last = bid = ask = mid
            mark = mid
        else:
            traded = rng.random() < (0.3 if model is not None else 0.7)
            if traded:
                last = rng.choice((bid, ask))
                last_size = _size(rng, inst)
                last_time = int(now)
                volume = round(volume + last_size, 4)
                trade_count += 1
                notional += last * last_size
            mark = last
        # Built directly rather than by dataclasses.replace, which costs twice as much per step.
        new = Quote(
            bid, ask, last, _size(rng, inst), _size(rng, inst), last_size, volume, max(q.high, mark),
            min(q.low, mark), q.open, q.close, now, last_time, traded, q.step + 1, trade_count, notional, model,
        )  # fmt: skip
        self._quotes[inst.con_id] = new
        self.tapes[inst.con_id].record(new)
        return new

    def _model(self, inst: Instrument, rng: random.Random) -> tuple[float, float, float, float, float, float, float]:
        """An option's model values now: its underlying's price and a volatility that wanders a little."""
        under = by_con_id(inst.under_con_id)
        spot = self.quote(under).mid if under is not None else inst.start_price
        expiry = self._expiries.get(inst.con_id)
        if expiry is None:
            d = inst.real_expiration_date
            expiry = self._expiries[inst.con_id] = calendar.timegm((int(d[:4]), int(d[4:6]), int(d[6:]), 21, 0, 0))
        years = max((expiry - time.time()) / (365 * 86400), 1e-4)
        vol = inst.implied_vol * (1 + rng.gauss(0, 0.01))
        strike = inst.contract.strike or spot
        price, delta, gamma, vega, theta = black_scholes(spot, strike, years, vol, inst.contract.right)
        return (vol, delta, gamma, vega / 100, theta, max(price, 0.0), spot)

    def _open(self, inst: Instrument) -> Quote:
        rng = self._rng(inst)
        tick = inst.min_tick
        close = _on_grid(inst.start_price, tick)
        last = _on_grid(close * (1 + rng.gauss(0, 20 * inst.volatility)), tick)
        model = None
        if inst.contract.sec_type == "OPT":
            model = self._model(inst, rng)
            last = _on_grid(max(model[5], tick), tick)
        bid, ask = _on_grid(last - tick, tick), _on_grid(last + tick, tick)
        now = time.time()
        volume = float(round(inst.lot * rng.randint(200, 2000), 4)) if inst.trades else 0.0
        trade_count = int(volume / inst.lot / 3) if inst.trades else 0
        if not inst.quotes:
            bid = ask = last
        return Quote(
            bid=bid, ask=ask, last=last, bid_size=_size(rng, inst), ask_size=_size(rng, inst),
            last_size=_size(rng, inst), volume=volume, high=max(close, last, ask), low=min(close, last, bid),
            open=close, close=close, time=now, last_time=int(now), traded=inst.trades, step=0,
            trade_count=trade_count, notional=volume * close, model=model,
        )  # fmt: skip


def _on_grid(price: float, tick: float) -> float:
    """Round to the tick grid; the round(.., 10) drops float noise like 1.08450000000001."""
    return round(round(price / tick) * tick, 10)


def _size(rng: random.Random, inst: Instrument) -> float:
    # Always a float: the protocol layer's size encoder calls float.is_integer().
    units = inst.lot * rng.randint(1, 10)
    return float(round(round(units / inst.size_increment) * inst.size_increment, 4))

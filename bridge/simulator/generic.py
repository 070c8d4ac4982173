"""reqMktData's generic tick list: which lists TWS accepts, and the ticks each id produces.

TWS validates the whole list before it streams anything: one id it does not know and the
request fails with error 321, naming the list and every legal id (the wording below is TWS's,
as users have logged it). A legal id the instrument has no data for is accepted and produces
nothing, as with TWS. Option greeks (tickOptionComputation, ticks 10-13) need no generic tick:
every option subscription gets them.

Everything here runs on the feed's step path, so the slow-moving statistics are recomputed
only every `EVERY` steps and derived from the quote and the instrument, not stored.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib

from bridge.protocol import events as ev

from .catalogue import Instrument
from .market import Quote

# TWS's legal ids, in the order and wording of its error 321 ("id/tick it produces(name)").
LEGAL = (
    "100(Option Volume),101(Option Open Interest),105(Average Opt Volume),106(impvolat),165(Misc. Stats),"
    "221/220(Creditman Mark Price),225(Auction),232/221(Pl Price),233(RTVolume),236(inventory),"
    "258/47(Fundamentals),292(Wide_news),293(TradeCount),294(TradeRate),295(VolumeRate),318(LastRTHTrade),"
    "375(RTTrdVolume),411(rthistvol),456/59(IBDividends),460(Bond Factor Multiplier),577(EtfNavLast(navlast)),"
    "586(IPOHLMPRC),587(Pl Price Delayed),588(Futures Open Interest),595(Short-Term Volume X Mins),"
    "614(EtfNavMisc(high/low)),619(Creditman Slow Mark Price),623(EtfFrozenNavLast(fznavlast))"
)
LEGAL_IDS = frozenset(int(item.split("(")[0].split("/")[0]) for item in LEGAL.split("),") if item)

# What the simulator produces for each id, and for which security types.
SIMULATED: dict[int, tuple[str, frozenset[str]]] = {
    100: ("option volume: ticks 29 (calls), 30 (puts)", frozenset({"STK", "IND", "OPT"})),
    101: ("option open interest: ticks 27 (calls), 28 (puts)", frozenset({"STK", "IND", "OPT"})),
    105: ("average option volume: tick 87", frozenset({"STK", "IND"})),
    106: ("implied volatility: tick 24", frozenset({"STK", "IND", "OPT"})),
    165: ("13/26/52-week lows and highs: ticks 15-20; average volume: tick 21", frozenset(
        {"STK", "IND", "OPT", "FUT", "CASH", "CRYPTO"})),
    225: ("auction volume, price, imbalance, regulatory imbalance: ticks 34, 35, 36, 61", frozenset({"STK"})),
    233: ("RTVolume: tick 48 'price;size;time;volume;vwap;single', on every trade", frozenset(
        {"STK", "OPT", "FUT", "CRYPTO"})),
    236: ("shortable: tick 46 (3.0: easy to borrow); shortable shares: tick 89", frozenset({"STK"})),
    293: ("trade count: tick 54, on every trade", frozenset({"STK", "OPT", "FUT", "CRYPTO"})),
    294: ("trade rate per minute: tick 55", frozenset({"STK", "OPT", "FUT", "CRYPTO"})),
    295: ("volume rate per minute: tick 56", frozenset({"STK", "OPT", "FUT", "CRYPTO"})),
    411: ("real-time historical volatility: tick 58", frozenset({"STK", "IND", "OPT", "FUT", "CASH", "CRYPTO"})),
    456: ("dividends: tick 59 'past 12 months,next 12 months,next date,next amount'", frozenset({"STK"})),
}  # fmt: skip

EVERY = 20  # steps between updates of the slow statistics
_SESSION_MINUTES = 390  # a US equity session: what the per-minute rates average over
_HIST_VOL = {"FUT": 0.18, "CASH": 0.07, "CRYPTO": 0.55}
_OPTION_TICKS = (10, 11, 12, 13)
_DELAYED_OPTION_TICKS = (80, 81, 82, 83)


def validate(text: str, sec_type: str) -> tuple[frozenset[int], tuple[int, str] | None]:
    """The ids of a generic tick list, or TWS's error 321 when it holds one TWS refuses."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    ids = []
    for item in items:
        if not item.isdigit() or int(item) not in LEGAL_IDS:
            listed = ",".join(items)
            why = f"Incorrect generic tick list of {listed}.  Legal ones for ({sec_type}) are: {LEGAL}"
            return frozenset(), (321, f"Error validating request.-'bW' : cause - {why}")
        ids.append(int(item))
    return frozenset(ids), None


SNAPSHOT_REFUSED = (
    321, "Error validating request.-'bW' : cause - Snapshot market data subscription is not applicable to generic ticks"
)  # fmt: skip


def wanted(ids: frozenset[int], inst: Instrument) -> frozenset[int]:
    """The ids of `ids` the simulator produces for this instrument's type."""
    kind = inst.contract.sec_type
    return frozenset(i for i in ids if i in SIMULATED and kind in SIMULATED[i][1])


def _hash(inst: Instrument, salt: str) -> float:
    """A stable number in [0, 1) per instrument: open interest and the like do not change by the step."""
    return zlib.crc32(f"{inst.con_id}:{salt}".encode()) / 2**32


def _grid(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


def _rt_volume(req_id: int, q: Quote) -> ev.TickString:
    vwap = q.notional / q.volume if q.volume else q.last
    text = f"{q.last:g};{q.last_size:g};{int(q.time * 1000)};{q.volume:g};{vwap:.8f};true"
    return ev.TickString(req_id, 48, text)


def _slow(req_id: int, inst: Instrument, q: Quote, ids: frozenset[int]) -> list[ev.Event]:
    """The statistics that move slowly: sent with the picture and every EVERY steps."""
    out: list[ev.Event] = []
    kind = inst.contract.sec_type
    lot = inst.lot or 1
    is_option = kind == "OPT"
    if 100 in ids:
        calls = float(round(q.volume * 0.02 / lot) * lot) if not is_option else q.volume
        puts = float(round(q.volume * 0.015 / lot) * lot) if not is_option else q.volume
        if not is_option or inst.contract.right == "C":
            out.append(ev.TickSize(req_id, 29, calls))
        if not is_option or inst.contract.right == "P":
            out.append(ev.TickSize(req_id, 30, puts))
    if 101 in ids:
        oi = float(int(20_000 + 300_000 * _hash(inst, "oi")))
        if not is_option or inst.contract.right == "C":
            out.append(ev.TickSize(req_id, 27, oi * (20 if not is_option else 1)))
        if not is_option or inst.contract.right == "P":
            out.append(ev.TickSize(req_id, 28, oi * (16 if not is_option else 1)))
    if 105 in ids:
        out.append(ev.TickSize(req_id, 87, float(int(50_000 + 500_000 * _hash(inst, "avgopt")))))
    if 106 in ids:
        iv = q.model[0] if q.model is not None else inst.implied_vol * (1 + 0.02 * math.sin(q.step / 50))
        out.append(ev.TickGeneric(req_id, 24, round(iv, 6)))
    if 294 in ids:
        out.append(ev.TickGeneric(req_id, 55, round(q.trade_count / _SESSION_MINUTES, 2)))
    if 295 in ids:
        out.append(ev.TickGeneric(req_id, 56, float(round(q.volume / _SESSION_MINUTES))))
    if 411 in ids:
        base = inst.implied_vol * 0.9 if inst.implied_vol else _HIST_VOL.get(kind, 0.2)
        out.append(ev.TickGeneric(req_id, 58, round(base * (1 + 0.05 * math.sin(q.step / 30)), 6)))
    if 225 in ids:
        price = _grid(q.last * (1 + 0.001 * math.sin(q.step)), inst.min_tick)
        imbalance = float(round(lot * (50 + 200 * _hash(inst, f"imb{q.step // EVERY}"))))
        out.append(ev.TickSize(req_id, 34, float(round(q.volume * 0.05 / lot) * lot)))
        out.append(ev.TickPrice(req_id, 35, price, 0.0, 0))
        out.append(ev.TickSize(req_id, 36, imbalance))
        out.append(ev.TickSize(req_id, 61, float(round(imbalance / 2))))
    return out


def _once(req_id: int, inst: Instrument, q: Quote, ids: frozenset[int]) -> list[ev.Event]:
    """What does not change within a session: sent with the picture only."""
    out: list[ev.Event] = []
    if 165 in ids:
        tick = inst.min_tick
        for n, (low_tick, high_tick, reach) in enumerate(((15, 16, 0.08), (17, 18, 0.15), (19, 20, 0.25))):
            spread = reach * (0.6 + 0.4 * _hash(inst, f"range{n}"))
            out.append(ev.TickPrice(req_id, low_tick, _grid(min(q.low, q.close * (1 - spread)), tick), 0.0, 0))
            out.append(ev.TickPrice(req_id, high_tick, _grid(max(q.high, q.close * (1 + spread)), tick), 0.0, 0))
        if inst.trades:
            out.append(ev.TickSize(req_id, 21, float(round(inst.lot * (800 + 2000 * _hash(inst, "avgvol"))))))
    if 236 in ids:
        out.append(ev.TickGeneric(req_id, 46, 3.0))
        out.append(ev.TickSize(req_id, 89, float(int(1_000_000 + 50_000_000 * _hash(inst, "borrow")))))
    if 456 in ids:
        out.append(ev.TickString(req_id, 59, _dividends(inst, q)))
    return out


def _dividends(inst: Instrument, q: Quote) -> str:
    yearly = round(q.close * inst.dividend_yield, 2)
    if not yearly:
        return "0,0,,0"
    today = dt.datetime.fromtimestamp(q.time, dt.UTC).date()
    month = today.month + 1 + int(2 * _hash(inst, "divmonth"))
    next_date = dt.date(today.year + (month - 1) // 12, (month - 1) % 12 + 1, 10)
    return f"{yearly:g},{yearly:g},{next_date:%Y%m%d},{yearly / 4:.4g}"


def picture(req_id: int, inst: Instrument, q: Quote, ids: frozenset[int], delayed: bool) -> list[ev.Event]:
    """The generic ticks and greeks a new subscriber gets with its first picture."""
    out = _once(req_id, inst, q, ids) + _slow(req_id, inst, q, ids)
    if 233 in ids and inst.trades:
        out.append(_rt_volume(req_id, q))
    if 293 in ids and inst.trades:
        out.append(ev.TickGeneric(req_id, 54, float(q.trade_count)))
    if q.model is not None:
        kinds = _DELAYED_OPTION_TICKS if delayed else _OPTION_TICKS
        out += [_greeks(req_id, kinds[0], q, q.bid), _greeks(req_id, kinds[1], q, q.ask)]
        out += [_greeks(req_id, kinds[2], q, q.last), _greeks(req_id, kinds[3], q, None)]
    return out


def changes(req_id: int, inst: Instrument, old: Quote, q: Quote, ids: frozenset[int], delayed: bool) -> list[ev.Event]:
    """The generic ticks and greeks of one step."""
    out: list[ev.Event] = []
    if q.traded:
        if 233 in ids:
            out.append(_rt_volume(req_id, q))
        if 293 in ids:
            out.append(ev.TickGeneric(req_id, 54, float(q.trade_count)))
    if q.step % EVERY == 0:
        out += _slow(req_id, inst, q, ids)
    if q.model is not None:
        kinds = _DELAYED_OPTION_TICKS if delayed else _OPTION_TICKS
        if q.bid != old.bid:
            out.append(_greeks(req_id, kinds[0], q, q.bid))
        if q.ask != old.ask:
            out.append(_greeks(req_id, kinds[1], q, q.ask))
        if q.traded:
            out.append(_greeks(req_id, kinds[2], q, q.last))
        out.append(_greeks(req_id, kinds[3], q, None))
    return out


def _greeks(req_id: int, tick_type: int, q: Quote, price: float | None) -> ev.TickOptionComputation:
    """tickOptionComputation at `price` (None: the model's own): the volatility that price implies."""
    assert q.model is not None
    vol, delta, gamma, vega, theta, model_price, spot = q.model
    if price is not None and vega > 1e-6:
        vol = max(vol + (price - model_price) / (vega * 100), 0.01)  # first order: vega is per 1%
    shown = model_price if price is None else price
    return ev.TickOptionComputation(
        req_id, tick_type, 1, round(vol, 6), round(delta, 6), round(shown, 6), 0.0, round(gamma, 6), round(vega, 6),
        round(theta, 6), spot,
    )  # fmt: skip

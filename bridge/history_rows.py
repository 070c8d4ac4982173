"""TWS's history and reference answers as the bus carries them: compact rows, UTC epoch seconds.

TWS writes a bar's time three ways (protocol docs, HistoricalBar): epoch seconds (formatDate 2,
which the bridge asks for), 'YYYYMMDD HH:MM:SS <zone>' (formatDate 1) and 'YYYYMMDD' for daily and
longer bars whatever formatDate says. A consumer should not have to know which: every time on the
bus is UTC epoch seconds, a date being 00:00 UTC of that date. Trading hours become sessions the
same way. Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .instruments import instrument_key
from .protocol import events as ev

BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume", "wap", "count")
TICK_COLUMNS = {
    "TRADES": ("time", "price", "size", "exchange", "conditions", "attrib"),
    "BID_ASK": ("time", "bid", "ask", "bid_size", "ask_size", "attrib"),
    "MIDPOINT": ("time", "price"),
}
BAR_ROW_BYTES = 64  # about what one bar row costs in memory and msgpack: for the cache's byte bound
TICK_ROW_BYTES = 64

# Zone names TWS uses that the tz database spells otherwise (timeZoneId in contract details).
_IB_ZONES = {
    "EST": "America/New_York", "EST5EDT": "America/New_York", "CST": "America/Chicago", "CST6CDT": "America/Chicago",
    "JST": "Asia/Tokyo", "HKT": "Asia/Hong_Kong", "GMT": "UTC", "AEST": "Australia/Sydney",
}  # fmt: skip
_DATE_TIME = re.compile(r"(\d{8})[ -]+(\d{1,2}):(\d{2}):(\d{2})(?:\s+(\S+))?")
_SESSION_END = re.compile(r"(?:(\d{8}):)?(\d{4})")


def zone(name: str) -> dt.tzinfo | None:
    """The tz of a TWS zone id, None when neither the tz database nor our table knows it."""
    try:
        return ZoneInfo(_IB_ZONES.get(name, name)) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _utc_midnight(day: str) -> int:
    return int(dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC).timestamp())


def tws_time(text: str) -> int:
    """A time as TWS wrote it, in UTC epoch seconds; ValueError if it is none of TWS's forms."""
    text = text.strip()
    if text.isdigit():
        return _utc_midnight(text) if len(text) == 8 else int(text)
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a TWS time: {text[:40]!r}")
    day, hh, mm, ss, name = match.groups()
    tz = zone(name or "UTC") or dt.UTC
    local = dt.datetime.strptime(day, "%Y%m%d").replace(hour=int(hh), minute=int(mm), second=int(ss), tzinfo=tz)
    return int(local.timestamp())


def tws_text(epoch: int) -> str:
    """An epoch as TWS takes an end or start time: 'YYYYMMDD-HH:MM:SS', UTC (IB's reqHistoricalData docs)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y%m%d-%H:%M:%S")


def _none_if_negative(value: float | None) -> float | None:
    """TWS sends -1 for volume, wap and count where there are no trades: nil on the bus."""
    return None if value is None or value < 0 else value


def bar_rows(bars: Iterable[ev.HistoricalBar]) -> list[list[Any]]:
    """Bars as rows of BAR_COLUMNS; a bar whose time TWS wrote in no known form is left out."""
    rows = []
    for b in bars:
        try:
            t = tws_time(b.date)
        except ValueError:
            continue
        count = None if b.bar_count < 0 else b.bar_count
        rows.append([t, b.open, b.high, b.low, b.close, _none_if_negative(b.volume), _none_if_negative(b.wap), count])
    return rows


def merge_bars(
    parts: Sequence[list[list[Any]]], start: int | None, end: int | None, bar_seconds: int
) -> list[list[Any]]:
    """Bars of several answers as one series: each time once (a later answer wins), in order,
    only bars overlapping [start, end) when the span was asked by start."""
    by_time: dict[int, list[Any]] = {}
    for rows in parts:
        for row in rows:
            by_time[row[0]] = row
    times = sorted(by_time)
    if start is not None:
        times = [t for t in times if t + bar_seconds > start and (end is None or t < end)]
    return [by_time[t] for t in times]


def tick_rows(what: str, ticks: Iterable[Any]) -> list[list[Any]]:
    """Historical ticks as rows of TICK_COLUMNS[what]."""
    if what == "TRADES":
        return [[t.time, t.price, t.size, t.exchange, t.special_conditions, t.attrib_mask] for t in ticks]
    if what == "BID_ASK":
        return [[t.time, t.bid_price, t.ask_price, t.bid_size, t.ask_size, t.attrib_mask] for t in ticks]
    return [[t.time, t.price] for t in ticks]


def sessions(hours: str, zone_id: str) -> list[list[int]]:
    """TWS's trading hours as [start, end] UTC epoch pairs, in order; closed days are left out.

    Two layouts exist: 'YYYYMMDD:HHMM-YYYYMMDD:HHMM;...;YYYYMMDD:CLOSED' (TWS since API 9.72) and
    the older 'YYYYMMDD:HHMM-HHMM,HHMM-HHMM;...'; both are in the contract's timeZoneId. A zone
    nobody knows is read as UTC (the reply's `time_zone_known` says so).
    """
    tz = zone(zone_id) or dt.UTC
    out: list[list[int]] = []
    for day_part in hours.split(";"):
        day, sep, ranges = day_part.strip().partition(":")
        if not sep or not (len(day) == 8 and day.isdigit()) or ranges.upper().startswith("CLOSED"):
            continue
        for span in ranges.split(","):
            opens, dash, closes = span.partition("-")
            a, b = _SESSION_END.fullmatch(opens.strip()), _SESSION_END.fullmatch(closes.strip())
            if not dash or a is None or b is None:
                continue
            try:
                start = _local(a.group(1) or day, a.group(2), tz)
                end = _local(b.group(1) or day, b.group(2), tz)
            except ValueError:
                continue
            if end <= start and b.group(1) is None:  # old layout: an evening session closing after midnight
                end += 86_400
            out.append([start, end])
    return sorted(out)


def _local(day: str, hhmm: str, tz: dt.tzinfo) -> int:
    when = dt.datetime.strptime(day + hhmm, "%Y%m%d%H%M").replace(tzinfo=tz)
    return int(when.timestamp())


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def contract_map(c: ev.Contract) -> dict[str, Any]:
    """A contract with IB's key names, as requests take it (docs/bus.md, Instruments)."""
    return {
        "symbol": c.symbol, "secType": c.sec_type, "exchange": c.exchange, "currency": c.currency, "conId": c.con_id,
        "primaryExchange": c.primary_exchange, "lastTradeDateOrContractMonth": c.last_trade_date_or_contract_month,
        "strike": c.strike, "right": c.right, "multiplier": c.multiplier, "localSymbol": c.local_symbol,
        "tradingClass": c.trading_class,
    }  # fmt: skip


def details_row(d: ev.ContractDetails) -> dict[str, Any]:
    """One match of reqContractDetails: every field under IB's name, and the hours as UTC sessions."""
    fields: dict[str, Any] = {}
    for name, value in zip(d._fields[2:], d[2:], strict=True):
        if name in ("sec_id_list", "ineligibility_reasons"):
            value = {tag: text for tag, text in value}
        elif name in ("order_types", "valid_exchanges", "market_rule_ids"):
            value = [v for v in value.split(",") if v]
        elif isinstance(value, tuple):
            value = list(value)
        fields[_camel(name)] = value
    return {
        "instrument": instrument_key(d.contract),
        "contract": contract_map(d.contract),
        "details": fields,
        "time_zone_known": zone(d.time_zone_id) is not None,
        "sessions": sessions(d.trading_hours, d.time_zone_id),
        "liquid_sessions": sessions(d.liquid_hours, d.time_zone_id),
    }


def chain_rows(rows: Iterable[ev.SecurityDefinitionOptionParameter]) -> list[dict[str, Any]]:
    """Option chains per exchange and trading class, as reqSecDefOptParams sends them."""
    return [
        {"exchange": r.exchange, "trading_class": r.trading_class, "multiplier": r.multiplier,
         "underlying_con_id": r.underlying_con_id, "expirations": sorted(r.expirations), "strikes": sorted(r.strikes)}
        for r in rows
    ]  # fmt: skip


def search_rows(samples: ev.SymbolSamples) -> list[dict[str, Any]]:
    """reqMatchingSymbols' answer: each contract TWS found, with the derivative types listed on it."""
    out = []
    for d in samples.descriptions:
        c = d.contract
        out.append({"conId": c.con_id, "symbol": c.symbol, "secType": c.sec_type, "primaryExchange": c.primary_exchange,
                    "currency": c.currency, "derivative_sec_types": list(d.derivative_sec_types),
                    "description": d.description})  # fmt: skip
    return out

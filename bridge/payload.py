"""TWS events to bus payloads (docs/bus.md, schema 1), and the latest-values picture.

One small function per event type, picked by a dict lookup on the event's class: this is the
middle of the hot path (frame -> event -> payload -> PUB), so no generic conversion here.
"""

from __future__ import annotations

from collections.abc import Callable

from .book import Line
from .protocol import Decoder, In, TickType
from .protocol import events as ev
from .protocol.fields import number, size, text

SCHEMA = 1
MARKET_DATA_TYPES = {1: "live", 2: "frozen", 3: "delayed", 4: "delayed_frozen"}
_TICK_NAMES = {t.value: t.name.lower() for t in TickType}
_TIMESTAMP_TICKS = (TickType.LAST_TIMESTAMP, TickType.DELAYED_LAST_TIMESTAMP)
_SIZE_OF_PRICE = {
    TickType.BID: "bid_size",
    TickType.ASK: "ask_size",
    TickType.LAST: "last_size",
    TickType.DELAYED_BID: "delayed_bid_size",
    TickType.DELAYED_ASK: "delayed_ask_size",
    TickType.DELAYED_LAST: "delayed_last_size",
}


def tick_name(tick_type: int) -> str:
    name = _TICK_NAMES.get(tick_type)
    return name if name is not None else f"tick_{tick_type}"


Payload = dict[str, object]
Builder = Callable[[object, Line, int], Payload]


def _head(line: Line, kind_event: str, recv_ns: int, tws_time: int | None = None) -> Payload:
    line.seq += 1
    return {
        "v": SCHEMA,
        "kind": line.key.kind,
        "event": kind_event,
        "instrument": line.key.instrument,
        "seq": line.seq,
        "recv_ns": recv_ns,
        "tws_time": tws_time,
    }


# The four commonest messages build their payload in one literal (no _head call, no dict growing
# past its first size): key for key the same payload as _head + fields. Each has a typed builder
# (an event in) and a field builder (its wire fields in, `FIELD_BUILDERS`), sharing that literal.


def _named(tick_type: int) -> tuple[str, int]:
    return _TICK_NAMES.get(tick_type) or tick_name(tick_type), tick_type


def _price_payload(line: Line, recv_ns: int, name: str, tick_type: int, price: float, size: float | None,
                   attrib: int) -> Payload:  # fmt: skip
    line.seq = seq = line.seq + 1
    latest = line.latest
    latest[name] = price
    if size is not None and tick_type in _SIZE_OF_PRICE:
        latest[_SIZE_OF_PRICE[tick_type]] = size
    key = line.key
    return {"v": SCHEMA, "kind": key.kind, "event": "tick_price", "instrument": key.instrument, "seq": seq,
            "recv_ns": recv_ns, "tws_time": None, "tick": name, "tick_type": tick_type, "price": price, "size": size,
            "attrib": attrib}  # fmt: skip


def _size_payload(line: Line, recv_ns: int, name: str, tick_type: int, size: float | None) -> Payload:
    line.seq = seq = line.seq + 1
    line.latest[name] = size
    key = line.key
    return {"v": SCHEMA, "kind": key.kind, "event": "tick_size", "instrument": key.instrument, "seq": seq,
            "recv_ns": recv_ns, "tws_time": None, "tick": name, "tick_type": tick_type, "size": size}  # fmt: skip


def _string_payload(line: Line, recv_ns: int, name: str, tick_type: int, value: str) -> Payload:
    tws_time = int(value) if tick_type in _TIMESTAMP_TICKS and value.isdigit() else None
    line.seq = seq = line.seq + 1
    line.latest[name] = value
    key = line.key
    return {"v": SCHEMA, "kind": key.kind, "event": "tick_string", "instrument": key.instrument, "seq": seq,
            "recv_ns": recv_ns, "tws_time": tws_time, "tick": name, "tick_type": tick_type, "value": value}  # fmt: skip


def _generic_payload(line: Line, recv_ns: int, name: str, tick_type: int, value: float) -> Payload:
    line.seq = seq = line.seq + 1
    line.latest[name] = value
    key = line.key
    return {"v": SCHEMA, "kind": key.kind, "event": "tick_generic", "instrument": key.instrument, "seq": seq,
            "recv_ns": recv_ns, "tws_time": None, "tick": name, "tick_type": tick_type, "value": value}  # fmt: skip


def _tick_price(e: ev.TickPrice, line: Line, recv_ns: int) -> Payload:
    return _price_payload(line, recv_ns, *_named(e.tick_type), e.price, e.size, e.attrib_mask)


def _tick_size(e: ev.TickSize, line: Line, recv_ns: int) -> Payload:
    return _size_payload(line, recv_ns, *_named(e.tick_type), e.size)


def _tick_string(e: ev.TickString, line: Line, recv_ns: int) -> Payload:
    return _string_payload(line, recv_ns, *_named(e.tick_type), e.value)


def _tick_generic(e: ev.TickGeneric, line: Line, recv_ns: int) -> Payload:
    return _generic_payload(line, recv_ns, *_named(e.tick_type), e.value)


# --- straight from the wire fields ----------------------------------------------------------------
# The fields of tickPrice, tickSize, tickString and tickGeneric as the decoder reads them (text
# message ids, server versions 157..200: id, version, reqId, tickType, ...), to the same payload
# with no typed event between: the caller finds the line by the reqId field's bytes, and the tick
# type is named from its bytes, so neither goes through int(). Conversions come first: a field
# that does not convert raises before the line is touched, and the caller decodes the message the
# typed way to say what was wrong (tests/test_payload_builders.py holds the two paths together).

FieldBuilder = Callable[[list[bytes], Line, int], Payload]
_TICK_BY_FIELD = {str(t.value).encode(): (t.name.lower(), t.value) for t in TickType}
MAX_TICK_FIELDS = 512  # tick type fields remembered: TWS uses a few dozen; the rest would be junk


def _tick_of(raw: bytes) -> tuple[str, int]:
    """A tick type field not seen before (a number IB's table does not name, or junk), named once
    and then remembered, up to MAX_TICK_FIELDS."""
    named = _named(int(raw))
    if len(_TICK_BY_FIELD) < MAX_TICK_FIELDS:
        _TICK_BY_FIELD[raw] = named
    return named


def _tick_price_fields(f: list[bytes], line: Line, recv_ns: int) -> Payload:
    _, _, _, tick, price, sz, mask, _ = f
    name, tick_type = _TICK_BY_FIELD.get(tick) or _tick_of(tick)
    return _price_payload(line, recv_ns, name, tick_type, float(price), size(sz), int(mask))


def _tick_size_fields(f: list[bytes], line: Line, recv_ns: int) -> Payload:
    _, _, _, tick, sz, _ = f
    name, tick_type = _TICK_BY_FIELD.get(tick) or _tick_of(tick)
    return _size_payload(line, recv_ns, name, tick_type, size(sz))


def _tick_string_fields(f: list[bytes], line: Line, recv_ns: int) -> Payload:
    _, _, _, tick, value, _ = f
    name, tick_type = _TICK_BY_FIELD.get(tick) or _tick_of(tick)
    return _string_payload(line, recv_ns, name, tick_type, text(value))


def _tick_generic_fields(f: list[bytes], line: Line, recv_ns: int) -> Payload:
    _, _, _, tick, value, _ = f
    name, tick_type = _TICK_BY_FIELD.get(tick) or _tick_of(tick)
    return _generic_payload(line, recv_ns, name, tick_type, number(value))


def field_builders(decoder: Decoder) -> dict[bytes, tuple[type, FieldBuilder]]:
    """Message id field -> (the event it decodes to, its field builder), for `decoder`'s
    connection; empty where the layouts above do not hold (raw integer ids, server >= 201)."""
    if decoder.raw_int_ids:
        return {}
    return {
        b"%d" % In.TICK_PRICE: (ev.TickPrice, _tick_price_fields),
        b"%d" % In.TICK_SIZE: (ev.TickSize, _tick_size_fields),
        b"%d" % In.TICK_STRING: (ev.TickString, _tick_string_fields),
        b"%d" % In.TICK_GENERIC: (ev.TickGeneric, _tick_generic_fields),
    }


def _tick_option(e: ev.TickOptionComputation, line: Line, recv_ns: int) -> Payload:
    name = tick_name(e.tick_type)
    p = _head(line, "tick_option", recv_ns)
    p["tick"], p["tick_type"] = name, e.tick_type
    greeks = {
        "implied_vol": e.implied_vol, "delta": e.delta, "opt_price": e.opt_price, "pv_dividend": e.pv_dividend,
        "gamma": e.gamma, "vega": e.vega, "theta": e.theta, "und_price": e.und_price,
    }  # fmt: skip
    p.update(greeks)
    line.latest[name] = greeks
    return p


def _market_data_type(e: ev.MarketDataTypeChanged, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "market_data_type", recv_ns)
    p["market_data_type"] = line.latest["market_data_type"] = MARKET_DATA_TYPES.get(
        e.market_data_type, str(e.market_data_type)
    )
    return p


def _snapshot_end(e: ev.TickSnapshotEnd, line: Line, recv_ns: int) -> Payload:
    return _head(line, "snapshot_end", recv_ns)


def _trade(e: ev.TickByTickLast, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "trade", recv_ns, e.time)
    p["price"], p["size"], p["attrib"], p["exchange"], p["conditions"] = (
        e.price, e.size, e.attrib_mask, e.exchange, e.special_conditions,
    )  # fmt: skip
    line.latest = {"price": e.price, "size": e.size, "tws_time": e.time, "exchange": e.exchange}
    return p


def _bid_ask(e: ev.TickByTickBidAsk, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "bid_ask", recv_ns, e.time)
    p["bid"], p["ask"], p["bid_size"], p["ask_size"], p["attrib"] = (
        e.bid_price, e.ask_price, e.bid_size, e.ask_size, e.attrib_mask,
    )  # fmt: skip
    line.latest = {"bid": e.bid_price, "ask": e.ask_price, "bid_size": e.bid_size, "ask_size": e.ask_size}
    return p


def _midpoint(e: ev.TickByTickMidPoint, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "midpoint", recv_ns, e.time)
    p["mid"] = e.mid_point
    line.latest = {"mid": e.mid_point, "tws_time": e.time}
    return p


def _bar(e: ev.RealTimeBar, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "bar", recv_ns, e.time)
    bar = {"open": e.open, "high": e.high, "low": e.low, "close": e.close, "volume": e.volume, "wap": e.wap}
    bar["count"] = e.count
    p.update(bar)
    bar["tws_time"] = e.time
    line.latest = bar
    return p


def _depth(e: ev.MarketDepth, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "depth", recv_ns)
    p["position"], p["operation"], p["side"], p["price"], p["size"] = (
        e.position, e.operation, e.side, e.price, e.size,
    )  # fmt: skip
    p["market_maker"] = ""
    return p


def _depth_l2(e: ev.MarketDepthL2, line: Line, recv_ns: int) -> Payload:
    p = _head(line, "depth", recv_ns)
    p["position"], p["operation"], p["side"], p["price"], p["size"], p["market_maker"] = (
        e.position, e.operation, e.side, e.price, e.size, e.market_maker,
    )  # fmt: skip
    return p


BUILDERS: dict[type, Builder] = {
    ev.TickPrice: _tick_price,
    ev.TickSize: _tick_size,
    ev.TickString: _tick_string,
    ev.TickGeneric: _tick_generic,
    ev.TickOptionComputation: _tick_option,
    ev.MarketDataTypeChanged: _market_data_type,
    ev.TickSnapshotEnd: _snapshot_end,
    ev.TickByTickLast: _trade,
    ev.TickByTickBidAsk: _bid_ask,
    ev.TickByTickMidPoint: _midpoint,
    ev.RealTimeBar: _bar,
    ev.MarketDepth: _depth,
    ev.MarketDepthL2: _depth_l2,
}  # type: ignore[dict-item]


def history_bar_payload(line: Line, complete: bool, row: list[object], recv_ns: int) -> Payload:
    """An hbars bar: `bar_update` for the forming bar as it changes, `bar_close` once for each complete
    one. `row` is history_rows.BAR_COLUMNS; its time (the bar's start, UTC epoch) is `tws_time`."""
    t, o, h, lo, c, v, wap, n = row
    p = _head(line, "bar_close" if complete else "bar_update", recv_ns, t)  # type: ignore[arg-type]
    bar = {"open": o, "high": h, "low": lo, "close": c, "volume": v, "wap": wap, "count": n, "complete": complete}
    p.update(bar)
    bar["tws_time"] = t
    line.latest = bar
    return p


def view_payload(line: Line, seq: int, values: dict[str, object], folded: int, now_ns: int) -> Payload:
    """`latest` on a conflated view's topic: the stream's values (or the view's fields of them) as
    they stand; `folded` is how many messages of the stream this one stands for."""
    key = line.key
    return {"v": SCHEMA, "kind": key.kind, "event": "latest", "instrument": key.instrument, "seq": seq,
            "recv_ns": now_ns, "tws_time": None, "latest": values, "folded": folded}  # fmt: skip


def marker_payload(line: Line, event: str, reason: str, message: str, code: int | None, recv_ns: int) -> Payload:
    """`stale` / `resumed` on a data topic: an outage window a consumer sees on its own stream."""
    p = _head(line, event, recv_ns)
    p["reason"], p["message"], p["code"] = reason, message, code
    return p


def error_payload(line: Line, code: int, message: str, hint: str, recv_ns: int) -> Payload:
    p = _head(line, "error", recv_ns)
    p["code"], p["message"], p["hint"] = code, message, hint
    return p

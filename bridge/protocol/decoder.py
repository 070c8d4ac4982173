"""Message payloads to events, with the field layout of the negotiated server version.

`Decoder(server_version)` picks each message's layout once, so the per-message path is a
dict lookup and one small function: no version checks, no generic field converters.
Layouts follow the official client's decoder (ibapi 10.x `decoder.py`) for versions
157..200; from 201 the message id is a raw 4-byte integer and ids above 200 carry
protobuf, which we keep raw in `Unhandled`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import events as ev
from .fields import integer, number, plain, size, text
from .ids import In
from .versions import (
    MIN_SERVER_VER_ADVANCED_ORDER_REJECT,
    MIN_SERVER_VER_BOND_ISSUERID,
    MIN_SERVER_VER_ERROR_TIME,
    MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT,
    MIN_SERVER_VER_FUND_DATA_FIELDS,
    MIN_SERVER_VER_HISTORICAL_DATA_END,
    MIN_SERVER_VER_INELIGIBILITY_REASONS,
    MIN_SERVER_VER_LAST_TRADE_DATE,
    MIN_SERVER_VER_RAW_INT_MSG_ID,
    MIN_SERVER_VER_SIZE_RULES,
)

Fields = list[bytes]
Handler = Callable[[Fields], ev.Event]

# Errors a malformed field list can raise inside a handler; anything else is our bug.
_FIELD_ERRORS = (ValueError, IndexError, OverflowError, TypeError)

_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__


# --- market data: the hot path. Fields are unpacked exactly: the trailing b"" is the
# empty piece after the last NUL, and a count mismatch raises ValueError (malformed).


def _tick_price(f: Fields) -> ev.Event:
    _, _, req_id, tick_type, price, sz, mask, _ = f
    return _new(ev.TickPrice, (int(req_id), int(tick_type), float(price), size(sz), int(mask)))


def _tick_size(f: Fields) -> ev.Event:
    _, _, req_id, tick_type, sz, _ = f
    return _new(ev.TickSize, (int(req_id), int(tick_type), size(sz)))


def _tick_string(f: Fields) -> ev.Event:
    _, _, req_id, tick_type, value, _ = f
    return _new(ev.TickString, (int(req_id), int(tick_type), text(value)))


def _tick_generic(f: Fields) -> ev.Event:
    _, _, req_id, tick_type, value, _ = f
    return _new(ev.TickGeneric, (int(req_id), int(tick_type), number(value)))


def _tick_efp(f: Fields) -> ev.Event:
    _, _, req_id, tick_type, bp, fbp, implied, hold, last_date, impact, to_last, _ = f
    return ev.TickEFP(
        int(req_id), int(tick_type), number(bp), plain(fbp), number(implied),
        integer(hold), plain(last_date), number(impact), number(to_last),
    )  # fmt: skip


def _not_computed(raw: bytes, marker: float) -> float | None:
    value = number(raw)
    return None if value == marker else value


def _tick_option_computation(f: Fields) -> ev.Event:
    # Server >= 156 (PRICE_BASED_VOLATILITY): no version field, a tickAttrib, all greeks.
    _, req_id, tick_type, attrib, iv, delta, opt, pv, gamma, vega, theta, und, _ = f
    implied_vol = number(iv)
    return ev.TickOptionComputation(
        int(req_id), int(tick_type), int(attrib),
        None if implied_vol < 0 else implied_vol,
        _not_computed(delta, -2), _not_computed(opt, -1), _not_computed(pv, -1),
        _not_computed(gamma, -2), _not_computed(vega, -2), _not_computed(theta, -2),
        _not_computed(und, -1),
    )  # fmt: skip


def _tick_snapshot_end(f: Fields) -> ev.Event:
    _, _, req_id, _ = f
    return ev.TickSnapshotEnd(int(req_id))


def _tick_req_params(f: Fields) -> ev.Event:
    _, req_id, min_tick, bbo, perms, _ = f
    return ev.TickReqParams(int(req_id), number(min_tick), plain(bbo), integer(perms))


def _market_data_type(f: Fields) -> ev.Event:
    _, _, req_id, kind, _ = f
    return ev.MarketDataTypeChanged(int(req_id), int(kind))


def _tick_by_tick(f: Fields) -> ev.Event:
    req_id, tick_type, time = int(f[1]), int(f[2]), int(f[3])
    if tick_type == 1 or tick_type == 2:
        _, _, _, _, price, sz, mask, exchange, conditions, _ = f
        return _new(
            ev.TickByTickLast,
            (req_id, tick_type, time, float(price), size(sz), int(mask), plain(exchange), plain(conditions)),
        )
    if tick_type == 3:
        _, _, _, _, bid, ask, bid_size, ask_size, mask, _ = f
        return _new(
            ev.TickByTickBidAsk,
            (req_id, time, float(bid), float(ask), size(bid_size), size(ask_size), int(mask)),
        )
    if tick_type == 4:
        _, _, _, _, mid, _ = f
        return _new(ev.TickByTickMidPoint, (req_id, time, float(mid)))
    return ev.Unhandled(In.TICK_BY_TICK, tuple(f[1:-1]))


def _real_time_bar(f: Fields) -> ev.Event:
    _, _, req_id, time, o, h, lo, c, volume, wap, count, _ = f
    return ev.RealTimeBar(
        int(req_id), int(time), float(o), float(h), float(lo), float(c),
        size(volume), size(wap), int(count),
    )  # fmt: skip


def _market_depth(f: Fields) -> ev.Event:
    _, _, req_id, position, op, side, price, sz, _ = f
    return ev.MarketDepth(int(req_id), int(position), int(op), int(side), float(price), size(sz))


def _market_depth_l2(f: Fields) -> ev.Event:
    # isSmartDepth is present from server 146 (SMART_DEPTH), below our range.
    _, _, req_id, position, maker, op, side, price, sz, smart, _ = f
    return ev.MarketDepthL2(
        int(req_id), int(position), plain(maker), int(op), int(side), float(price), size(sz),
        integer(smart) != 0,
    )  # fmt: skip


def _reroute_mkt_data_req(f: Fields) -> ev.Event:
    _, req_id, con_id, exchange, _ = f
    return ev.RerouteMktDataReq(int(req_id), int(con_id), plain(exchange))


# --- connection-level messages ---------------------------------------------------------------


def _next_valid_id(f: Fields) -> ev.Event:
    _, _, order_id, _ = f
    return ev.NextValidId(int(order_id))


def _managed_accounts(f: Fields) -> ev.Event:
    _, _, accounts, _ = f
    return ev.ManagedAccounts(tuple(a for a in plain(accounts).split(",") if a))


def _current_time(f: Fields) -> ev.Event:
    _, _, time, _ = f
    return ev.CurrentTime(int(time))


def _current_time_in_millis(f: Fields) -> ev.Event:
    _, time_ms, _ = f
    return ev.CurrentTimeInMillis(int(time_ms))


def _contract_details_end(f: Fields) -> ev.Event:
    _, _, req_id, _ = f
    return ev.ContractDetailsEnd(int(req_id))


def _error_layout(server_version: int) -> Handler:
    """error (4): a version field until 194, advanced-reject json from 166, time from 194."""
    if server_version >= MIN_SERVER_VER_ERROR_TIME:

        def error(f: Fields) -> ev.Event:
            _, req_id, code, message, json, time_ms, _ = f
            return ev.Error(int(req_id), int(code), text(message), text(json), integer(time_ms))

    elif server_version >= MIN_SERVER_VER_ADVANCED_ORDER_REJECT:

        def error(f: Fields) -> ev.Event:
            _, _, req_id, code, message, json, _ = f
            return ev.Error(int(req_id), int(code), text(message), text(json))

    else:

        def error(f: Fields) -> ev.Event:
            _, _, req_id, code, message, _ = f
            return ev.Error(int(req_id), int(code), text(message))

    return error


def _split_last_trade(raw: bytes) -> tuple[str, str]:
    """'20261219 09:30 US/Central' or '20261219-09:30' -> (date, time), as the official client splits it."""
    value = plain(raw)
    parts = value.split("-") if "-" in value else value.split()
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def _field_reader(f: Fields) -> Callable[[], bytes]:
    """Reads fields after the id one by one; running out is a ValueError (malformed)."""
    rest = iter(f[1:])

    def nxt() -> bytes:
        for raw in rest:
            return raw
        raise ValueError("message ends before its last field")

    return nxt


def _contract_details_layout(v: int) -> Handler:
    """contractData (10): the layout the official client reads at server version `v`."""
    fund_fields = v >= MIN_SERVER_VER_FUND_DATA_FIELDS
    size_rules = v >= MIN_SERVER_VER_SIZE_RULES
    has_last_trade_date = v >= MIN_SERVER_VER_LAST_TRADE_DATE
    has_ineligibility = v >= MIN_SERVER_VER_INELIGIBILITY_REASONS
    size_min_tick_only = v == MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT

    def contract_details(f: Fields) -> ev.Event:
        nxt = _field_reader(f)
        version = 8 if size_rules else int(nxt())
        req_id = int(nxt()) if version >= 3 else -1
        symbol, sec_type = plain(nxt()), plain(nxt())
        last_trade, last_trade_time = _split_last_trade(nxt())
        last_trade_date = plain(nxt()) if has_last_trade_date else ""
        strike, right, exchange = number(nxt()), plain(nxt()), plain(nxt())
        currency, local_symbol, market_name = plain(nxt()), plain(nxt()), plain(nxt())
        trading_class, con_id, min_tick = plain(nxt()), integer(nxt()), number(nxt())
        if not size_rules:
            nxt()  # mdSizeMultiplier, sent until SIZE_RULES and ignored
        multiplier, order_types, valid_exchanges = plain(nxt()), plain(nxt()), plain(nxt())
        price_magnifier = integer(nxt())
        under_con_id = integer(nxt()) if version >= 4 else 0
        long_name = primary_exchange = ""
        if version >= 5:
            long_name, primary_exchange = text(nxt()), plain(nxt())
        descriptive = tuple(plain(nxt()) for _ in range(7)) if version >= 6 else ("",) * 7
        ev_rule, ev_multiplier = (plain(nxt()), integer(nxt())) if version >= 8 else ("", 0)
        sec_ids = tuple((plain(nxt()), plain(nxt())) for _ in range(integer(nxt()))) if version >= 7 else ()
        agg_group = integer(nxt())
        under_symbol, under_sec_type, market_rule_ids = plain(nxt()), plain(nxt()), plain(nxt())
        real_expiration_date, stock_type = plain(nxt()), plain(nxt())
        if size_min_tick_only:
            nxt()  # sizeMinTick, sent at 163 only and ignored
        min_size = size_increment = suggested = None
        if size_rules:
            min_size, size_increment, suggested = size(nxt()), size(nxt()), size(nxt())
        funds = tuple(plain(nxt()) for _ in range(17)) if fund_fields and sec_type == "FUND" else ()
        reasons: tuple[tuple[str, str], ...] = ()
        if has_ineligibility:
            reasons = tuple((plain(nxt()), plain(nxt())) for _ in range(integer(nxt())))
        contract = ev.Contract(
            symbol, sec_type, exchange, currency, con_id, primary_exchange, last_trade, strike,
            right, multiplier, local_symbol, trading_class,
        )  # fmt: skip
        return ev.ContractDetails(
            req_id, contract, market_name, min_tick, order_types, valid_exchanges, price_magnifier,
            under_con_id, long_name, *descriptive, ev_rule, ev_multiplier, sec_ids, agg_group,
            under_symbol, under_sec_type, market_rule_ids, real_expiration_date, stock_type,
            min_size, size_increment, suggested, last_trade_date, last_trade_time, funds, reasons,
        )  # fmt: skip

    return contract_details


# --- history and option chains: repeated groups, each message checked to be exactly its length.


def _count(raw: bytes) -> int:
    n = int(raw)
    if n < 0:
        raise ValueError(f"negative item count {n}")
    return n


def _exactly(f: Fields, length: int) -> None:
    """A repeated group must end the message: `length` fields and the empty piece after the last NUL."""
    if len(f) != length + 1 or f[-1]:
        raise ValueError(f"message has {len(f) - 1} fields where its counts make {length}")


def _bars(f: Fields, first: int) -> tuple[ev.HistoricalBar, ...]:
    # Per bar (server >= 124, SYNT_REALTIME_BARS): date, open, high, low, close, volume, wap, barCount.
    n = _count(f[first - 1])
    _exactly(f, first + 8 * n)
    return tuple(
        _new(ev.HistoricalBar, (
            plain(f[i]), float(f[i + 1]), float(f[i + 2]), float(f[i + 3]), float(f[i + 4]),
            size(f[i + 5]), size(f[i + 6]), int(f[i + 7]),
        ))
        for i in range(first, first + 8 * n, 8)
    )  # fmt: skip


def _historical_data_layout(v: int) -> Handler:
    """historicalData (17): start and end strings ahead of the bars until 196, where they move
    to their own historicalDataEnd (108)."""
    if v >= MIN_SERVER_VER_HISTORICAL_DATA_END:

        def historical_data(f: Fields) -> ev.Event:
            return ev.HistoricalData(int(f[1]), _bars(f, 3))

    else:

        def historical_data(f: Fields) -> ev.Event:
            return ev.HistoricalData(int(f[1]), _bars(f, 5), plain(f[2]), plain(f[3]), True)

    return historical_data


def _historical_data_end(f: Fields) -> ev.Event:
    _, req_id, start, end, _ = f
    return ev.HistoricalDataEnd(int(req_id), plain(start), plain(end))


def _historical_data_update(f: Fields) -> ev.Event:
    # Its own order: barCount first, then date, open, close, high, low, wap, volume.
    _, req_id, count, date, o, c, h, lo, wap, volume, _ = f
    bar = ev.HistoricalBar(plain(date), float(o), float(h), float(lo), float(c), size(volume), size(wap), int(count))
    return ev.HistoricalDataUpdate(int(req_id), bar)


def _head_timestamp(f: Fields) -> ev.Event:
    _, req_id, stamp, _ = f
    return ev.HeadTimestamp(int(req_id), plain(stamp))


def _historical_ticks(f: Fields) -> ev.Event:
    # Per tick: time, an unused field (always 0), price, size; then done.
    n = _count(f[2])
    _exactly(f, 4 + 4 * n)
    ticks = tuple(_new(ev.HistoricalTick, (int(f[i]), float(f[i + 2]), size(f[i + 3]))) for i in range(3, 3 + 4 * n, 4))
    return ev.HistoricalTicks(int(f[1]), ticks, int(f[-2]) != 0)


def _historical_ticks_bid_ask(f: Fields) -> ev.Event:
    # Per tick: time, mask, bid, ask, bid size, ask size; then done.
    n = _count(f[2])
    _exactly(f, 4 + 6 * n)
    ticks = tuple(
        _new(ev.HistoricalTickBidAsk, (
            int(f[i]), int(f[i + 1]), float(f[i + 2]), float(f[i + 3]), size(f[i + 4]), size(f[i + 5]),
        ))
        for i in range(3, 3 + 6 * n, 6)
    )  # fmt: skip
    return ev.HistoricalTicksBidAsk(int(f[1]), ticks, int(f[-2]) != 0)


def _historical_ticks_last(f: Fields) -> ev.Event:
    # Per tick: time, mask, price, size, exchange, special conditions; then done.
    n = _count(f[2])
    _exactly(f, 4 + 6 * n)
    ticks = tuple(
        _new(ev.HistoricalTickLast, (
            int(f[i]), int(f[i + 1]), float(f[i + 2]), size(f[i + 3]), plain(f[i + 4]), plain(f[i + 5]),
        ))
        for i in range(3, 3 + 6 * n, 6)
    )  # fmt: skip
    return ev.HistoricalTicksLast(int(f[1]), ticks, int(f[-2]) != 0)


def _security_definition_option_parameter(f: Fields) -> ev.Event:
    # reqId, exchange, underlyingConId, tradingClass, multiplier, then counted expirations and strikes.
    n_exp = _count(f[6])
    at = 7 + n_exp
    n_strikes = _count(f[at])
    _exactly(f, at + 1 + n_strikes)
    return ev.SecurityDefinitionOptionParameter(
        int(f[1]), plain(f[2]), int(f[3]), plain(f[4]), plain(f[5]),
        tuple(plain(x) for x in f[7:at]), tuple(float(x) for x in f[at + 1 : at + 1 + n_strikes]),
    )  # fmt: skip


def _security_definition_option_parameter_end(f: Fields) -> ev.Event:
    _, req_id, _ = f
    return ev.SecurityDefinitionOptionParameterEnd(int(req_id))


def _symbol_samples_layout(v: int) -> Handler:
    """symbolSamples (79): each row gains description and issuerId from server 176 (BOND_ISSUERID)."""
    issuer = v >= MIN_SERVER_VER_BOND_ISSUERID

    def symbol_samples(f: Fields) -> ev.Event:
        req_id, rows, at = int(f[1]), [], 3
        for _ in range(_count(f[2])):
            con_id, symbol, sec_type, primary, currency = int(f[at]), f[at + 1], f[at + 2], f[at + 3], f[at + 4]
            n_derived = _count(f[at + 5])
            derived = tuple(plain(x) for x in f[at + 6 : at + 6 + n_derived])
            at += 6 + n_derived
            description = issuer_id = ""
            if issuer:
                description, issuer_id, at = plain(f[at]), plain(f[at + 1]), at + 2
            contract = ev.Contract(
                plain(symbol), plain(sec_type), "", plain(currency), con_id, plain(primary), issuer_id=issuer_id
            )
            rows.append(ev.ContractDescription(contract, derived, description))
        _exactly(f, at)
        return ev.SymbolSamples(req_id, tuple(rows))

    return symbol_samples


def handlers(server_version: int) -> dict[int, Handler]:
    """The handler of every message we decode, with the layouts of `server_version`."""
    return {
        In.TICK_PRICE: _tick_price,
        In.TICK_SIZE: _tick_size,
        In.ERROR: _error_layout(server_version),
        In.NEXT_VALID_ID: _next_valid_id,
        In.CONTRACT_DATA: _contract_details_layout(server_version),
        In.MARKET_DEPTH: _market_depth,
        In.MARKET_DEPTH_L2: _market_depth_l2,
        In.MANAGED_ACCOUNTS: _managed_accounts,
        In.TICK_OPTION_COMPUTATION: _tick_option_computation,
        In.TICK_GENERIC: _tick_generic,
        In.TICK_STRING: _tick_string,
        In.TICK_EFP: _tick_efp,
        In.CURRENT_TIME: _current_time,
        In.REAL_TIME_BARS: _real_time_bar,
        In.CONTRACT_DATA_END: _contract_details_end,
        In.TICK_SNAPSHOT_END: _tick_snapshot_end,
        In.MARKET_DATA_TYPE: _market_data_type,
        In.TICK_REQ_PARAMS: _tick_req_params,
        In.REROUTE_MKT_DATA_REQ: _reroute_mkt_data_req,
        In.TICK_BY_TICK: _tick_by_tick,
        In.CURRENT_TIME_IN_MILLIS: _current_time_in_millis,
        In.HISTORICAL_DATA: _historical_data_layout(server_version),
        In.HISTORICAL_DATA_END: _historical_data_end,
        In.HISTORICAL_DATA_UPDATE: _historical_data_update,
        In.HEAD_TIMESTAMP: _head_timestamp,
        In.HISTORICAL_TICKS: _historical_ticks,
        In.HISTORICAL_TICKS_BID_ASK: _historical_ticks_bid_ask,
        In.HISTORICAL_TICKS_LAST: _historical_ticks_last,
        In.SECURITY_DEFINITION_OPTION_PARAMETER: _security_definition_option_parameter,
        In.SECURITY_DEFINITION_OPTION_PARAMETER_END: _security_definition_option_parameter_end,
        In.SYMBOL_SAMPLES: _symbol_samples_layout(server_version),
    }


class Decoder:
    """Turns message payloads (frames without their length prefix) into events."""

    def __init__(self, server_version: int) -> None:
        self.server_version = server_version
        self.raw_int_ids = server_version >= MIN_SERVER_VER_RAW_INT_MSG_ID
        table = handlers(server_version)
        self._by_int = {int(k): h for k, h in table.items()}
        # Text ids are looked up as the bytes TWS sends, so no int() per message.
        self._by_text = {str(int(k)).encode(): h for k, h in table.items()}

    def decode(self, payload: bytes) -> ev.Event:
        """One message payload to one event. Never raises."""
        if self.raw_int_ids:
            return self._decode_raw_id(payload)
        fields = payload.split(b"\0")
        handler = self._by_text.get(fields[0])
        if handler is None:
            return _unhandled_text(fields)
        try:
            return handler(fields)
        except _FIELD_ERRORS as exc:
            return _malformed(fields, exc)

    def decode_all(self, payloads: Iterable[bytes], out: list[ev.Event]) -> None:
        """Decode many payloads into `out`; the hot path, one straight loop."""
        if self.raw_int_ids:
            out.extend(map(self._decode_raw_id, payloads))
            return
        lookup = self._by_text.get
        append = out.append
        for payload in payloads:
            fields = payload.split(b"\0")
            handler = lookup(fields[0])
            if handler is None:
                append(_unhandled_text(fields))
                continue
            try:
                append(handler(fields))
            except _FIELD_ERRORS as exc:
                append(_malformed(fields, exc))

    def _decode_raw_id(self, payload: bytes) -> ev.Event:
        if len(payload) < 4:
            return ev.MalformedMessage(-1, (payload,), "message shorter than its 4-byte id")
        msg_id = int.from_bytes(payload[:4], "big")
        handler = self._by_int.get(msg_id)
        if handler is None:
            return ev.Unhandled(msg_id, (payload[4:],))
        # Same layouts as the text protocol, minus the id field; keep index 0 for the id.
        fields = [b"", *payload[4:].split(b"\0")]
        try:
            return handler(fields)
        except _FIELD_ERRORS as exc:
            return ev.MalformedMessage(msg_id, tuple(fields[1:]), _reason(exc))


def _msg_id(raw: bytes) -> int:
    return int(raw) if raw.isdigit() and len(raw) < 10 else -1


def _unhandled_text(fields: Fields) -> ev.Event:
    msg_id = _msg_id(fields[0])
    if msg_id < 0:
        return ev.MalformedMessage(-1, tuple(fields), f"message id {fields[0][:20]!r} is not a number")
    return ev.Unhandled(msg_id, tuple(fields[1:-1] if fields[-1] == b"" else fields[1:]))


def _malformed(fields: Fields, exc: Exception) -> ev.Event:
    return ev.MalformedMessage(_msg_id(fields[0]), tuple(fields), _reason(exc))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"

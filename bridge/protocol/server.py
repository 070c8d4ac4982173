"""The server side of the protocol, for the TWS simulator and for tests.

`ServerConnection` reads a client's greeting and requests; `encode_event` writes any event
in the layout of a given server version (the inverse of `decoder.py`). Requests of ours
parse back into the request types of `requests.py`; anything else a client sends (orders,
positions, account updates from ib_async or the official client) arrives as
`OtherRequest` with its raw fields, for the simulator to answer or refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import NamedTuple

from . import events as ev
from . import requests as rq
from .errors import ProtocolError
from .events import Contract
from .fields import integer, number, plain
from .framing import MAX_FRAME, FrameReader
from .handshake import PREFIX, negotiate, parse_version_range, server_hello
from .ids import In, Out
from .requests import message
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

# --- events to bytes -------------------------------------------------------------------------


def _size(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)  # an int size is fine too
    return str(int(value)) if value.is_integer() else repr(value)


def _escaped(value: str) -> bytes:
    """Text that the client reads with unicode escapes (TWS >= 153 sends it so)."""
    return value.encode("unicode-escape")


def _or(value: float | None, marker: float) -> float:
    return marker if value is None else value


def _contract_details(e: ev.ContractDetails, v: int) -> list[object]:
    c = e.contract
    last = e.contract.last_trade_date_or_contract_month
    if e.last_trade_time:
        last = f"{last} {e.last_trade_time}"
    out: list[object] = [] if v >= MIN_SERVER_VER_SIZE_RULES else [8]
    out += [e.req_id, c.symbol, c.sec_type, last]
    if v >= MIN_SERVER_VER_LAST_TRADE_DATE:
        out.append(e.last_trade_date)
    out += [c.strike or 0.0, c.right, c.exchange, c.currency, c.local_symbol, e.market_name, c.trading_class, c.con_id]
    out.append(e.min_tick)
    if v < MIN_SERVER_VER_SIZE_RULES:
        out.append(1)  # mdSizeMultiplier
    out += [c.multiplier, e.order_types, e.valid_exchanges, e.price_magnifier, e.under_con_id]
    out += [_escaped(e.long_name), c.primary_exchange, e.contract_month, e.industry, e.category]
    out += [e.subcategory, e.time_zone_id, e.trading_hours, e.liquid_hours, e.ev_rule, e.ev_multiplier]
    out.append(len(e.sec_id_list))
    for tag, value in e.sec_id_list:
        out += [tag, value]
    out += [e.agg_group, e.under_symbol, e.under_sec_type, e.market_rule_ids, e.real_expiration_date]
    out.append(e.stock_type)
    if v == MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT:
        out.append(_size(e.min_size))  # sizeMinTick
    if v >= MIN_SERVER_VER_SIZE_RULES:
        out += [_size(e.min_size), _size(e.size_increment), _size(e.suggested_size_increment)]
    if v >= MIN_SERVER_VER_FUND_DATA_FIELDS and c.sec_type == "FUND":
        out += list(e.fund_fields) + [""] * (17 - len(e.fund_fields))
    if v >= MIN_SERVER_VER_INELIGIBILITY_REASONS:
        out.append(len(e.ineligibility_reasons))
        for reason_id, description in e.ineligibility_reasons:
            out += [reason_id, description]
    return out


def _error(e: ev.Error, v: int) -> list[object]:
    if v >= MIN_SERVER_VER_ERROR_TIME:
        return [e.req_id, e.code, _escaped(e.message), _escaped(e.advanced_order_reject_json), e.error_time_ms]
    if v >= MIN_SERVER_VER_ADVANCED_ORDER_REJECT:
        return [2, e.req_id, e.code, _escaped(e.message), _escaped(e.advanced_order_reject_json)]
    return [2, e.req_id, e.code, _escaped(e.message)]


def _tick_by_tick_last(e: ev.TickByTickLast, v: int) -> list[object]:
    return [e.req_id, e.tick_type, e.time, e.price, _size(e.size), e.attrib_mask, e.exchange, e.special_conditions]


def _tick_option(e: ev.TickOptionComputation, v: int) -> list[object]:
    return [
        e.req_id, e.tick_type, e.tick_attrib, _or(e.implied_vol, -1), _or(e.delta, -2), _or(e.opt_price, -1),
        _or(e.pv_dividend, -1), _or(e.gamma, -2), _or(e.vega, -2), _or(e.theta, -2), _or(e.und_price, -1),
    ]  # fmt: skip


def _bar(b: ev.HistoricalBar) -> list[object]:
    return [b.date, b.open, b.high, b.low, b.close, _size(b.volume), _size(b.wap), b.bar_count]


def _historical_data(e: ev.HistoricalData, v: int) -> list[object]:
    # start and end ride in this message before 196; from 196 historicalDataEnd carries them.
    out: list[object] = [e.req_id] if v >= MIN_SERVER_VER_HISTORICAL_DATA_END else [e.req_id, e.start, e.end]
    out.append(len(e.bars))
    for bar in e.bars:
        out += _bar(bar)
    return out


def _historical_data_update(e: ev.HistoricalDataUpdate, v: int) -> list[object]:
    b = e.bar
    return [e.req_id, b.bar_count, b.date, b.open, b.close, b.high, b.low, _size(b.wap), _size(b.volume)]


def _historical_ticks(e: ev.HistoricalTicks, v: int) -> list[object]:
    out: list[object] = [e.req_id, len(e.ticks)]
    for t in e.ticks:
        out += [t.time, 0, t.price, _size(t.size)]
    return [*out, e.done]


def _historical_ticks_bid_ask(e: ev.HistoricalTicksBidAsk, v: int) -> list[object]:
    out: list[object] = [e.req_id, len(e.ticks)]
    for t in e.ticks:
        out += [t.time, t.attrib_mask, t.bid_price, t.ask_price, _size(t.bid_size), _size(t.ask_size)]
    return [*out, e.done]


def _historical_ticks_last(e: ev.HistoricalTicksLast, v: int) -> list[object]:
    out: list[object] = [e.req_id, len(e.ticks)]
    for t in e.ticks:
        out += [t.time, t.attrib_mask, t.price, _size(t.size), t.exchange, t.special_conditions]
    return [*out, e.done]


def _security_definition_option_parameter(e: ev.SecurityDefinitionOptionParameter, v: int) -> list[object]:
    return [
        e.req_id, e.exchange, e.underlying_con_id, e.trading_class, e.multiplier,
        len(e.expirations), *e.expirations, len(e.strikes), *e.strikes,
    ]  # fmt: skip


def _symbol_samples(e: ev.SymbolSamples, v: int) -> list[object]:
    out: list[object] = [e.req_id, len(e.descriptions)]
    for d in e.descriptions:
        c = d.contract
        out += [c.con_id, c.symbol, c.sec_type, c.primary_exchange, c.currency, len(d.derivative_sec_types)]
        out += d.derivative_sec_types
        if v >= MIN_SERVER_VER_BOND_ISSUERID:
            out += [d.description, c.issuer_id]
    return out


def historical_data_answer(
    req_id: int, bars: Sequence[ev.HistoricalBar], start: str, end: str, server_version: int
) -> list[ev.Event]:
    """What TWS sends for a reqHistoricalData answer: one message before 196, bars then
    historicalDataEnd from 196 (HISTORICAL_DATA_END)."""
    if server_version >= MIN_SERVER_VER_HISTORICAL_DATA_END:
        return [ev.HistoricalData(req_id, tuple(bars)), ev.HistoricalDataEnd(req_id, start, end)]
    return [ev.HistoricalData(req_id, tuple(bars), start, end, True)]


_EVENT_ENCODERS: dict[type, tuple[int, Callable[..., Sequence[object]]]] = {
    ev.TickPrice: (In.TICK_PRICE, lambda e, v: [6, e.req_id, e.tick_type, e.price, _size(e.size), e.attrib_mask]),
    ev.TickSize: (In.TICK_SIZE, lambda e, v: [6, e.req_id, e.tick_type, _size(e.size)]),
    ev.TickString: (In.TICK_STRING, lambda e, v: [6, e.req_id, e.tick_type, _escaped(e.value)]),
    ev.TickGeneric: (In.TICK_GENERIC, lambda e, v: [6, e.req_id, e.tick_type, e.value]),
    ev.TickEFP: (In.TICK_EFP, lambda e, v: [6, *e]),
    ev.TickOptionComputation: (In.TICK_OPTION_COMPUTATION, _tick_option),
    ev.TickSnapshotEnd: (In.TICK_SNAPSHOT_END, lambda e, v: [1, e.req_id]),
    ev.TickReqParams: (In.TICK_REQ_PARAMS, lambda e, v: list(e)),
    ev.MarketDataTypeChanged: (In.MARKET_DATA_TYPE, lambda e, v: [1, e.req_id, e.market_data_type]),
    ev.TickByTickLast: (In.TICK_BY_TICK, _tick_by_tick_last),
    ev.TickByTickBidAsk: (
        In.TICK_BY_TICK,
        lambda e, v: [
            e.req_id,
            3,
            e.time,
            e.bid_price,
            e.ask_price,
            _size(e.bid_size),
            _size(e.ask_size),
            e.attrib_mask,
        ],
    ),
    ev.TickByTickMidPoint: (In.TICK_BY_TICK, lambda e, v: [e.req_id, 4, e.time, e.mid_point]),
    ev.RealTimeBar: (
        In.REAL_TIME_BARS,
        lambda e, v: [3, e.req_id, e.time, e.open, e.high, e.low, e.close, _size(e.volume), _size(e.wap), e.count],
    ),
    ev.MarketDepth: (
        In.MARKET_DEPTH,
        lambda e, v: [1, e.req_id, e.position, e.operation, e.side, e.price, _size(e.size)],
    ),
    ev.MarketDepthL2: (
        In.MARKET_DEPTH_L2,
        lambda e, v: [
            1,
            e.req_id,
            e.position,
            e.market_maker,
            e.operation,
            e.side,
            e.price,
            _size(e.size),
            e.is_smart_depth,
        ],
    ),
    ev.RerouteMktDataReq: (In.REROUTE_MKT_DATA_REQ, lambda e, v: list(e)),
    ev.Error: (In.ERROR, _error),
    ev.NextValidId: (In.NEXT_VALID_ID, lambda e, v: [1, e.order_id]),
    ev.ManagedAccounts: (In.MANAGED_ACCOUNTS, lambda e, v: [1, ",".join(e.accounts)]),
    ev.CurrentTime: (In.CURRENT_TIME, lambda e, v: [1, e.time]),
    ev.CurrentTimeInMillis: (In.CURRENT_TIME_IN_MILLIS, lambda e, v: [e.time_ms]),
    ev.ContractDetails: (In.CONTRACT_DATA, _contract_details),
    ev.ContractDetailsEnd: (In.CONTRACT_DATA_END, lambda e, v: [1, e.req_id]),
    ev.HistoricalData: (In.HISTORICAL_DATA, _historical_data),
    ev.HistoricalDataEnd: (In.HISTORICAL_DATA_END, lambda e, v: list(e)),
    ev.HistoricalDataUpdate: (In.HISTORICAL_DATA_UPDATE, _historical_data_update),
    ev.HeadTimestamp: (In.HEAD_TIMESTAMP, lambda e, v: list(e)),
    ev.HistoricalTicks: (In.HISTORICAL_TICKS, _historical_ticks),
    ev.HistoricalTicksBidAsk: (In.HISTORICAL_TICKS_BID_ASK, _historical_ticks_bid_ask),
    ev.HistoricalTicksLast: (In.HISTORICAL_TICKS_LAST, _historical_ticks_last),
    ev.SecurityDefinitionOptionParameter: (
        In.SECURITY_DEFINITION_OPTION_PARAMETER,
        _security_definition_option_parameter,
    ),
    ev.SecurityDefinitionOptionParameterEnd: (In.SECURITY_DEFINITION_OPTION_PARAMETER_END, lambda e, v: list(e)),
    ev.SymbolSamples: (In.SYMBOL_SAMPLES, _symbol_samples),
}


def encode_event(event: ev.Event, server_version: int) -> bytes:
    """The framed message TWS at `server_version` would send for `event`."""
    if isinstance(event, ev.Unhandled):
        return message(event.msg_id, event.fields, server_version)
    msg_id, encode = _EVENT_ENCODERS[type(event)]
    return message(msg_id, encode(event, server_version), server_version)


def encode_raw(msg_id: int, fields: Sequence[object], server_version: int) -> bytes:
    """A message we have no event type for (openOrderEnd, positionEnd, ...)."""
    return message(msg_id, fields, server_version)


# --- bytes to requests ---------------------------------------------------------------------


class ClientHello(NamedTuple):
    """The client's greeting: the version range it speaks and its connect options."""

    min_version: int
    max_version: int
    options: str


class OtherRequest(NamedTuple):
    """A request that is not one of ours (an order, positions, account updates, ...)."""

    msg_id: int
    fields: tuple[bytes, ...]


class MalformedRequest(NamedTuple):
    msg_id: int
    fields: tuple[bytes, ...]
    reason: str


def _contract(nxt: Callable[[], bytes], *, primary_exchange: bool = True) -> Contract:
    con_id, symbol, sec_type, last, strike, right, multiplier, exchange = (nxt() for _ in range(8))
    primary = plain(nxt()) if primary_exchange else ""
    currency, local_symbol, trading_class = plain(nxt()), plain(nxt()), plain(nxt())
    return Contract(
        plain(symbol), plain(sec_type), plain(exchange), currency, integer(con_id), primary, plain(last),
        number(strike) if strike else None, plain(right), plain(multiplier), local_symbol, trading_class,
    )  # fmt: skip


def _flag(raw: bytes) -> bool:
    return integer(raw) != 0


def _parse_req_mkt_data(nxt: Callable[[], bytes], v: int) -> rq.Request:
    nxt()  # version
    req_id = integer(nxt())
    contract = _contract(nxt)
    if contract.sec_type == "BAG":
        for _ in range(integer(nxt()) * 4):
            nxt()
    if _flag(nxt()):  # delta-neutral contract follows
        nxt(), nxt(), nxt()
    generic, snapshot, regulatory = plain(nxt()), _flag(nxt()), _flag(nxt())
    return rq.ReqMktData(req_id, contract, generic, snapshot, regulatory)


def _parse_req_contract_details(nxt: Callable[[], bytes], v: int) -> rq.Request:
    nxt()  # version
    req_id = integer(nxt())
    c = _contract(nxt)
    include_expired = _flag(nxt())
    nxt(), nxt()  # secIdType, secId
    issuer_id = plain(nxt()) if v >= MIN_SERVER_VER_BOND_ISSUERID else ""
    return rq.ReqContractDetails(req_id, c._replace(include_expired=include_expired, issuer_id=issuer_id))


def _parse_req_tick_by_tick(nxt: Callable[[], bytes], v: int) -> rq.Request:
    req_id = integer(nxt())
    c = _contract(nxt)
    return rq.ReqTickByTickData(req_id, c, plain(nxt()), integer(nxt()), _flag(nxt()))


def _parse_req_real_time_bars(nxt: Callable[[], bytes], v: int) -> rq.Request:
    nxt()
    req_id = integer(nxt())
    c = _contract(nxt)
    bar_size, what, rth = integer(nxt()), plain(nxt()), _flag(nxt())
    return rq.ReqRealTimeBars(req_id, c, what, rth, bar_size)


def _parse_req_mkt_depth(nxt: Callable[[], bytes], v: int) -> rq.Request:
    nxt()
    req_id = integer(nxt())
    c = _contract(nxt)
    return rq.ReqMktDepth(req_id, c, integer(nxt()), _flag(nxt()))


def _tag_values(raw: bytes) -> rq.TagValues:
    pairs = (item.partition("=") for item in plain(raw).split(";") if item)
    return tuple((tag, value) for tag, _, value in pairs)


def _parse_req_historical_data(nxt: Callable[[], bytes], v: int) -> rq.Request:
    req_id = integer(nxt())
    c = _contract(nxt)
    include_expired, end, bar_size, duration = _flag(nxt()), plain(nxt()), plain(nxt()), plain(nxt())
    use_rth, what, format_date = _flag(nxt()), plain(nxt()), integer(nxt())
    if c.sec_type == "BAG":
        for _ in range(integer(nxt()) * 4):
            nxt()
    keep_up_to_date, options = _flag(nxt()), _tag_values(nxt())
    return rq.ReqHistoricalData(
        req_id, c._replace(include_expired=include_expired), end, duration, bar_size, what, use_rth,
        format_date, keep_up_to_date, options,
    )  # fmt: skip


def _parse_req_head_timestamp(nxt: Callable[[], bytes], v: int) -> rq.Request:
    req_id = integer(nxt())
    c = _contract(nxt)
    include_expired, use_rth, what, format_date = _flag(nxt()), _flag(nxt()), plain(nxt()), integer(nxt())
    return rq.ReqHeadTimestamp(req_id, c._replace(include_expired=include_expired), what, use_rth, format_date)


def _parse_req_historical_ticks(nxt: Callable[[], bytes], v: int) -> rq.Request:
    req_id = integer(nxt())
    c = _contract(nxt)
    include_expired, start, end, count = _flag(nxt()), plain(nxt()), plain(nxt()), integer(nxt())
    what, use_rth, ignore_size, options = plain(nxt()), _flag(nxt()), _flag(nxt()), _tag_values(nxt())
    return rq.ReqHistoricalTicks(
        req_id, c._replace(include_expired=include_expired), start, end, count, what, use_rth, ignore_size, options
    )


def _parse_req_sec_def_opt_params(nxt: Callable[[], bytes], v: int) -> rq.Request:
    req_id, symbol, exchange, sec_type = integer(nxt()), plain(nxt()), plain(nxt()), plain(nxt())
    return rq.ReqSecDefOptParams(req_id, symbol, exchange, sec_type, integer(nxt()))


def _skip_then(kind: Callable[..., rq.Request], *readers: Callable[[bytes], object]) -> Callable[..., rq.Request]:
    """A parser for 'version, then these fields' requests."""

    def parse(nxt: Callable[[], bytes], v: int) -> rq.Request:
        nxt()
        return kind(*(read(nxt()) for read in readers))

    return parse


def _parse_start_api(nxt: Callable[[], bytes], v: int) -> rq.Request:
    nxt()
    client_id = integer(nxt())
    try:
        capabilities = plain(nxt())
    except ValueError:
        capabilities = ""
    return rq.StartApi(client_id, capabilities)


_REQUEST_PARSERS: dict[int, Callable[[Callable[[], bytes], int], rq.Request]] = {
    Out.START_API: _parse_start_api,
    Out.REQ_IDS: _skip_then(rq.ReqIds, integer),
    Out.REQ_CURRENT_TIME: _skip_then(rq.ReqCurrentTime),
    Out.REQ_MARKET_DATA_TYPE: _skip_then(rq.ReqMarketDataType, integer),
    Out.REQ_MKT_DATA: _parse_req_mkt_data,
    Out.CANCEL_MKT_DATA: _skip_then(rq.CancelMktData, integer),
    Out.REQ_TICK_BY_TICK_DATA: _parse_req_tick_by_tick,
    Out.CANCEL_TICK_BY_TICK_DATA: lambda nxt, v: rq.CancelTickByTickData(integer(nxt())),
    Out.REQ_REAL_TIME_BARS: _parse_req_real_time_bars,
    Out.CANCEL_REAL_TIME_BARS: _skip_then(rq.CancelRealTimeBars, integer),
    Out.REQ_MKT_DEPTH: _parse_req_mkt_depth,
    Out.CANCEL_MKT_DEPTH: lambda nxt, v: (nxt(), rq.CancelMktDepth(integer(nxt()), _flag(nxt())))[1],
    Out.REQ_CONTRACT_DATA: _parse_req_contract_details,
    Out.REQ_HISTORICAL_DATA: _parse_req_historical_data,
    Out.CANCEL_HISTORICAL_DATA: _skip_then(rq.CancelHistoricalData, integer),
    Out.REQ_HEAD_TIMESTAMP: _parse_req_head_timestamp,
    Out.CANCEL_HEAD_TIMESTAMP: lambda nxt, v: rq.CancelHeadTimestamp(integer(nxt())),
    Out.REQ_HISTORICAL_TICKS: _parse_req_historical_ticks,
    Out.REQ_SEC_DEF_OPT_PARAMS: _parse_req_sec_def_opt_params,
    Out.REQ_MATCHING_SYMBOLS: lambda nxt, v: rq.ReqMatchingSymbols(integer(nxt()), plain(nxt())),
}


def _reader(fields: list[bytes]) -> Callable[[], bytes]:
    rest = iter(fields)

    def nxt() -> bytes:
        for raw in rest:
            return raw
        raise ValueError("request ends before its last field")

    return nxt


def parse_request(payload: bytes, server_version: int) -> rq.Request | OtherRequest | MalformedRequest:
    """One client message to a request of ours, an `OtherRequest`, or a `MalformedRequest`."""
    if server_version >= MIN_SERVER_VER_RAW_INT_MSG_ID:
        if len(payload) < 4:
            return MalformedRequest(-1, (payload,), "message shorter than its 4-byte id")
        msg_id, fields = int.from_bytes(payload[:4], "big"), payload[4:].split(b"\0")
    else:
        fields = payload.split(b"\0")
        head = fields.pop(0)
        if not head.isdigit() or len(head) > 9:
            return MalformedRequest(-1, tuple(fields), f"message id {head[:20]!r} is not a number")
        msg_id = int(head)
    if fields and fields[-1] == b"":
        fields.pop()
    parser = _REQUEST_PARSERS.get(msg_id)
    if parser is None:
        return OtherRequest(msg_id, tuple(fields))
    try:
        return parser(_reader(fields), server_version)
    except (ValueError, TypeError, OverflowError) as exc:
        return MalformedRequest(msg_id, tuple(fields), f"{type(exc).__name__}: {exc}")


class ServerState(Enum):
    AWAITING_PREFIX = "awaiting API\\0"
    AWAITING_RANGE = "awaiting version range"
    AWAITING_ACCEPT = "greeting read, not yet answered"
    CONNECTED = "connected"


class ServerConnection:
    """Sans-IO server end of one client connection."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.state = ServerState.AWAITING_PREFIX
        self.server_version = 0
        self._prefix = b""
        self._frames = FrameReader(max_frame)
        self._held: list[bytes] = []  # requests that came before we answered the greeting

    def receive_data(self, data: bytes) -> list[ClientHello | rq.Request | OtherRequest | MalformedRequest]:
        """Feed bytes from the client; returns what they completed. Raises ProtocolError
        for a greeting that is not TWS's (the caller should close the socket)."""
        if self.state is ServerState.AWAITING_PREFIX:
            need = len(PREFIX) - len(self._prefix)
            self._prefix += data[:need]
            data = data[need:]
            if not PREFIX.startswith(self._prefix):
                raise ProtocolError(f"client greeting starts with {self._prefix!r}, not 'API\\0'")
            if len(self._prefix) < len(PREFIX):
                return []
            self.state = ServerState.AWAITING_RANGE
        self._frames.feed(data)
        payloads = self._frames.frames()
        out: list[ClientHello | rq.Request | OtherRequest | MalformedRequest] = []
        if self.state is ServerState.AWAITING_RANGE and payloads:
            out.append(ClientHello(*parse_version_range(payloads.pop(0))))
            self.state = ServerState.AWAITING_ACCEPT
        if self.state is ServerState.AWAITING_ACCEPT:
            self._held += payloads
            return out
        payloads, self._held = self._held + payloads, []
        out += [parse_request(p, self.server_version) for p in payloads]
        return out

    def accept(self, hello: ClientHello, server_version: int, connection_time: str) -> bytes | None:
        """Answer the greeting; None when the ranges do not overlap (close the socket).
        Requests the client sent early come out of the next `receive_data` call."""
        version = negotiate(hello.min_version, hello.max_version, server_version)
        if version is None:
            return None
        self.server_version = version
        self.state = ServerState.CONNECTED
        return server_hello(version, connection_time)

    def send(self, event: ev.Event) -> bytes:
        return encode_event(event, self.server_version)

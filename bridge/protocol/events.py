"""Typed events decoded from TWS messages.

Events are NamedTuples: immutable, cheap to build on the tick hot path, and they pack as
msgpack arrays. Field names are IB's, in snake case. A size or optional number that TWS
leaves unset is `None`.
"""

from __future__ import annotations

from typing import NamedTuple


class Contract(NamedTuple):
    """An instrument as TWS describes it. Also what a request names."""

    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    currency: str = ""
    con_id: int = 0
    primary_exchange: str = ""
    last_trade_date_or_contract_month: str = ""
    strike: float | None = None  # None: unset (sent as an empty field)
    right: str = ""
    multiplier: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False
    issuer_id: str = ""


# --- connection --------------------------------------------------------------------------


class Connected(NamedTuple):
    """The server answered our greeting: the version we now speak and its clock."""

    server_version: int
    connection_time: str


class NextValidId(NamedTuple):
    order_id: int


class ManagedAccounts(NamedTuple):
    accounts: tuple[str, ...]


class CurrentTime(NamedTuple):
    time: int


class CurrentTimeInMillis(NamedTuple):
    time_ms: int


class Error(NamedTuple):
    """TWS's error/notice message. `req_id` is -1 for connection-wide notices."""

    req_id: int
    code: int
    message: str
    advanced_order_reject_json: str = ""
    error_time_ms: int = 0


# --- market data ---------------------------------------------------------------------------


class TickPrice(NamedTuple):
    """A price tick with the size TWS sends alongside it and the attribute bits."""

    req_id: int
    tick_type: int
    price: float
    size: float | None
    attrib_mask: int

    @property
    def can_auto_execute(self) -> bool:
        return bool(self.attrib_mask & 1)

    @property
    def past_limit(self) -> bool:
        return bool(self.attrib_mask & 2)

    @property
    def pre_open(self) -> bool:
        return bool(self.attrib_mask & 4)


class TickSize(NamedTuple):
    req_id: int
    tick_type: int
    size: float | None


class TickString(NamedTuple):
    req_id: int
    tick_type: int
    value: str


class TickGeneric(NamedTuple):
    req_id: int
    tick_type: int
    value: float


class TickEFP(NamedTuple):
    req_id: int
    tick_type: int
    basis_points: float
    formatted_basis_points: str
    implied_futures_price: float
    hold_days: int
    future_last_trade_date: str
    dividend_impact: float
    dividends_to_last_trade_date: float


class TickOptionComputation(NamedTuple):
    """Greeks. A value TWS marks "not computed" (-1 or -2) is None."""

    req_id: int
    tick_type: int
    tick_attrib: int
    implied_vol: float | None
    delta: float | None
    opt_price: float | None
    pv_dividend: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    und_price: float | None


class TickSnapshotEnd(NamedTuple):
    req_id: int


class TickReqParams(NamedTuple):
    req_id: int
    min_tick: float
    bbo_exchange: str
    snapshot_permissions: int


class MarketDataTypeChanged(NamedTuple):
    """TWS says which kind of data (1 live, 2 frozen, 3 delayed, 4 delayed frozen) follows."""

    req_id: int
    market_data_type: int


class TickByTickLast(NamedTuple):
    """Tick-by-tick trade; `tick_type` is 1 (Last) or 2 (AllLast). Mask: 1 past limit, 2 unreported."""

    req_id: int
    tick_type: int
    time: int
    price: float
    size: float | None
    attrib_mask: int
    exchange: str
    special_conditions: str


class TickByTickBidAsk(NamedTuple):
    """Mask: 1 bid past low, 2 ask past high."""

    req_id: int
    time: int
    bid_price: float
    ask_price: float
    bid_size: float | None
    ask_size: float | None
    attrib_mask: int


class TickByTickMidPoint(NamedTuple):
    req_id: int
    time: int
    mid_point: float


class RealTimeBar(NamedTuple):
    """A 5-second bar; `time` is the bar's start in epoch seconds."""

    req_id: int
    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    wap: float | None
    count: int


class MarketDepth(NamedTuple):
    """Operation: 0 insert, 1 update, 2 delete. Side: 0 ask, 1 bid."""

    req_id: int
    position: int
    operation: int
    side: int
    price: float
    size: float | None


class MarketDepthL2(NamedTuple):
    req_id: int
    position: int
    market_maker: str
    operation: int
    side: int
    price: float
    size: float | None
    is_smart_depth: bool


class RerouteMktDataReq(NamedTuple):
    req_id: int
    con_id: int
    exchange: str


# --- history (HMDS) ----------------------------------------------------------------------------


class HistoricalBar(NamedTuple):
    """One bar of historicalData or historicalDataUpdate.

    `date` is as TWS wrote it: 'YYYYMMDD' for daily and longer bars, else 'YYYYMMDD HH:MM:SS TZ'
    (formatDate 1) or epoch seconds (formatDate 2). For data without trades (MIDPOINT, BID, ASK,
    BID_ASK, volatilities) TWS sends volume, wap and bar_count as -1.
    """

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    wap: float | None
    bar_count: int


class HistoricalData(NamedTuple):
    """Bars answering reqHistoricalData (message 17).

    Before server 196 the message also ends the answer and carries its start and end
    (`ends` True); from 196 a separate `HistoricalDataEnd` follows and `start`/`end` are empty.
    """

    req_id: int
    bars: tuple[HistoricalBar, ...]
    start: str = ""
    end: str = ""
    ends: bool = False


class HistoricalDataEnd(NamedTuple):
    """historicalDataEnd (message 108, server >= 196): the answer's time span, and that it is complete."""

    req_id: int
    start: str
    end: str


class HistoricalDataUpdate(NamedTuple):
    """keepUpToDate: the forming (or just completed) bar, sent again whenever it changes."""

    req_id: int
    bar: HistoricalBar


class HeadTimestamp(NamedTuple):
    """The earliest data TWS has for the contract and data type, formatted as the request asked."""

    req_id: int
    head_timestamp: str


class HistoricalTick(NamedTuple):
    """MIDPOINT historical tick; `time` in epoch seconds."""

    time: int
    price: float
    size: float | None


class HistoricalTickBidAsk(NamedTuple):
    """BID_ASK historical tick. Mask: 1 ask past high, 2 bid past low (the reverse of tick-by-tick's)."""

    time: int
    attrib_mask: int
    bid_price: float
    ask_price: float
    bid_size: float | None
    ask_size: float | None


class HistoricalTickLast(NamedTuple):
    """TRADES historical tick. Mask: 1 past limit, 2 unreported."""

    time: int
    attrib_mask: int
    price: float
    size: float | None
    exchange: str
    special_conditions: str


class HistoricalTicks(NamedTuple):
    """reqHistoricalTicks MIDPOINT answer (message 96); `done` marks the last message of the answer."""

    req_id: int
    ticks: tuple[HistoricalTick, ...]
    done: bool


class HistoricalTicksBidAsk(NamedTuple):
    """reqHistoricalTicks BID_ASK answer (message 97)."""

    req_id: int
    ticks: tuple[HistoricalTickBidAsk, ...]
    done: bool


class HistoricalTicksLast(NamedTuple):
    """reqHistoricalTicks TRADES answer (message 98)."""

    req_id: int
    ticks: tuple[HistoricalTickLast, ...]
    done: bool


# --- reference data --------------------------------------------------------------------------


class ContractDetails(NamedTuple):
    """One answer to reqContractDetails (message 10), all fields of the negotiated layout."""

    req_id: int
    contract: Contract
    market_name: str = ""
    min_tick: float = 0.0
    order_types: str = ""
    valid_exchanges: str = ""
    price_magnifier: int = 0
    under_con_id: int = 0
    long_name: str = ""
    contract_month: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone_id: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""
    ev_rule: str = ""
    ev_multiplier: int = 0
    sec_id_list: tuple[tuple[str, str], ...] = ()
    agg_group: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    market_rule_ids: str = ""
    real_expiration_date: str = ""
    stock_type: str = ""
    min_size: float | None = None
    size_increment: float | None = None
    suggested_size_increment: float | None = None
    last_trade_date: str = ""
    last_trade_time: str = ""
    fund_fields: tuple[str, ...] = ()
    ineligibility_reasons: tuple[tuple[str, str], ...] = ()


class ContractDetailsEnd(NamedTuple):
    req_id: int


class SecurityDefinitionOptionParameter(NamedTuple):
    """One row of reqSecDefOptParams (message 75): an option chain on one exchange, in TWS's order."""

    req_id: int
    exchange: str
    underlying_con_id: int
    trading_class: str
    multiplier: str
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


class SecurityDefinitionOptionParameterEnd(NamedTuple):
    req_id: int


class ContractDescription(NamedTuple):
    """One row of symbolSamples: conId, symbol, secType, primary exchange and currency in `contract`
    (issuerId there too, server >= 176), the derivative types listed on it, and its description (>= 176)."""

    contract: Contract
    derivative_sec_types: tuple[str, ...]
    description: str = ""


class SymbolSamples(NamedTuple):
    """The answer to reqMatchingSymbols (message 79)."""

    req_id: int
    descriptions: tuple[ContractDescription, ...]


# --- everything else -------------------------------------------------------------------------


class Unhandled(NamedTuple):
    """A message we do not decode, kept whole: its id and raw fields (or protobuf bytes)."""

    msg_id: int
    fields: tuple[bytes, ...]


class MalformedMessage(NamedTuple):
    """A well-framed message whose fields do not fit its layout. The stream goes on."""

    msg_id: int
    fields: tuple[bytes, ...]
    reason: str


Event = (
    Connected
    | NextValidId
    | ManagedAccounts
    | CurrentTime
    | CurrentTimeInMillis
    | Error
    | TickPrice
    | TickSize
    | TickString
    | TickGeneric
    | TickEFP
    | TickOptionComputation
    | TickSnapshotEnd
    | TickReqParams
    | MarketDataTypeChanged
    | TickByTickLast
    | TickByTickBidAsk
    | TickByTickMidPoint
    | RealTimeBar
    | MarketDepth
    | MarketDepthL2
    | RerouteMktDataReq
    | ContractDetails
    | ContractDetailsEnd
    | HistoricalData
    | HistoricalDataEnd
    | HistoricalDataUpdate
    | HeadTimestamp
    | HistoricalTicks
    | HistoricalTicksBidAsk
    | HistoricalTicksLast
    | SecurityDefinitionOptionParameter
    | SecurityDefinitionOptionParameterEnd
    | SymbolSamples
    | Unhandled
    | MalformedMessage
)

"""The requests tws-bridge can send, and their encoders.

Only market-data, history and reference-data requests exist here. There is no order, account or
FA request type, and `encode_request` (the only way `ClientConnection` sends anything)
accepts exactly the types in `ENCODERS`: the bridge is read-only by construction. Layouts follow the official
client's `client.py` for server versions 157..200 (and 201+, which only changes the id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from .events import Contract
from .fields import encode_fields
from .framing import frame
from .ids import Out
from .versions import MIN_SERVER_VER_BOND_ISSUERID, MIN_SERVER_VER_RAW_INT_MSG_ID


class StartApi(NamedTuple):
    client_id: int
    optional_capabilities: str = ""


class ReqIds(NamedTuple):
    num_ids: int = 1


class ReqCurrentTime(NamedTuple):
    pass


class ReqMarketDataType(NamedTuple):
    """1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""

    market_data_type: int


class ReqMktData(NamedTuple):
    req_id: int
    contract: Contract
    generic_ticks: str = ""
    snapshot: bool = False
    regulatory_snapshot: bool = False


class CancelMktData(NamedTuple):
    req_id: int


class ReqTickByTickData(NamedTuple):
    """`tick_type` is "Last", "AllLast", "BidAsk" or "MidPoint"."""

    req_id: int
    contract: Contract
    tick_type: str
    number_of_ticks: int = 0
    ignore_size: bool = False


class CancelTickByTickData(NamedTuple):
    req_id: int


class ReqRealTimeBars(NamedTuple):
    """TWS only serves 5-second bars; `what_to_show` is TRADES, BID, ASK or MIDPOINT."""

    req_id: int
    contract: Contract
    what_to_show: str = "TRADES"
    use_rth: bool = False
    bar_size: int = 5


class CancelRealTimeBars(NamedTuple):
    req_id: int


class ReqMktDepth(NamedTuple):
    req_id: int
    contract: Contract
    num_rows: int = 5
    is_smart_depth: bool = False


class CancelMktDepth(NamedTuple):
    req_id: int
    is_smart_depth: bool = False


class ReqContractDetails(NamedTuple):
    req_id: int
    contract: Contract


TagValues = tuple[tuple[str, str], ...]  # chartOptions / miscOptions, sent as "tag=value;tag=value;"


class ReqHistoricalData(NamedTuple):
    """Bars. `end_date_time` '' means now (required with `keep_up_to_date`); `duration` like '2 D',
    `bar_size` like '1 min'; `format_date` 1 (text dates) or 2 (epoch seconds)."""

    req_id: int
    contract: Contract
    end_date_time: str = ""
    duration: str = "1 D"
    bar_size: str = "1 hour"
    what_to_show: str = "TRADES"
    use_rth: bool = True
    format_date: int = 1
    keep_up_to_date: bool = False
    chart_options: TagValues = ()


class CancelHistoricalData(NamedTuple):
    req_id: int


class ReqHeadTimestamp(NamedTuple):
    req_id: int
    contract: Contract
    what_to_show: str = "TRADES"
    use_rth: bool = True
    format_date: int = 1


class CancelHeadTimestamp(NamedTuple):
    req_id: int


class ReqHistoricalTicks(NamedTuple):
    """Up to 1000 ticks from `start_date_time` or up to `end_date_time` (one of the two);
    `what_to_show` TRADES, BID_ASK or MIDPOINT."""

    req_id: int
    contract: Contract
    start_date_time: str = ""
    end_date_time: str = ""
    number_of_ticks: int = 1000
    what_to_show: str = "TRADES"
    use_rth: bool = True
    ignore_size: bool = False
    misc_options: TagValues = ()


class ReqSecDefOptParams(NamedTuple):
    """The option chains on an underlying; `fut_fop_exchange` '' for every exchange."""

    req_id: int
    underlying_symbol: str
    fut_fop_exchange: str = ""
    underlying_sec_type: str = "STK"
    underlying_con_id: int = 0


class ReqMatchingSymbols(NamedTuple):
    req_id: int
    pattern: str


Request = (
    StartApi
    | ReqIds
    | ReqCurrentTime
    | ReqMarketDataType
    | ReqMktData
    | CancelMktData
    | ReqTickByTickData
    | CancelTickByTickData
    | ReqRealTimeBars
    | CancelRealTimeBars
    | ReqMktDepth
    | CancelMktDepth
    | ReqContractDetails
    | ReqHistoricalData
    | CancelHistoricalData
    | ReqHeadTimestamp
    | CancelHeadTimestamp
    | ReqHistoricalTicks
    | ReqSecDefOptParams
    | ReqMatchingSymbols
)


def _contract_fields(c: Contract, *, primary_exchange: bool = True, trading_class: bool = True) -> list[object]:
    """conId, symbol .. localSymbol[, tradingClass]: the contract block most requests share."""
    out: list[object] = [
        c.con_id, c.symbol, c.sec_type, c.last_trade_date_or_contract_month, c.strike,
        c.right, c.multiplier, c.exchange,
    ]  # fmt: skip
    if primary_exchange:
        out.append(c.primary_exchange)
    out += [c.currency, c.local_symbol]
    if trading_class:
        out.append(c.trading_class)
    return out


def _start_api(r: StartApi, v: int) -> Sequence[object]:
    return [2, r.client_id, r.optional_capabilities]  # VERSION 2; capabilities from server 72


def _req_ids(r: ReqIds, v: int) -> Sequence[object]:
    return [1, r.num_ids]


def _req_current_time(r: ReqCurrentTime, v: int) -> Sequence[object]:
    return [1]


def _req_market_data_type(r: ReqMarketDataType, v: int) -> Sequence[object]:
    return [1, r.market_data_type]


def _req_mkt_data(r: ReqMktData, v: int) -> Sequence[object]:
    # VERSION 11. No combo legs (we never send BAG) and no delta-neutral contract (False).
    # The last field is mktDataOptions, "internal use only", always empty.
    return [11, r.req_id, *_contract_fields(r.contract), False, r.generic_ticks, r.snapshot, r.regulatory_snapshot, ""]


def _cancel_mkt_data(r: CancelMktData, v: int) -> Sequence[object]:
    return [2, r.req_id]


def _req_tick_by_tick(r: ReqTickByTickData, v: int) -> Sequence[object]:
    return [r.req_id, *_contract_fields(r.contract), r.tick_type, r.number_of_ticks, r.ignore_size]


def _cancel_tick_by_tick(r: CancelTickByTickData, v: int) -> Sequence[object]:
    return [r.req_id]


def _req_real_time_bars(r: ReqRealTimeBars, v: int) -> Sequence[object]:
    # VERSION 3; the empty last field is realTimeBarsOptions.
    return [3, r.req_id, *_contract_fields(r.contract), r.bar_size, r.what_to_show, r.use_rth, ""]


def _cancel_real_time_bars(r: CancelRealTimeBars, v: int) -> Sequence[object]:
    return [1, r.req_id]


def _req_mkt_depth(r: ReqMktDepth, v: int) -> Sequence[object]:
    # VERSION 5; the empty last field is mktDepthOptions.
    return [5, r.req_id, *_contract_fields(r.contract), r.num_rows, r.is_smart_depth, ""]


def _cancel_mkt_depth(r: CancelMktDepth, v: int) -> Sequence[object]:
    return [1, r.req_id, r.is_smart_depth]


def _req_contract_details(r: ReqContractDetails, v: int) -> Sequence[object]:
    # VERSION 8; exchange and primaryExchange as separate fields (server >= 75),
    # then includeExpired, secIdType, secId, and issuerId from server 176.
    c = r.contract
    fields = [8, r.req_id, *_contract_fields(c), c.include_expired, "", ""]
    if v >= MIN_SERVER_VER_BOND_ISSUERID:
        fields.append(c.issuer_id)
    return fields


def tag_values(options: TagValues) -> str:
    """TWS's one-field form of a TagValue list: 'tag=value;' each."""
    return "".join(f"{tag}={value};" for tag, value in options)


def _req_historical_data(r: ReqHistoricalData, v: int) -> Sequence[object]:
    # No version field from server 124 (SYNT_REALTIME_BARS); conId and tradingClass from 68;
    # keepUpToDate from 124, chartOptions from 70 (LINKING). No BAG legs: we never send BAG.
    c = r.contract
    return [
        r.req_id, *_contract_fields(c), c.include_expired, r.end_date_time, r.bar_size, r.duration,
        r.use_rth, r.what_to_show, r.format_date, r.keep_up_to_date, tag_values(r.chart_options),
    ]  # fmt: skip


def _req_head_timestamp(r: ReqHeadTimestamp, v: int) -> Sequence[object]:
    c = r.contract
    return [r.req_id, *_contract_fields(c), c.include_expired, r.use_rth, r.what_to_show, r.format_date]


def _req_historical_ticks(r: ReqHistoricalTicks, v: int) -> Sequence[object]:
    c = r.contract
    return [
        r.req_id, *_contract_fields(c), c.include_expired, r.start_date_time, r.end_date_time,
        r.number_of_ticks, r.what_to_show, r.use_rth, r.ignore_size, tag_values(r.misc_options),
    ]  # fmt: skip


def _req_sec_def_opt_params(r: ReqSecDefOptParams, v: int) -> Sequence[object]:
    return [r.req_id, r.underlying_symbol, r.fut_fop_exchange, r.underlying_sec_type, r.underlying_con_id]


ENCODERS: dict[type, tuple[Out, Callable[..., Sequence[object]]]] = {
    StartApi: (Out.START_API, _start_api),
    ReqIds: (Out.REQ_IDS, _req_ids),
    ReqCurrentTime: (Out.REQ_CURRENT_TIME, _req_current_time),
    ReqMarketDataType: (Out.REQ_MARKET_DATA_TYPE, _req_market_data_type),
    ReqMktData: (Out.REQ_MKT_DATA, _req_mkt_data),
    CancelMktData: (Out.CANCEL_MKT_DATA, _cancel_mkt_data),
    ReqTickByTickData: (Out.REQ_TICK_BY_TICK_DATA, _req_tick_by_tick),
    CancelTickByTickData: (Out.CANCEL_TICK_BY_TICK_DATA, _cancel_tick_by_tick),
    ReqRealTimeBars: (Out.REQ_REAL_TIME_BARS, _req_real_time_bars),
    CancelRealTimeBars: (Out.CANCEL_REAL_TIME_BARS, _cancel_real_time_bars),
    ReqMktDepth: (Out.REQ_MKT_DEPTH, _req_mkt_depth),
    CancelMktDepth: (Out.CANCEL_MKT_DEPTH, _cancel_mkt_depth),
    ReqContractDetails: (Out.REQ_CONTRACT_DATA, _req_contract_details),
    ReqHistoricalData: (Out.REQ_HISTORICAL_DATA, _req_historical_data),
    CancelHistoricalData: (Out.CANCEL_HISTORICAL_DATA, lambda r, v: [1, r.req_id]),
    ReqHeadTimestamp: (Out.REQ_HEAD_TIMESTAMP, _req_head_timestamp),
    CancelHeadTimestamp: (Out.CANCEL_HEAD_TIMESTAMP, lambda r, v: [r.req_id]),  # no version field
    ReqHistoricalTicks: (Out.REQ_HISTORICAL_TICKS, _req_historical_ticks),
    ReqSecDefOptParams: (Out.REQ_SEC_DEF_OPT_PARAMS, _req_sec_def_opt_params),
    ReqMatchingSymbols: (Out.REQ_MATCHING_SYMBOLS, lambda r, v: [r.req_id, r.pattern]),  # no version field
}


def message(msg_id: int, fields: Sequence[object], server_version: int) -> bytes:
    """A framed message: the id as a text field, or as 4 raw bytes from server 201."""
    body = encode_fields(fields)
    if server_version >= MIN_SERVER_VER_RAW_INT_MSG_ID:
        return frame(msg_id.to_bytes(4, "big") + body)
    return frame(b"%d\0" % msg_id + body)


def encode_request(request: Request, server_version: int) -> bytes:
    """The framed bytes of `request` for a server at `server_version`."""
    try:
        msg_id, encode = ENCODERS[type(request)]
    except KeyError:
        raise TypeError(f"{type(request).__name__} is not a request tws-bridge can send") from None
    return message(msg_id, encode(request, server_version), server_version)

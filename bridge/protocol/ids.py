"""IB's message ids and tick types, with IB's numbers, tabled in one place.

`Out` lists every request tws-bridge can send. It holds no order, account or FA message:
the bridge is read-only by construction, and `tests/test_readonly.py` keeps it so.
"""

from enum import IntEnum


class In(IntEnum):
    """Messages from TWS (the server side)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERROR = 4
    OPEN_ORDER = 5
    ACCOUNT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCOUNT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MARKET_DEPTH = 12
    MARKET_DEPTH_L2 = 13
    MANAGED_ACCOUNTS = 15
    HISTORICAL_DATA = 17
    TICK_OPTION_COMPUTATION = 21
    TICK_GENERIC = 45
    TICK_STRING = 46
    TICK_EFP = 47
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCOUNT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI_END = 74
    SECURITY_DEFINITION_OPTION_PARAMETER = 75
    SECURITY_DEFINITION_OPTION_PARAMETER_END = 76
    SYMBOL_SAMPLES = 79
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    REROUTE_MKT_DATA_REQ = 91
    HISTORICAL_TICKS = 96
    HISTORICAL_TICKS_BID_ASK = 97
    HISTORICAL_TICKS_LAST = 98
    TICK_BY_TICK = 99
    COMPLETED_ORDERS_END = 102
    HISTORICAL_DATA_END = 108  # its own message from server 196 (HISTORICAL_DATA_END)
    CURRENT_TIME_IN_MILLIS = 109


class Out(IntEnum):
    """The requests tws-bridge sends. Market data, history and reference data only."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_MARKET_DATA_TYPE = 59
    START_API = 71
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_MATCHING_SYMBOLS = 81
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_HISTORICAL_TICKS = 96
    REQ_TICK_BY_TICK_DATA = 97
    CANCEL_TICK_BY_TICK_DATA = 98


class TickType(IntEnum):
    """Tick types of tickPrice/tickSize/tickString/tickGeneric (IB's TickTypeEnum)."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    BID_OPTION_COMPUTATION = 10
    ASK_OPTION_COMPUTATION = 11
    LAST_OPTION_COMPUTATION = 12
    MODEL_OPTION = 13
    LAST_TIMESTAMP = 45
    HALTED = 49
    RT_VOLUME = 48
    DELAYED_BID = 66
    DELAYED_ASK = 67
    DELAYED_LAST = 68
    DELAYED_BID_SIZE = 69
    DELAYED_ASK_SIZE = 70
    DELAYED_LAST_SIZE = 71
    DELAYED_HIGH = 72
    DELAYED_LOW = 73
    DELAYED_VOLUME = 74
    DELAYED_CLOSE = 75
    DELAYED_OPEN = 76
    DELAYED_MODEL_OPTION = 83
    LAST_REG_TIME = 85
    DELAYED_LAST_TIMESTAMP = 88
    NOT_SET = 2147483647


class TickByTickType(IntEnum):
    """The `tickType` of reqTickByTickData answers (numbers as in tickByTick)."""

    NONE = 0
    LAST = 1
    ALL_LAST = 2
    BID_ASK = 3
    MID_POINT = 4


class MarketDataType(IntEnum):
    """reqMarketDataType values."""

    LIVE = 1
    FROZEN = 2
    DELAYED = 3
    DELAYED_FROZEN = 4


# TWS pairs each price tick with the size tick it carries (tickPrice, "ver 2" size field).
SIZE_TICK_OF_PRICE_TICK: dict[int, int] = {
    TickType.BID: TickType.BID_SIZE,
    TickType.ASK: TickType.ASK_SIZE,
    TickType.LAST: TickType.LAST_SIZE,
    TickType.DELAYED_BID: TickType.DELAYED_BID_SIZE,
    TickType.DELAYED_ASK: TickType.DELAYED_ASK_SIZE,
    TickType.DELAYED_LAST: TickType.DELAYED_LAST_SIZE,
}

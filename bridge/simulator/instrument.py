"""One instrument of the simulator's market: its contract, how it trades, where its price starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.protocol.events import Contract


@dataclass(frozen=True)
class Instrument:
    """One tradable thing: its contract, how it trades, and where its price path starts."""

    contract: Contract
    long_name: str
    market_name: str
    min_tick: float
    valid_exchanges: str
    order_types: str
    time_zone_id: str
    start_price: float
    volatility: float  # standard deviation of one step, as a fraction of the price
    lot: float  # typical quote/trade size, in the instrument's units
    size_increment: float = 1.0
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    sec_ids: tuple[tuple[str, str], ...] = ()
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    contract_month: str = ""
    real_expiration_date: str = ""
    last_trade_time: str = ""
    bbo_exchange: str = "9c0001"
    hours: tuple[str, str] = ("0000", "2359")  # session open/close, local time
    depth_makers: tuple[str, ...] = field(default=())
    liquid: tuple[str, str] | None = None  # regular hours, when narrower than `hours`
    weekends: bool = False  # trades on Saturday and Sunday (crypto)
    quotes: bool = True  # has a bid and an ask (an index has neither)
    trades: bool = True  # prints trades and volume (IDEALPRO forex does not)
    implied_vol: float = 0.0  # annual: an option's model volatility, or its underlying's options'
    dividend_yield: float = 0.0

    @property
    def con_id(self) -> int:
        return self.contract.con_id

    @property
    def exchanges(self) -> frozenset[str]:
        return frozenset(self.valid_exchanges.split(","))

    def label(self) -> str:
        c = self.contract
        return c.local_symbol or c.symbol

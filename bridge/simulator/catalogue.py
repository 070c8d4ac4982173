"""The simulator's instruments, with the contract details TWS would give for them.

ConIds are the ones TWS uses for these instruments where they are stable (stocks, crypto,
forex); the future's is made up but shaped like a real one. Matching follows TWS: a conId
alone names an instrument; otherwise symbol + secType (+ exchange, currency, ...) must,
where given, agree, and an empty field matches anything (reqContractDetails then answers
with every match; market data needs exactly one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bridge.protocol.events import Contract, ContractDetails

# reqContractDetails answers list an order-type string this long for a stock; a shorter,
# still real-looking one is enough for clients that only store it.
_STK_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GTC,IOC,LIT,LMT,MIT,MKT,MOC,MOO,PEGMID,REL,STP,STPLMT,TRAIL,TRAILLIMIT,WHATIF"  # noqa: E501
_CRYPTO_ORDER_TYPES = "ALGO,DAY,IOC,LMT,MKT,STP,STPLMT,WHATIF"
_CASH_ORDER_TYPES = "ALGO,AVGCOST,DAY,GTC,IOC,LMT,MKT,REL,STP,STPLMT,TRAIL,WHATIF"
_FUT_ORDER_TYPES = "ALERT,DAY,GTC,IOC,LIT,LMT,MIT,MKT,MTL,STP,STPLMT,TRAIL,TRAILLIMIT,WHATIF"
_US_STOCK_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,PSX"


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

    @property
    def con_id(self) -> int:
        return self.contract.con_id

    @property
    def exchanges(self) -> frozenset[str]:
        return frozenset(self.valid_exchanges.split(","))

    def label(self) -> str:
        c = self.contract
        return c.local_symbol or c.symbol


def _stock(con_id: int, symbol: str, name: str, price: float, isin: str) -> Instrument:
    return Instrument(
        contract=Contract(symbol, "STK", "SMART", "USD", con_id, "NASDAQ", local_symbol=symbol, trading_class="NMS"),
        long_name=name, market_name="NMS", min_tick=0.01, valid_exchanges=_US_STOCK_EXCHANGES,
        order_types=_STK_ORDER_TYPES, time_zone_id="US/Eastern", start_price=price, volatility=0.0004, lot=100,
        industry="Technology", category="Computers" if symbol == "AAPL" else "Software",
        subcategory="Computers" if symbol == "AAPL" else "Applications Software", stock_type="COMMON",
        sec_ids=(("ISIN", isin),), hours=("0400", "2000"), depth_makers=("NASDAQ", "ARCA", "BATS", "IEX", "EDGX"),
    )  # fmt: skip


def _crypto(con_id: int, symbol: str, name: str, price: float, tick: float) -> Instrument:
    return Instrument(
        contract=Contract(symbol, "CRYPTO", "PAXOS", "USD", con_id, local_symbol=f"{symbol}.USD", trading_class=symbol),
        long_name=name, market_name=symbol, min_tick=tick, valid_exchanges="PAXOS", order_types=_CRYPTO_ORDER_TYPES,
        time_zone_id="US/Central", start_price=price, volatility=0.0003, lot=0.05, size_increment=0.0001,
        bbo_exchange="", depth_makers=("PAXOS",),
    )  # fmt: skip


def _forex() -> Instrument:
    # TWS names a currency pair by its base currency: symbol EUR, currency USD.
    return Instrument(
        contract=Contract("EUR", "CASH", "IDEALPRO", "USD", 12087792, local_symbol="EUR.USD", trading_class="EUR.USD"),
        long_name="European Monetary Union Euro", market_name="EUR.USD", min_tick=0.00005,
        valid_exchanges="IDEALPRO", order_types=_CASH_ORDER_TYPES, time_zone_id="US/Eastern", start_price=1.0842,
        volatility=0.00005, lot=1_000_000, bbo_exchange="", hours=("1715", "1700"), depth_makers=("IDEALPRO",),
    )  # fmt: skip


def _future() -> Instrument:
    # The December 2026 E-mini: localSymbol is root + month code + last digit of the year.
    return Instrument(
        contract=Contract(
            "ES", "FUT", "CME", "USD", 649180695, last_trade_date_or_contract_month="20261218", multiplier="50",
            local_symbol="ESZ6", trading_class="ES",
        ),
        long_name="E-mini S&P 500", market_name="ES", min_tick=0.25, valid_exchanges="CME,QBALGO",
        order_types=_FUT_ORDER_TYPES, time_zone_id="US/Central", start_price=5875.0, volatility=0.0002, lot=5,
        under_con_id=11004968, under_symbol="ES", under_sec_type="IND", contract_month="202612",
        real_expiration_date="20261218", last_trade_time="08:30", hours=("1700", "1600"), depth_makers=("CME",),
    )  # fmt: skip


CATALOGUE: tuple[Instrument, ...] = (
    _crypto(479624278, "BTC", "Bitcoin", 64250.0, 0.25),
    _crypto(495759171, "ETH", "Ethereum", 3150.0, 0.05),
    _stock(265598, "AAPL", "APPLE INC", 227.5, "US0378331005"),
    _stock(272093, "MSFT", "MICROSOFT CORP", 418.0, "US5949181045"),
    _forex(),
    _future(),
)

_BY_CON_ID = {inst.con_id: inst for inst in CATALOGUE}


def _agrees(wanted: str, have: str) -> bool:
    return not wanted or wanted.upper() == have.upper()


def _exchange_ok(wanted: str, inst: Instrument) -> bool:
    # TWS takes any exchange the instrument lists (SMART and the primary among them for stocks).
    return not wanted or wanted.upper() in inst.exchanges or wanted.upper() == inst.contract.primary_exchange


def _matches(wanted: Contract, inst: Instrument) -> bool:
    have = inst.contract
    return (
        _agrees(wanted.symbol, have.symbol)
        and _agrees(wanted.sec_type, have.sec_type)
        and _agrees(wanted.currency, have.currency)
        and _agrees(wanted.local_symbol, have.local_symbol)
        and _agrees(wanted.trading_class, have.trading_class)
        and _agrees(wanted.multiplier, have.multiplier)
        and _agrees(wanted.primary_exchange, have.primary_exchange)
        and have.last_trade_date_or_contract_month.startswith(wanted.last_trade_date_or_contract_month)
        and _exchange_ok(wanted.exchange, inst)
    )


def lookup(wanted: Contract) -> list[Instrument]:
    """Every instrument `wanted` describes. By conId when it has one, as TWS resolves it."""
    if wanted.con_id:
        inst = _BY_CON_ID.get(wanted.con_id)
        return [inst] if inst is not None and _exchange_ok(wanted.exchange, inst) else []
    if not wanted.symbol and not wanted.local_symbol:
        return []  # TWS will not search the whole universe
    return [inst for inst in CATALOGUE if _matches(wanted, inst)]


def _trading_hours(inst: Instrument, today: dt.date) -> str:
    """TWS's 'YYYYMMDD:HHMM-YYYYMMDD:HHMM;...' for this and the next few days."""
    start, end = inst.hours
    days = []
    for offset in range(4):
        day = today + dt.timedelta(days=offset)
        first = day - dt.timedelta(days=1) if end < start else day  # session opens the evening before
        days.append(f"{first:%Y%m%d}:{start}-{day:%Y%m%d}:{end}")
    return ";".join(days)


def details(inst: Instrument, req_id: int, exchange: str = "") -> ContractDetails:
    """The contractDetails answer for `inst`, on the exchange the request named (TWS echoes it)."""
    c = inst.contract
    if exchange:
        c = c._replace(exchange=exchange.upper())
    hours = _trading_hours(inst, dt.datetime.now(dt.UTC).date())
    n_exchanges = len(inst.valid_exchanges.split(","))
    size = inst.size_increment
    return ContractDetails(
        req_id=req_id, contract=c, market_name=inst.market_name, min_tick=inst.min_tick,
        order_types=inst.order_types, valid_exchanges=inst.valid_exchanges, price_magnifier=1,
        under_con_id=inst.under_con_id, long_name=inst.long_name, contract_month=inst.contract_month,
        industry=inst.industry, category=inst.category, subcategory=inst.subcategory,
        time_zone_id=inst.time_zone_id, trading_hours=hours, liquid_hours=hours, sec_id_list=inst.sec_ids,
        agg_group=1, under_symbol=inst.under_symbol, under_sec_type=inst.under_sec_type,
        market_rule_ids=",".join(["26"] * n_exchanges), real_expiration_date=inst.real_expiration_date,
        stock_type=inst.stock_type, min_size=size, size_increment=size,
        suggested_size_increment=100.0 if c.sec_type == "STK" else size,
        last_trade_date=inst.real_expiration_date, last_trade_time=inst.last_trade_time,
    )  # fmt: skip

"""The simulator's instruments, with the contract details TWS would give for them.

The instruments themselves come from the compact table in `table.py`. Matching follows TWS: a conId
alone names an instrument; otherwise symbol + secType (+ exchange, currency, ...) must,
where given, agree, and an empty field matches anything (reqContractDetails then answers
with every match; market data needs exactly one).
"""

from __future__ import annotations

import datetime as dt

from bridge.protocol.events import Contract, ContractDetails

from .instrument import Instrument
from .table import build

__all__ = ["CATALOGUE", "Instrument", "by_con_id", "details", "lookup", "matching_symbols", "trading_hours"]


CATALOGUE: tuple[Instrument, ...] = build(dt.datetime.now(dt.UTC).date())  # the futures listed today


_BY_CON_ID = {inst.con_id: inst for inst in CATALOGUE}


MAX_SYMBOL_SAMPLES = 16  # TWS answers reqMatchingSymbols with at most this many


def matching_symbols(pattern: str) -> list[tuple[Instrument, tuple[str, ...]]]:
    """reqMatchingSymbols: instruments whose symbol starts with `pattern` (exact first), then
    those whose name has it, each with the derivative types listed on it (OPT where the
    catalogue holds a chain). Futures and options are derivatives, not rows, as in TWS."""
    wanted = pattern.strip().upper()
    if not wanted:
        return []
    rows = [i for i in CATALOGUE if i.contract.sec_type not in ("FUT", "OPT")]
    by_symbol = [i for i in rows if i.contract.symbol.upper().startswith(wanted)]
    by_symbol.sort(key=lambda i: (i.contract.symbol.upper() != wanted, i.contract.symbol))
    by_name = [i for i in rows if wanted in i.long_name.upper() and i not in by_symbol]
    out = []
    for inst in (by_symbol + by_name)[:MAX_SYMBOL_SAMPLES]:
        derived = sorted({d.contract.sec_type for d in CATALOGUE if d.under_con_id == inst.con_id})
        out.append((inst, tuple(derived)))
    return out


def _agrees(wanted: str, have: str) -> bool:
    return not wanted or wanted.upper() == have.upper()


def _exchange_ok(wanted: str, inst: Instrument) -> bool:
    # TWS takes any exchange the instrument lists (SMART and the primary among them for stocks).
    return not wanted or wanted.upper() in inst.exchanges or wanted.upper() == inst.contract.primary_exchange


def _expiry_ok(wanted: str, inst: Instrument) -> bool:
    # TWS reads 'YYYYMM' as the contract month (CL 202703 stops trading in February) and
    # 'YYYYMMDD' as the last trading day.
    if len(wanted) == 6 and inst.contract_month:
        return wanted == inst.contract_month
    return inst.contract.last_trade_date_or_contract_month.startswith(wanted)


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
        and _expiry_ok(wanted.last_trade_date_or_contract_month, inst)
        and (not wanted.strike or wanted.strike == have.strike)
        and _agrees(wanted.right[:1], have.right)
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


def by_con_id(con_id: int) -> Instrument | None:
    return _BY_CON_ID.get(con_id)


def trading_hours(inst: Instrument, today: dt.date, liquid: bool = False) -> str:
    """TWS's 'YYYYMMDD:HHMM-YYYYMMDD:HHMM;...;YYYYMMDD:CLOSED' for this and the next days.

    A session that closes earlier in the day than it opens began the evening before (futures,
    forex); Saturdays and Sundays are closed except for crypto.
    """
    start, end = (inst.liquid or inst.hours) if liquid else inst.hours
    days = []
    for offset in range(7):
        day = today + dt.timedelta(days=offset)
        if day.weekday() >= 5 and not inst.weekends:
            days.append(f"{day:%Y%m%d}:CLOSED")
            continue
        first = day - dt.timedelta(days=1) if end < start else day
        days.append(f"{first:%Y%m%d}:{start}-{day:%Y%m%d}:{end}")
    return ";".join(days)


def details(inst: Instrument, req_id: int, exchange: str = "") -> ContractDetails:
    """The contractDetails answer for `inst`, on the exchange the request named (TWS echoes it)."""
    c = inst.contract
    if exchange:
        c = c._replace(exchange=exchange.upper())
    today = dt.datetime.now(dt.UTC).date()
    hours, liquid = trading_hours(inst, today), trading_hours(inst, today, liquid=True)
    n_exchanges = len(inst.valid_exchanges.split(","))
    size = inst.size_increment
    return ContractDetails(
        req_id=req_id, contract=c, market_name=inst.market_name, min_tick=inst.min_tick,
        order_types=inst.order_types, valid_exchanges=inst.valid_exchanges, price_magnifier=1,
        under_con_id=inst.under_con_id, long_name=inst.long_name, contract_month=inst.contract_month,
        industry=inst.industry, category=inst.category, subcategory=inst.subcategory,
        time_zone_id=inst.time_zone_id, trading_hours=hours, liquid_hours=liquid, sec_id_list=inst.sec_ids,
        agg_group=1, under_symbol=inst.under_symbol, under_sec_type=inst.under_sec_type,
        market_rule_ids=",".join(["26"] * n_exchanges), real_expiration_date=inst.real_expiration_date,
        stock_type=inst.stock_type, min_size=size, size_increment=size,
        suggested_size_increment=100.0 if c.sec_type == "STK" else size,
        last_trade_date=inst.real_expiration_date, last_trade_time=inst.last_trade_time,
    )  # fmt: skip

"""The simulator's market: a catalogue as wide as an account's, futures that roll with the date,
forex that only quotes, indices that only print a level, and `--list`.

Over TCP with our own protocol client; the official client's view of the same is in
test_sim_generic_ticks.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.wrapper import EWrapper

from bridge.protocol import Contract, TickType
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.simulator import CATALOGUE, SimulatorThread, lookup
from bridge.simulator.expiries import contract_months, option_expiries
from bridge.simulator.table import build

from .twsclient import Client, error_with, of

ROOT = Path(__file__).resolve().parent.parent
_client_ids = itertools.count(3000)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(rate=40, seed=11) as s:
        yield s


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[Client]:
    c = Client(sim.port, client_id=next(_client_ids))
    c.wait_for(error_with(2158))
    yield c
    c.close()


def keys(sec_type: str) -> set[str]:
    return {i.contract.local_symbol or i.contract.symbol for i in CATALOGUE if i.contract.sec_type == sec_type}


# --- what the catalogue holds ---------------------------------------------------------------------


def test_the_catalogue_holds_a_few_hundred_instruments_of_every_kind() -> None:
    kinds = Counter(i.contract.sec_type for i in CATALOGUE)
    assert 250 <= len(CATALOGUE) <= 450
    assert kinds["STK"] >= 200 and kinds["FUT"] >= 40 and kinds["OPT"] >= 20 and kinds["CASH"] >= 10
    assert keys("CRYPTO") == {"BTC.USD", "ETH.USD", "LTC.USD", "BCH.USD"}
    assert keys("IND") == {"SPX", "NDX", "VIX", "RUT"}
    assert {"EUR.USD", "GBP.USD", "USD.JPY", "AUD.USD", "USD.CAD", "USD.CHF"} <= keys("CASH")
    assert {"AAPL", "MSFT", "NVDA", "JPM", "XOM", "SPY", "QQQ", "IWM", "GLD"} <= keys("STK")
    roots = {i.contract.trading_class for i in CATALOGUE if i.contract.sec_type == "FUT"}
    assert {"ES", "NQ", "YM", "RTY", "CL", "GC", "SI", "NG", "ZB", "ZN", "6E"} <= roots
    assert len({i.con_id for i in CATALOGUE}) == len(CATALOGUE), "conIds are unique"


def test_the_instruments_tests_and_docs_name_keep_their_contract_ids() -> None:
    def con_id(**fields: object) -> int:
        (inst,) = lookup(Contract(**fields))  # type: ignore[arg-type]
        return inst.con_id

    assert con_id(symbol="AAPL", sec_type="STK") == 265598
    assert con_id(symbol="MSFT", sec_type="STK") == 272093
    assert con_id(symbol="BTC", sec_type="CRYPTO") == 479624278
    assert con_id(symbol="ETH", sec_type="CRYPTO") == 495759171
    assert con_id(symbol="EUR", sec_type="CASH", currency="USD") == 12087792
    assert con_id(local_symbol="ESZ6", sec_type="FUT") == 649180695


def test_stocks_carry_their_primary_exchange_and_trade_smart() -> None:
    stocks = [i for i in CATALOGUE if i.contract.sec_type == "STK"]
    assert {i.contract.primary_exchange for i in stocks} == {"NASDAQ", "NYSE", "ARCA"}
    assert all(i.contract.exchange == "SMART" and i.min_tick == 0.01 for i in stocks)
    by_symbol = {i.contract.symbol: i for i in stocks}
    assert by_symbol["JPM"].contract.primary_exchange == "NYSE"
    assert by_symbol["SPY"].contract.primary_exchange == "ARCA" and by_symbol["SPY"].stock_type == "ETF"
    assert (by_symbol["AAPL"].contract.trading_class, by_symbol["JPM"].contract.trading_class) == ("NMS", "JPM")


@pytest.mark.parametrize(
    ("root", "exchange", "multiplier", "min_tick"),
    [("ES", "CME", "50", 0.25), ("CL", "NYMEX", "1000", 0.01), ("GC", "COMEX", "100", 0.1),
     ("ZN", "CBOT", "1000", 1 / 64), ("6E", "CME", "125000", 0.00005)],
)  # fmt: skip
def test_futures_have_their_exchange_multiplier_and_tick(
    root: str, exchange: str, multiplier: str, min_tick: float
) -> None:
    futures = [i for i in CATALOGUE if i.contract.sec_type == "FUT" and i.contract.trading_class == root]
    assert len(futures) >= 3
    for inst in futures:
        c = inst.contract
        assert (c.exchange, c.multiplier, inst.min_tick) == (exchange, multiplier, min_tick)
        assert len(c.last_trade_date_or_contract_month) == 8 and inst.contract_month


def test_options_are_chains_of_calls_and_puts_on_spy_and_aapl() -> None:
    options = [i for i in CATALOGUE if i.contract.sec_type == "OPT"]
    assert {i.contract.symbol for i in options} == {"SPY", "AAPL"}
    spy = [i.contract for i in options if i.contract.symbol == "SPY"]
    assert {c.right for c in spy} == {"C", "P"} and len({c.strike for c in spy}) >= 5
    assert len({c.last_trade_date_or_contract_month for c in spy}) >= 2
    assert all(c.multiplier == "100" and c.exchange == "SMART" and len(c.local_symbol) == 21 for c in spy)
    (aapl,) = lookup(Contract("AAPL", "STK"))
    assert all(i.under_con_id == aapl.con_id for i in options if i.contract.symbol == "AAPL")


# --- futures roll with the date ---------------------------------------------------------------------


D = dt.date
# fmt: off
ROLLS = [
    # ES: third Fridays of Mar/Jun/Sep/Dec; the front trades through its last day, then rolls.
    ("equity", "HMUZ", D(2026, 12, 3), [("202612", D(2026, 12, 18)), ("202703", D(2027, 3, 19))]),
    ("equity", "HMUZ", D(2026, 12, 18), [("202612", D(2026, 12, 18)), ("202703", D(2027, 3, 19))]),
    ("equity", "HMUZ", D(2026, 12, 19), [("202703", D(2027, 3, 19)), ("202706", D(2027, 6, 18))]),
    ("equity", "HMUZ", D(2027, 7, 1), [("202709", D(2027, 9, 17)), ("202712", D(2027, 12, 17))]),
    # CL: every month, ending 3 business days before the 25th of the month before.
    ("crude", "FGHJKMNQUVXZ", D(2027, 1, 21), [("202703", D(2027, 2, 22)), ("202704", D(2027, 3, 22))]),
    ("crude", "FGHJKMNQUVXZ", D(2027, 2, 22), [("202703", D(2027, 2, 22)), ("202704", D(2027, 3, 22))]),
    # GC: the active months, ending the third last business day of the month.
    ("metals", "GJMQVZ", D(2027, 1, 5), [("202702", D(2027, 2, 24)), ("202704", D(2027, 4, 28))]),
    # ZN: 7 business days before the last business day; 6E: 2 business days before the 3rd Wednesday.
    ("treasuries", "HMUZ", D(2027, 3, 23), [("202706", D(2027, 6, 21)), ("202709", D(2027, 9, 21))]),
    ("currencies", "HMUZ", D(2027, 3, 15), [("202703", D(2027, 3, 15)), ("202706", D(2027, 6, 14))]),
]
# fmt: on


@pytest.mark.parametrize(("rule", "months", "today", "expected"), ROLLS)
def test_front_contracts_roll_by_date(
    rule: str, months: str, today: dt.date, expected: list[tuple[str, dt.date]]
) -> None:
    assert contract_months(rule, months, today, 2) == expected


def test_the_catalogue_built_on_another_day_lists_that_days_contracts_with_the_same_con_ids() -> None:
    def es(day: dt.date) -> dict[str, int]:
        return {i.contract.local_symbol: i.con_id for i in build(day) if i.contract.local_symbol.startswith("ES")}

    december, spring = es(dt.date(2026, 12, 3)), es(dt.date(2027, 3, 22))
    assert list(december) == ["ESZ6", "ESH7", "ESM7"]
    assert list(spring) == ["ESM7", "ESU7", "ESZ7", "ESZ6"]  # ESZ6 stays for the tests that name it
    assert spring["ESM7"] == december["ESM7"] and spring["ESZ6"] == december["ESZ6"] == 649180695
    later = build(dt.date(2027, 2, 23))
    cl = [i.contract.local_symbol for i in later if i.contract.sec_type == "FUT" and i.contract.symbol == "CL"]
    assert cl == ["CLJ7", "CLK7", "CLM7"]
    assert option_expiries(dt.date(2027, 1, 16), 2) == [dt.date(2027, 2, 19), dt.date(2027, 3, 19)]


# --- answers over TCP ------------------------------------------------------------------------------


def details(client: Client, req_id: int, wanted: Contract) -> list[ev.ContractDetails]:
    client.send(rq.ReqContractDetails(req_id, wanted))
    client.wait_for(of(ev.ContractDetailsEnd, req_id))
    found = [e for e in client.seen if isinstance(e, ev.ContractDetails) and e.req_id == req_id]
    client.seen.clear()
    return found


def test_contract_details_answer_every_listed_future_front_first(client: Client) -> None:
    found = details(client, 1, Contract("ES", "FUT", "CME", "USD"))
    expiries = [d.contract.last_trade_date_or_contract_month for d in found]
    assert len(found) >= 3 and expiries == sorted(expiries)
    assert all(d.under_symbol == "ES" and d.contract.multiplier == "50" for d in found)
    (cl,) = details(client, 2, Contract("CL", "FUT", "NYMEX", "USD", last_trade_date_or_contract_month="202703"))
    assert cl.contract.local_symbol == "CLH7" and cl.time_zone_id == "US/Central"


def test_contract_details_of_an_option_by_strike_right_and_expiry(client: Client) -> None:
    spy_call = next(i.contract for i in CATALOGUE if i.contract.symbol == "SPY" and i.contract.right == "C")
    expiry = spy_call.last_trade_date_or_contract_month
    wanted = Contract("SPY", "OPT", "SMART", "USD", last_trade_date_or_contract_month=expiry, strike=spy_call.strike,
                      right="CALL")  # fmt: skip
    (d,) = details(client, 3, wanted)
    assert (d.contract.con_id, d.contract.right, d.contract.multiplier) == (spy_call.con_id, "C", "100")
    assert d.contract.strike == spy_call.strike and d.under_symbol == "SPY" and d.min_tick == 0.01


def test_contract_details_of_stocks_give_regular_hours_inside_trading_hours(client: Client) -> None:
    (d,) = details(client, 4, Contract("JPM", "STK", "SMART", "USD"))
    assert d.contract.primary_exchange == "NYSE"
    sessions = [s for s in d.trading_hours.split(";") if "CLOSED" not in s]
    liquid = [s for s in d.liquid_hours.split(";") if "CLOSED" not in s]
    assert sessions[0].endswith("0400-" + sessions[0][:8] + ":2000")
    assert liquid[0].endswith("0930-" + liquid[0][:8] + ":1600")
    assert any("CLOSED" in s for s in d.trading_hours.split(";")), "weekends are closed"
    (btc,) = details(client, 5, Contract("LTC", "CRYPTO", "PAXOS", "USD"))
    assert "CLOSED" not in btc.trading_hours, "crypto trades every day"


def test_an_unknown_symbol_still_gets_error_200(client: Client) -> None:
    client.send(rq.ReqContractDetails(6, Contract("NOSUCH", "STK", "SMART", "USD")))
    assert client.wait_for(error_with(200, 6))
    client.send(rq.ReqMktData(7, Contract("ES", "FUT", "CME", "USD", last_trade_date_or_contract_month="209912")))
    assert client.wait_for(error_with(200, 7))


def tick_kinds(events: list[ev.Event], req_id: int) -> set[int]:
    return {e.tick_type for e in events if isinstance(e, ev.TickPrice | ev.TickSize | ev.TickString)
            and e.req_id == req_id}  # fmt: skip


def test_forex_quotes_without_trades_or_volume(client: Client) -> None:
    client.send(rq.ReqMktData(8, Contract("GBP", "CASH", "IDEALPRO", "USD")))
    events = client.collect(1.5)
    kinds = tick_kinds(events, 8)
    assert {TickType.BID, TickType.ASK, TickType.HIGH, TickType.LOW, TickType.CLOSE} <= kinds
    assert {TickType.BID_SIZE, TickType.ASK_SIZE} & kinds, "sizes move on their own too"
    assert not kinds & {TickType.LAST, TickType.LAST_SIZE, TickType.VOLUME, TickType.LAST_TIMESTAMP}
    bids = [e.price for e in events if isinstance(e, ev.TickPrice) and e.tick_type == TickType.BID]
    assert len(bids) > 5 and all(1.0 < b < 1.6 for b in bids)


def test_an_index_prints_its_level_without_quotes_or_volume(client: Client) -> None:
    client.send(rq.ReqMktData(9, Contract("SPX", "IND", "CBOE", "USD")))
    events = client.collect(1.0)
    kinds = tick_kinds(events, 9)
    assert {TickType.LAST, TickType.HIGH, TickType.LOW, TickType.CLOSE} <= kinds
    assert not kinds & {TickType.BID, TickType.ASK, TickType.VOLUME}
    levels = [e.price for e in events if isinstance(e, ev.TickPrice) and e.tick_type == TickType.LAST]
    assert len(levels) > 5 and all(4000 < x < 8000 for x in levels)


FRONT_GOLD = next(i.contract for i in CATALOGUE if i.contract.sec_type == "FUT" and i.contract.trading_class == "GC")


@pytest.mark.parametrize(
    ("wanted", "low", "high", "tick"),
    [(Contract("NVDA", "STK", "SMART", "USD"), 50, 500, 0.01),
     (Contract("LTC", "CRYPTO", "PAXOS", "USD"), 20, 400, 0.01),
     (Contract(con_id=FRONT_GOLD.con_id, exchange="COMEX"), 1500, 4000, 0.1)],
    ids=["stock", "crypto", "gold"],
)  # fmt: skip
def test_prices_stream_at_realistic_levels_on_the_tick_grid(
    client: Client, wanted: Contract, low: float, high: float, tick: float
) -> None:
    req_id = 10 + len(wanted.symbol)
    client.send(rq.ReqMktData(req_id, wanted))
    events = client.collect(1.0)
    prices = [e.price for e in events if isinstance(e, ev.TickPrice) and e.req_id == req_id and e.tick_type in (1, 2)]
    assert len(prices) > 5
    assert all(low < p < high and abs(p / tick - round(p / tick)) < 1e-6 for p in prices)


# --- the command line ----------------------------------------------------------------------------


def test_list_prints_one_line_per_instrument_and_exits() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bridge.simulator", "--list"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = ["INSTRUMENT", "SYMBOL", "SECTYPE", "EXCHANGE", "PRIMARY", "CURRENCY", "CONID", "LOCALSYMBOL", "PRICE"]
    assert lines[0].split() == header
    assert len(lines) == len(CATALOGUE) + 1
    rows = {line.split()[6]: line.split() for line in lines[1:]}
    assert rows["265598"][:6] == ["AAPL.STK.SMART.USD", "AAPL", "STK", "SMART", "NASDAQ", "USD"]
    assert float(rows["265598"][-1]) == 227.5
    assert rows["12087792"][:7] == ["EUR.CASH.IDEALPRO.USD", "EUR", "CASH", "IDEALPRO", "-", "USD", "12087792"]
    assert rows["649180695"][0] == "ES.FUT.CME.USD.20261218" and rows["649180695"][7] == "ESZ6"
    assert {"SPX", "BTC.USD", "USD.JPY"} <= {r[7] for r in rows.values()}


# --- reqMatchingSymbols, as the official client reads it -------------------------------------------


class SymbolSearch(EWrapper, EClient):
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.answers: dict[int, list[Any]] = {}

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def symbolSamples(self, reqId: int, contractDescriptions: list[Any]) -> None:
        self.answers[reqId] = contractDescriptions


def test_matching_symbols_agree_with_the_catalogue(sim: SimulatorThread, client: Client) -> None:
    app = SymbolSearch()
    app.connect("127.0.0.1", sim.port, clientId=next(_client_ids))
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        assert app.ready.wait(5)
        for req_id, pattern in enumerate(["spy", "EUR", "bitcoin", "NOSUCHTHING"], start=1):
            app.reqMatchingSymbols(req_id, pattern)
        deadline = time.monotonic() + 5
        while len(app.answers) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        spy = app.answers[1][0]
        assert (spy.contract.symbol, spy.contract.secType, spy.contract.primaryExchange) == ("SPY", "STK", "ARCA")
        assert spy.derivativeSecTypes == ["OPT"] and spy.contract.description == "SPDR S&P 500 ETF TRUST"
        assert {d.contract.secType for d in app.answers[2]} == {"CASH"} and len(app.answers[2]) >= 3
        assert {d.contract.symbol for d in app.answers[3]} == {"BTC", "BCH"}  # by name: Bitcoin, Bitcoin Cash
        assert app.answers[4] == []
        for req_id, d in enumerate(app.answers[1] + app.answers[2], start=20):
            (found,) = details(client, req_id, Contract(con_id=d.contract.conId))
            assert found.contract.symbol == d.contract.symbol and found.contract.sec_type == d.contract.secType
    finally:
        app.disconnect()
        reader.join(5)

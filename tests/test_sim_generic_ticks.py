"""Generic tick lists against the running simulator: each id produces the ticks it names, read
by the official `ibapi` client and by our own decoder; option greeks; the lists TWS refuses.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import IB, Option, Stock
from ibapi.client import EClient
from ibapi.contract import Contract as IbContract
from ibapi.wrapper import EWrapper

from bridge.protocol import Contract
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.simulator import CATALOGUE, Simulator, SimulatorThread
from bridge.simulator.generic import LEGAL_IDS, validate

from .harness import until
from .twsclient import Client, error_with

_ids = itertools.count(4000)
_req_ids = itertools.count(1)

SPY_CALL = next(i.contract for i in CATALOGUE if i.contract.symbol == "SPY" and i.contract.right == "C")
SPY_PUT = next(i.contract for i in CATALOGUE if i.contract.symbol == "SPY" and i.contract.right == "P")
AAPL = Contract("AAPL", "STK", "SMART", "USD")
SPY = Contract("SPY", "STK", "SMART", "USD")
BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD")
EUR = Contract("EUR", "CASH", "IDEALPRO", "USD")
ES_FRONT = next(i.contract for i in CATALOGUE if i.contract.sec_type == "FUT" and i.contract.symbol == "ES")


class Recorder(EWrapper, EClient):
    """The official client, keeping (callback, reqId, tickType, value) of every tick."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.ticks: list[tuple[str, int, int, Any]] = []
        self.errors: list[tuple[int, int, str]] = []

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def error(
        self, reqId: int, errorTime: int, errorCode: int, errorString: str, advancedOrderRejectJson: str = ""
    ) -> None:
        self.errors.append((reqId, errorCode, errorString))

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        self.ticks.append(("price", reqId, tickType, price))

    def tickSize(self, reqId: int, tickType: int, size: Any) -> None:
        self.ticks.append(("size", reqId, tickType, size))

    def tickString(self, reqId: int, tickType: int, value: str) -> None:
        self.ticks.append(("string", reqId, tickType, value))

    def tickGeneric(self, reqId: int, tickType: int, value: float) -> None:
        self.ticks.append(("generic", reqId, tickType, value))

    def tickOptionComputation(self, reqId: int, tickType: int, tickAttrib: int, impliedVol: float, delta: float,
                              optPrice: float, pvDividend: float, gamma: float, vega: float, theta: float,
                              undPrice: float) -> None:  # fmt: skip
        values = dict(iv=impliedVol, delta=delta, price=optPrice, gamma=gamma, vega=vega, theta=theta, und=undPrice)
        self.ticks.append(("option", reqId, tickType, values))

    def kinds(self, req_id: int) -> set[tuple[str, int]]:
        return {(kind, tick) for kind, r, tick, _ in list(self.ticks) if r == req_id}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(rate=40, seed=5) as s:
        yield s


@pytest.fixture
def official(sim: SimulatorThread) -> Iterator[Recorder]:
    app = Recorder()
    app.connect("127.0.0.1", sim.port, clientId=next(_ids))
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    assert app.ready.wait(5)
    yield app
    app.disconnect()
    reader.join(5)


@pytest.fixture
def ours(sim: SimulatorThread) -> Iterator[Client]:
    c = Client(sim.port, client_id=next(_ids))
    c.wait_for(error_with(2158))
    yield c
    c.close()


def ib(c: Contract) -> IbContract:
    out = IbContract()
    out.conId, out.symbol, out.secType, out.exchange, out.currency = (
        c.con_id,
        c.symbol,
        c.sec_type,
        c.exchange,
        c.currency,
    )
    out.lastTradeDateOrContractMonth, out.right, out.multiplier = (
        c.last_trade_date_or_contract_month,
        c.right,
        c.multiplier,
    )
    out.strike = c.strike or 0.0
    return out


_EVENT_KIND = {ev.TickPrice: "price", ev.TickSize: "size", ev.TickString: "string", ev.TickGeneric: "generic",
               ev.TickOptionComputation: "option"}  # fmt: skip


def our_kinds(client: Client, req_id: int, expected: set[tuple[str, int]], timeout: float = 8.0) -> set:
    seen: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    while not expected <= seen and time.monotonic() < deadline:
        for e in client.collect(0.2):
            kind = _EVENT_KIND.get(type(e))
            if kind is not None and e.req_id == req_id:  # type: ignore[union-attr]
                seen.add((kind, e.tick_type))  # type: ignore[union-attr]
    return seen


CASES = [
    ("233", AAPL, {("string", 48)}),
    ("236", AAPL, {("generic", 46), ("size", 89)}),
    ("165", AAPL, {("price", 15), ("price", 16), ("price", 17), ("price", 18), ("price", 19), ("price", 20),
                   ("size", 21)}),
    ("225", AAPL, {("size", 34), ("price", 35), ("size", 36), ("size", 61)}),
    ("293,294,295", BTC, {("generic", 54), ("generic", 55), ("generic", 56)}),
    ("233,293", ES_FRONT, {("string", 48), ("generic", 54)}),
    ("411", EUR, {("generic", 58)}),
    ("456", SPY, {("string", 59)}),
    ("100,101,105,106", AAPL, {("size", 29), ("size", 30), ("size", 27), ("size", 28), ("size", 87), ("generic", 24)}),
    ("100,101,106", SPY_CALL, {("size", 29), ("size", 27), ("generic", 24)}),
    ("100,101", SPY_PUT, {("size", 30), ("size", 28)}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("generic", "contract", "expected"), CASES, ids=[f"{g}-{c.symbol}{c.right}" for g, c, _ in CASES]
)
def test_each_generic_tick_produces_its_ticks_for_both_clients(
    official: Recorder, ours: Client, generic: str, contract: Contract, expected: set[tuple[str, int]]
) -> None:
    req_id = next(_req_ids)
    official.reqMktData(req_id, ib(contract), generic, False, False, [])
    ours.send(rq.ReqMktData(req_id, contract, generic))
    assert until(lambda: expected <= official.kinds(req_id)), f"ibapi saw {sorted(official.kinds(req_id))}"
    assert expected <= our_kinds(ours, req_id, expected)
    assert [e for e in official.errors if e[0] == req_id] == []
    official.cancelMktData(req_id)
    ours.send(rq.CancelMktData(req_id))


def test_the_values_read_as_tws_writes_them(official: Recorder) -> None:
    official.reqMktData(90, ib(AAPL), "233,236,456,165", False, False, [])
    official.reqMktData(91, ib(BTC), "293", False, False, [])

    def value(req_id: int, tick: int) -> Any:
        return next(v for _, r, t, v in reversed(official.ticks) if r == req_id and t == tick)

    assert until(lambda: {48, 46, 59, 19, 20} <= {t for _, r, t, _ in official.ticks if r == 90})
    price, size, millis, volume, vwap, single = value(90, 48).split(";")
    assert 100 < float(price) < 400 and float(size) > 0 and float(volume) >= float(size)
    assert abs(int(millis) / 1000 - time.time()) < 30 and 100 < float(vwap) < 400 and single == "true"
    assert value(90, 46) == 3.0  # above 2.5: shortable
    past, coming, next_date, amount = value(90, 59).split(",")
    assert float(past) > 0 and float(coming) > 0 and len(next_date) == 8 and float(amount) > 0
    assert value(90, 19) <= value(90, 20)  # 52-week low below its high
    assert until(lambda: len([1 for _, r, t, _ in official.ticks if r == 91 and t == 54]) >= 3)
    counts = [v for _, r, t, v in official.ticks if r == 91 and t == 54]
    assert counts == sorted(counts) and counts[-1] > counts[0], "the trade count grows with every trade"


@pytest.mark.parametrize(("contract", "sign"), [(SPY_CALL, 1), (SPY_PUT, -1)], ids=["call", "put"])
def test_options_stream_greeks_the_official_client_decodes(official: Recorder, contract: Contract, sign: int) -> None:
    req_id = 100 + sign
    official.reqMktData(req_id, ib(contract), "", False, False, [])
    assert until(lambda: {("option", t) for t in (10, 11, 12, 13)} <= official.kinds(req_id))

    def models() -> list[dict[str, float]]:
        return [v for kind, r, t, v in list(official.ticks) if kind == "option" and r == req_id and t == 13]

    assert until(lambda: len(models()) >= 3), "the model greeks update with the market"
    for m in models():
        assert 0 < m["iv"] < 1 and 0 < sign * m["delta"] < 1 and m["gamma"] > 0 and m["vega"] > 0
        assert m["theta"] < 0 and m["price"] > 0 and 400 < m["und"] < 800
    bids = [v for kind, r, t, v in official.ticks if kind == "option" and r == req_id and t == 10]
    asks = [v for kind, r, t, v in official.ticks if kind == "option" and r == req_id and t == 11]
    assert bids[-1]["price"] <= asks[-1]["price"] and bids[-1]["iv"] <= asks[-1]["iv"]
    prices = [v for kind, r, t, v in official.ticks if kind == "price" and r == req_id and t in (1, 2)]
    assert prices and all(0 <= p < 100 for p in prices)


def test_our_decoder_reads_the_greeks(ours: Client) -> None:
    ours.send(rq.ReqMktData(110, SPY_CALL))
    computations = [e for e in ours.collect(1.0) if isinstance(e, ev.TickOptionComputation) and e.req_id == 110]
    assert {10, 11, 12, 13} <= {e.tick_type for e in computations}
    model = [e for e in computations if e.tick_type == 13][-1]
    assert model.implied_vol and model.delta and 0 < model.delta < 1 and model.und_price and model.und_price > 400


@pytest.mark.parametrize("generic", ["999", "104", "233,abc", "233,7777"])
def test_a_list_tws_refuses_gets_error_321_and_no_data(official: Recorder, ours: Client, generic: str) -> None:
    req_id = next(_req_ids) + 500
    official.reqMktData(req_id, ib(AAPL), generic, False, False, [])
    ours.send(rq.ReqMktData(req_id, AAPL, generic))
    assert until(lambda: any(e[0] == req_id and e[1] == 321 for e in official.errors))
    err = ours.wait_for(error_with(321, req_id))
    assert isinstance(err, ev.Error)
    assert err.message.startswith(f"Error validating request.-'bW' : cause - Incorrect generic tick list of {generic}.")
    assert "Legal ones for (STK) are: 100(Option Volume),101(Option Open Interest)" in err.message
    time.sleep(0.3)
    assert official.kinds(req_id) == set() and not any(getattr(e, "req_id", None) == req_id for e in ours.collect(0.2))


def test_a_snapshot_with_generic_ticks_is_refused(ours: Client) -> None:
    ours.send(rq.ReqMktData(120, AAPL, "233", snapshot=True))
    err = ours.wait_for(error_with(321, 120))
    assert isinstance(err, ev.Error) and "Snapshot market data subscription is not applicable to generic ticks" in (
        err.message
    )


@given(st.lists(st.sampled_from(sorted(LEGAL_IDS)), max_size=8), st.integers(min_value=0, max_value=100_000))
def test_a_list_is_refused_exactly_when_it_holds_an_id_tws_does_not_know(legal: list[int], other: int) -> None:
    ids, refused = validate(",".join(map(str, legal)), "STK")
    assert refused is None and ids == frozenset(legal)
    ids, refused = validate(",".join(map(str, [*legal, other])), "FUT")
    assert (refused is None) == (other in LEGAL_IDS)
    if refused is not None:
        assert refused[0] == 321 and "Legal ones for (FUT)" in refused[1]


def test_ib_async_fills_its_ticker_from_the_generic_ticks_and_greeks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ib_async")

    async def main() -> None:
        sim = Simulator(rate=40, seed=9)
        await sim.start()
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
            aapl = Stock("AAPL", "SMART", "USD")
            call = Option("SPY", SPY_CALL.last_trade_date_or_contract_month, SPY_CALL.strike, "C", "SMART")
            await ib.qualifyContractsAsync(aapl, call)
            assert call.conId == SPY_CALL.con_id and call.localSymbol == SPY_CALL.local_symbol
            stock = ib.reqMktData(aapl, "100,101,105,106,165,225,233,236,293,294,295,411,456")
            option = ib.reqMktData(call)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (stock.tradeCount and option.modelGreeks and stock.vwap):
                await asyncio.sleep(0.05)
            assert stock.shortable == 3.0 and stock.shortableShares > 0 and stock.rtHistVolatility > 0
            assert 0 < stock.low52week < stock.low <= stock.high < stock.high52week and stock.avVolume > 0
            assert stock.dividends is not None and stock.dividends.past12Months > 0
            assert stock.callOpenInterest > 0 and stock.putVolume >= 0 and stock.impliedVolatility > 0
            assert stock.auctionPrice > 0 and stock.tradeCount > 0 and stock.vwap > 0
            greeks = option.modelGreeks
            assert greeks is not None and 0 < greeks.delta < 1 and greeks.impliedVol > 0 and greeks.undPrice > 400
            assert option.bid < option.ask
        finally:
            ib.disconnect()
            await sim.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    problems = [r.getMessage() for r in caplog.records if r.name.startswith("ib_async") and r.levelno >= logging.ERROR]
    assert problems == []


def test_the_official_client_sees_forex_quotes_without_trades_or_volume(official: Recorder) -> None:
    official.reqMktData(130, ib(Contract("USD", "CASH", "IDEALPRO", "JPY")), "", False, False, [])
    assert until(lambda: len([1 for k, r, t, _ in official.ticks if r == 130 and (k, t) == ("price", 1)]) >= 5)
    kinds = official.kinds(130)
    assert {("price", 1), ("price", 2), ("size", 0), ("size", 3), ("price", 9)} <= kinds
    assert not kinds & {("price", 4), ("size", 5), ("size", 8), ("string", 45)}

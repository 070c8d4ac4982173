"""Real IB clients against the simulator: the official `ibapi` and `ib_async` must take it for TWS.

Both are test-only oracles: they decode with their own code, so a layout we get wrong shows
up here as a crash, a timeout or a garbled value in their callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, Crypto, Future, Stock
from ibapi.client import EClient
from ibapi.contract import Contract as IbContract
from ibapi.order import Order
from ibapi.wrapper import EWrapper

from bridge.simulator import Simulator, SimulatorThread
from tests.harness import until

# --- the official client --------------------------------------------------------------------------


class OfficialApp(EWrapper, EClient):
    """EClient + EWrapper as IB's samples build them, recording what the callbacks see."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.next_id = threading.Event()
        self.accounts = ""
        self.errors: list[tuple[int, int, str]] = []
        self.prices: list[tuple[int, int, float]] = []
        self.sizes: list[tuple[int, int, Decimal]] = []
        self.details: list[Any] = []
        self.details_end = threading.Event()
        self.millis: list[int] = []
        self.closed = threading.Event()

    def connectionClosed(self) -> None:
        self.closed.set()

    def nextValidId(self, orderId: int) -> None:
        self.next_id.set()

    def managedAccounts(self, accountsList: str) -> None:
        self.accounts = accountsList

    def error(
        self, reqId: int, errorTime: int, errorCode: int, errorString: str, advancedOrderRejectJson: str = ""
    ) -> None:
        self.errors.append((reqId, errorCode, errorString))

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        self.prices.append((reqId, tickType, price))

    def tickSize(self, reqId: int, tickType: int, size: Decimal) -> None:
        self.sizes.append((reqId, tickType, size))

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:
        self.details.append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self.details_end.set()

    def currentTimeInMillis(self, timeInMillis: int) -> None:
        self.millis.append(timeInMillis)


@pytest.fixture
def official() -> Iterator[Callable[[int, int], OfficialApp]]:
    apps: list[tuple[OfficialApp, threading.Thread]] = []

    def connect(port: int, client_id: int) -> OfficialApp:
        app = OfficialApp()
        app.connect("127.0.0.1", port, clientId=client_id)
        reader = threading.Thread(target=app.run, name="ibapi-reader", daemon=True)
        reader.start()
        apps.append((app, reader))
        return app

    yield connect
    for app, reader in apps:
        app.disconnect()
        reader.join(5)


def ib_contract(symbol: str, sec_type: str, exchange: str, currency: str = "USD") -> IbContract:
    c = IbContract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, sec_type, exchange, currency
    return c


@pytest.mark.parametrize("version", [176, 200])
def test_official_client_connects_and_streams_btc(official: Callable[[int, int], OfficialApp], version: int) -> None:
    with SimulatorThread(server_version=version, rate=40) as sim:
        app = official(sim.port, 11)
        assert app.next_id.wait(5), "nextValidId never came"
        assert app.serverVersion() == version
        assert until(lambda: app.accounts == "DU1234567")
        assert until(lambda: {2104, 2106, 2158} <= {code for _, code, _ in app.errors})

        app.reqMktData(1, ib_contract("BTC", "CRYPTO", "PAXOS"), "", False, False, [])
        assert until(lambda: {1, 2, 4} <= {t for r, t, _ in app.prices if r == 1}), "no bid/ask/last"
        assert until(lambda: len(app.prices) > 20), "the ticks do not stream"
        btc = [p for r, t, p in app.prices if r == 1 and t in (1, 2, 4)]
        assert all(10_000 < p < 1_000_000 for p in btc)
        assert any(t == 0 and s > 0 for _, t, s in app.sizes), "tickPrice carries the bid size"

        app.reqContractDetails(2, ib_contract("ES", "FUT", "CME"))
        assert app.details_end.wait(5)
        es = app.details[0]
        assert (es.contract.conId, es.contract.multiplier, es.contract.localSymbol) == (649180695, "50", "ESZ6")
        assert es.contract.lastTradeDateOrContractMonth == "20261218" and es.longName == "E-mini S&P 500"

        app.placeOrder(7, ib_contract("AAPL", "STK", "SMART"), Order())
        assert until(lambda: any(code == 321 and req == 7 for req, code, _ in app.errors)), "order not refused"
        app.cancelMktData(1)
        unexpected = [e for e in app.errors if e[1] not in (2104, 2106, 2158, 321)]
        assert unexpected == []
    assert sim.request_names()[0] == (11, "StartApi")


def test_official_client_gets_current_time_in_millis_at_version_200(
    official: Callable[[int, int], OfficialApp],
) -> None:
    with SimulatorThread() as sim:
        app = official(sim.port, 12)
        assert app.next_id.wait(5)
        app.reqCurrentTimeInMillis()
        assert until(lambda: app.millis)
        assert abs(app.millis[0] / 1000 - time.time()) < 5


def test_official_client_that_floods_gets_error_100_and_is_disconnected(
    official: Callable[[int, int], OfficialApp],
) -> None:
    with SimulatorThread() as sim:
        app = official(sim.port, 13)
        assert app.next_id.wait(5)
        deadline = time.monotonic() + 15
        while not app.closed.is_set() and time.monotonic() < deadline:
            for _ in range(100):  # 100 requests every 0.2 s: ten times TWS's limit
                if app.isConnected():
                    app.reqCurrentTime()
            time.sleep(0.2)
        assert app.closed.wait(5), "a client that keeps flooding is disconnected"
        warnings = [text for _, code, text in app.errors if code == 100]
        assert warnings and warnings[0].startswith("Max rate of messages per second has been exceeded:max=50 rec=")
        assert len(warnings) == 3, "warned twice, disconnected at the third"


# --- ib_async -----------------------------------------------------------------------------------


def run(coro_fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


def ib_async_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What ib_async logged as an error, or any time-out it noticed."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("ib_async") and (r.levelno >= logging.ERROR or "timed out" in r.getMessage())
    ]


@pytest.mark.parametrize("version", [157, 200])
@pytest.mark.parametrize("client_id", [0, 5], ids=["master-client", "client"])
def test_ib_async_connects_cleanly(caplog: pytest.LogCaptureFixture, version: int, client_id: int) -> None:
    caplog.set_level(logging.INFO, logger="ib_async")

    async def main() -> None:
        sim = Simulator(server_version=version)
        await sim.start()
        ib = IB()
        try:
            started = time.monotonic()
            await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
            assert time.monotonic() - started < 2, "the start-up requests all got their End message"
            assert ib.isConnected() and ib.client.serverVersion() == min(version, 178)
            assert ib.managedAccounts() == ["DU1234567"]
            assert ib.positions() == [] and ib.openTrades() == [] and ib.fills() == []
        finally:
            ib.disconnect()
            await sim.stop()

    run(main)
    assert ib_async_problems(caplog) == []
    assert "Synchronization complete" in caplog.text


def test_ib_async_rides_through_1100_and_1102() -> None:
    async def main() -> None:
        sim = Simulator(rate=40, seed=3)
        await sim.start()
        ib = IB()
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
        try:
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
            btc = Crypto("BTC", "PAXOS", "USD")
            await ib.qualifyContractsAsync(btc)
            ticker = ib.reqMktData(btc)
            updates = 0

            def count(_: Any) -> None:
                nonlocal updates
                updates += 1

            ticker.updateEvent += count
            await asyncio.sleep(0.5)
            sim.inject("connectivity", seconds=1.0)
            await asyncio.sleep(0.3)
            paused_at = updates
            await asyncio.sleep(0.5)
            assert updates == paused_at, "no data while connectivity is lost"
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and updates < paused_at + 5:
                await asyncio.sleep(0.05)
            assert updates >= paused_at + 5, "the same ticker streams again after 1102"
            assert ib.isConnected()
            assert [c for c in codes if c in (1100, 1101, 1102)] == [1100, 1102]
        finally:
            ib.disconnect()
            await sim.stop()

    run(main)


def test_ib_async_qualifies_and_streams(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ib_async")

    async def main() -> None:
        sim = Simulator(rate=40, bar_seconds=0.2, seed=3)
        await sim.start()
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
            aapl, btc, es = Stock("AAPL", "SMART", "USD"), Crypto("BTC", "PAXOS", "USD"), Future("ES", "202612", "CME")
            await ib.qualifyContractsAsync(aapl, btc, es)
            assert (aapl.conId, aapl.primaryExchange) == (265598, "NASDAQ")
            assert (btc.conId, btc.localSymbol) == (479624278, "BTC.USD")
            assert (es.conId, es.multiplier, es.localSymbol) == (649180695, "50", "ESZ6")

            by_tick: list[Any] = []
            ticker = ib.reqMktData(btc)
            tbt = ib.reqTickByTickData(btc, "BidAsk")
            ib.pendingTickersEvent += lambda tickers: by_tick.extend(t for tk in tickers for t in tk.tickByTicks)
            bars = ib.reqRealTimeBars(btc, 5, "MIDPOINT", False)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (len(bars) >= 2 and len(by_tick) >= 5):
                await asyncio.sleep(0.05)
            assert all(math.isfinite(x) and x > 1000 for x in (ticker.bid, ticker.ask, ticker.last))
            assert ticker.bid < ticker.ask and ticker.bidSize > 0 and ticker.volume > 0
            assert ticker.minTick == 0.25 and ticker.lastTimestamp is not None
            assert tbt is ticker
            assert len(by_tick) >= 5 and all(t.bidPrice < t.askPrice for t in by_tick)
            assert len(bars) >= 2 and all(b.low <= b.close <= b.high for b in bars)
            ib.cancelMktData(btc)
            ib.cancelTickByTickData(btc, "BidAsk")
            ib.cancelRealTimeBars(bars)
            await asyncio.sleep(0.1)
        finally:
            ib.disconnect()
            await sim.stop()
        names = [type(r).__name__ for _, r in sim.requests]
        assert {"CancelMktData", "CancelTickByTickData", "CancelRealTimeBars"} <= set(names)

    run(main)
    assert ib_async_problems(caplog) == []

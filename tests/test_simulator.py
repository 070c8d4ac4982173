"""The TWS simulator, driven by our own protocol client over real TCP sockets.

Each test talks to a simulator on 127.0.0.1 with an ephemeral port, the way the bridge will.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.protocol import ClientConnection, Contract, TickType, frame
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.requests import message
from bridge.simulator import Market, SimulatorThread, lookup

from .twsclient import Client, error_with, of

BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD")
AAPL = Contract("AAPL", "STK", "SMART", "USD")
UNKNOWN = Contract("NOPE", "STK", "SMART", "USD")
LIVE_TYPES = {TickType.BID, TickType.ASK, TickType.LAST, TickType.BID_SIZE, TickType.ASK_SIZE, TickType.LAST_SIZE}
ROOT = Path(__file__).resolve().parent.parent
_client_ids = itertools.count(1000)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(rate=40, seed=7, bar_seconds=0.2) as s:
        yield s


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[Client]:
    # A client id of its own per test: the shared simulator refuses ids still in use.
    c = Client(sim.port, client_id=next(_client_ids))
    c.wait_for(error_with(2158))
    yield c
    c.close()


# --- handshake and connect sequence ------------------------------------------------------------


@pytest.mark.parametrize("version", [157, 176, 200])
def test_speaks_each_server_version_a_client_may_negotiate(version: int) -> None:
    with SimulatorThread(server_version=version, rate=40) as sim:
        c = Client(sim.port, client_id=1)
        try:
            assert c.version == version
            assert c.wait_for(of(ev.ManagedAccounts)) == ev.ManagedAccounts(("DU1234567",))
            # A contract-details answer and an error decode in this version's layout.
            c.send(rq.ReqContractDetails(5, AAPL))
            d = c.wait_for(of(ev.ContractDetails, 5))
            assert isinstance(d, ev.ContractDetails)
            assert (d.contract.con_id, d.contract.primary_exchange, d.long_name) == (265598, "NASDAQ", "APPLE INC")
            assert d.min_tick == 0.01
            assert c.wait_for(of(ev.ContractDetailsEnd, 5))
            c.send(rq.ReqMktData(6, UNKNOWN))
            err = c.wait_for(error_with(200, 6))
            assert isinstance(err, ev.Error)
            assert err.message == "No security definition has been found for the request"
            assert not any(isinstance(e, ev.MalformedMessage) for e in c.collect(0.05))
        finally:
            c.close()


def test_each_client_gets_the_version_it_negotiated() -> None:
    with SimulatorThread(server_version=200, rate=40) as sim:
        old, new = Client(sim.port, client_id=1, max_version=157), Client(sim.port, client_id=2, max_version=200)
        try:
            assert (old.version, new.version) == (157, 200)
            for c in (old, new):
                c.send(rq.ReqMktData(1, BTC))
                price = c.wait_for(of(ev.TickPrice, 1))
                assert isinstance(price, ev.TickPrice) and price.price > 1000
                assert not any(isinstance(e, ev.MalformedMessage | ev.Unhandled) for e in c.collect(0.1))
        finally:
            old.close()
            new.close()


def test_start_api_sends_accounts_next_id_and_farm_notices(sim: SimulatorThread) -> None:
    c = Client(sim.port, client_id=42)
    try:
        first = [c.wait_for(lambda e: not isinstance(e, ev.Connected)) for _ in range(5)]
        assert first[0] == ev.ManagedAccounts(("DU1234567",))
        assert isinstance(first[1], ev.NextValidId) and first[1].order_id > 0
        notices = [(e.req_id, e.code, e.message) for e in first[2:] if isinstance(e, ev.Error)]
        assert notices == [
            (-1, 2104, "Market data farm connection is OK:usfarm"),
            (-1, 2106, "HMDS data farm connection is OK:ushmds"),
            (-1, 2158, "Sec-def data farm connection is OK:secdefnj"),
        ]
        c.send(rq.ReqIds())
        assert isinstance(c.wait_for(of(ev.NextValidId)), ev.NextValidId)
        c.send(rq.ReqCurrentTime())
        now = c.wait_for(of(ev.CurrentTime))
        assert isinstance(now, ev.CurrentTime) and abs(now.time - time.time()) < 5
    finally:
        c.close()
    assert (42, "StartApi") in sim.request_names()


def test_a_taken_client_id_gets_326_and_is_disconnected(sim: SimulatorThread) -> None:
    first = Client(sim.port, client_id=77)
    try:
        first.wait_for(error_with(2158))
        second = Client(sim.port, client_id=77)
        try:
            err = second.wait_for(error_with(326, -1))
            assert isinstance(err, ev.Error)
            assert err.message == "Unable to connect as the client id is already in use. Retry with a unique client id."
            assert second.wait_closed()
        finally:
            second.close()
        first.send(rq.ReqCurrentTime())  # the first connection is unharmed
        assert first.wait_for(of(ev.CurrentTime))
    finally:
        first.close()
    # Once the holder leaves, the id is free again.
    deadline = time.monotonic() + 5
    while True:
        again = Client(sim.port, client_id=77)
        try:
            event = again.wait_for(lambda e: isinstance(e, ev.ManagedAccounts) or error_with(326)(e))
            if isinstance(event, ev.ManagedAccounts) or time.monotonic() > deadline:
                assert isinstance(event, ev.ManagedAccounts)
                break
        finally:
            again.close()
        time.sleep(0.05)


@pytest.mark.parametrize(
    "greeting",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"API\0" + frame(b"hello"), b"API\0" + frame(b"v300..200")],
    ids=["http", "no-range", "empty-range"],
)
def test_a_malformed_greeting_is_refused_and_the_server_lives_on(sim: SimulatorThread, greeting: bytes) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as bad:
        bad.sendall(greeting)
        assert bad.recv(100) == b""  # closed, with no answer
    good = Client(sim.port, client_id=9)
    try:
        assert good.wait_for(of(ev.ManagedAccounts))
    finally:
        good.close()


def test_a_client_older_than_the_simulator_supports_is_refused() -> None:
    with SimulatorThread(server_version=157) as sim, socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(b"API\0" + frame(b"v176..200"))
        assert s.recv(100) == b""


def test_greeting_and_start_api_in_one_packet_are_both_answered(sim: SimulatorThread) -> None:
    conn = ClientConnection(client_id=55, max_version=200)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(conn.initiate() + message(71, [2, 55, ""], 200))
        deadline = time.monotonic() + 5
        events: list[ev.Event] = []
        while not any(isinstance(e, ev.ManagedAccounts) for e in events) and time.monotonic() < deadline:
            conn.receive_data(s.recv(65536))
            events += conn.events()
        assert any(isinstance(e, ev.ManagedAccounts) for e in events)


# --- start-up requests of real clients, and orders ---------------------------------------------


def test_start_up_requests_get_empty_answers_with_their_end_messages(client: Client) -> None:
    def answer(msg_id: int) -> tuple[bytes, ...]:
        event = client.wait_for(lambda e: isinstance(e, ev.Unhandled) and e.msg_id == msg_id)
        assert isinstance(event, ev.Unhandled)
        return event.fields

    client.send_raw(61, [1])  # reqPositions
    assert answer(62) == (b"1",)  # positionEnd
    client.send_raw(5, [1])  # reqOpenOrders
    assert answer(53) == (b"1",)  # openOrderEnd
    client.send_raw(16, [1])  # reqAllOpenOrders
    assert answer(53) == (b"1",)
    client.send_raw(99, [0])  # reqCompletedOrders
    assert answer(102) == ()  # completedOrdersEnd has no version field
    client.send_raw(6, [2, 1, "DU1234567"])  # reqAccountUpdates
    assert answer(54) == (b"1", b"DU1234567")  # accountDownloadEnd names the account
    client.send_raw(7, [3, 12, 0, "", "", "", "", "", "", 0, 0])  # reqExecutions, reqId 12
    assert answer(55) == (b"1", b"12")  # execDetailsEnd
    client.send_raw(76, [1, 13, "DU1234567", "", 1])  # reqAccountUpdatesMulti
    assert answer(74) == (b"1", b"13")  # accountUpdateMultiEnd
    client.send_raw(17, [1])  # reqManagedAccts
    assert client.wait_for(of(ev.ManagedAccounts)) == ev.ManagedAccounts(("DU1234567",))
    positions = [x for x in client.collect(0.1) if isinstance(x, ev.Unhandled) and x.msg_id in (61, 7, 5, 11)]
    assert positions == [], "no positions, portfolio or orders: an empty paper account"


def test_orders_are_refused_as_a_read_only_tws_refuses_them(client: Client) -> None:
    client.send_raw(3, [31, 0, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", "", "", "BUY", 1, "MKT"])
    err = client.wait_for(error_with(321, 31))
    assert isinstance(err, ev.Error) and "Read-Only" in err.message
    client.send_raw(4, [31, ""])  # cancelOrder (no version field from server 192)
    assert client.wait_for(error_with(321, 31))
    client.send(rq.ReqCurrentTime())  # still connected and answering
    assert client.wait_for(of(ev.CurrentTime))


def test_current_time_in_millis_only_from_version_197(sim: SimulatorThread) -> None:
    new, old = Client(sim.port, client_id=60, max_version=200), Client(sim.port, client_id=61, max_version=176)
    try:
        for c in (new, old):
            c.send_raw(105, [])
            c.send(rq.ReqCurrentTime())
        millis = new.wait_for(of(ev.CurrentTimeInMillis))
        assert isinstance(millis, ev.CurrentTimeInMillis) and abs(millis.time_ms / 1000 - time.time()) < 5
        old.wait_for(of(ev.CurrentTime))
        assert not any(isinstance(e, ev.CurrentTimeInMillis | ev.Unhandled) for e in old.collect(0.1))
    finally:
        new.close()
        old.close()


def test_a_malformed_request_gets_error_320_and_the_connection_lives_on(client: Client) -> None:
    client.send_raw(1, [11, "not-a-number"])  # reqMktData cut short, with a non-numeric reqId
    err = client.wait_for(error_with(320, -1))
    assert isinstance(err, ev.Error) and "Message id 1" in err.message
    client.send(rq.ReqCurrentTime())
    assert client.wait_for(of(ev.CurrentTime))


# --- market data --------------------------------------------------------------------------------


def test_btc_market_data_streams_ticks_with_increasing_trade_times(client: Client) -> None:
    client.send(rq.ReqMktData(1, BTC))
    params = client.wait_for(lambda e: isinstance(e, ev.TickReqParams | ev.MarketDataTypeChanged | ev.TickPrice))
    assert params == ev.TickReqParams(1, 0.25, "", 3)  # parameters come first
    assert client.wait_for(of(ev.MarketDataTypeChanged, 1)) == ev.MarketDataTypeChanged(1, 1)
    events = client.collect(1.3)
    prices = [e for e in events if isinstance(e, ev.TickPrice) and e.req_id == 1]
    kinds = {e.tick_type for e in prices}
    assert {TickType.BID, TickType.ASK, TickType.LAST, TickType.HIGH, TickType.LOW, TickType.CLOSE} <= kinds
    assert all(e.size and e.size > 0 for e in prices if e.tick_type in (TickType.BID, TickType.ASK, TickType.LAST))
    assert all(e.price % 0.25 == 0 for e in prices)  # on BTC's tick grid
    assert any(isinstance(e, ev.TickSize) and e.tick_type == TickType.VOLUME for e in events)
    bids = [e.price for e in prices if e.tick_type == TickType.BID]
    asks = [e.price for e in prices if e.tick_type == TickType.ASK]
    assert len(bids) > 10 and len(set(bids)) > 3, "the price walks"
    assert min(asks) > 0 and max(bids) < max(asks) + 1000
    stamps = [int(e.value) for e in events if isinstance(e, ev.TickString) and e.tick_type == TickType.LAST_TIMESTAMP]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
    assert abs(stamps[-1] - time.time()) < 5


def test_size_ticks_report_a_size_that_changed_alone(client: Client) -> None:
    client.send(rq.ReqMktData(2, Contract(con_id=272093, exchange="SMART")))  # MSFT by conId
    sizes = [e for e in client.collect(1.0) if isinstance(e, ev.TickSize) and e.req_id == 2]
    assert {TickType.BID_SIZE, TickType.ASK_SIZE} & {e.tick_type for e in sizes}
    assert all(e.size and e.size % 100 == 0 for e in sizes if e.tick_type != TickType.VOLUME)  # round lots


def test_a_snapshot_is_one_picture_then_tick_snapshot_end(client: Client) -> None:
    client.send(rq.ReqMktData(3, AAPL, snapshot=True))
    end = client.wait_for(of(ev.TickSnapshotEnd, 3))
    assert end == ev.TickSnapshotEnd(3)
    client.seen.clear()  # the picture, which came before the end
    later = client.collect(0.3)
    assert not any(getattr(e, "req_id", None) == 3 for e in later), "a snapshot does not stream"


def test_snapshot_picture_has_bid_ask_last_before_its_end(client: Client) -> None:
    client.send(rq.ReqMktData(4, Contract("ETH", "CRYPTO", "PAXOS", "USD"), snapshot=True))
    client.wait_for(of(ev.TickSnapshotEnd, 4))
    # wait_for leaves the events before the end in `seen`: the picture.
    kinds = {e.tick_type for e in client.seen if isinstance(e, ev.TickPrice) and e.req_id == 4}
    assert {TickType.BID, TickType.ASK, TickType.LAST} <= kinds


def test_cancel_mkt_data_stops_the_stream(client: Client) -> None:
    client.send(rq.ReqMktData(5, BTC))
    client.wait_for(of(ev.TickPrice, 5))
    client.send(rq.CancelMktData(5))
    client.collect(0.2)  # what was in flight
    assert not any(getattr(e, "req_id", None) == 5 for e in client.collect(0.3))
    client.send(rq.CancelMktData(5))  # cancelling again: TWS cannot find it
    err = client.wait_for(error_with(300, 5))
    assert isinstance(err, ev.Error) and err.message == "Can't find EId with tickerId:5"


def test_unknown_contract_gets_error_200_with_the_request_id(client: Client) -> None:
    client.send(rq.ReqMktData(6, UNKNOWN))
    err = client.wait_for(error_with(200, 6))
    assert isinstance(err, ev.Error) and err.message == "No security definition has been found for the request"
    client.send(rq.ReqContractDetails(7, Contract("BTC", "CRYPTO", "NYSE", "USD")))  # wrong exchange
    assert client.wait_for(error_with(200, 7))
    assert not any(isinstance(e, ev.ContractDetailsEnd) for e in client.collect(0.1))


def test_a_duplicate_ticker_id_gets_error_322(client: Client) -> None:
    client.send(rq.ReqMktData(8, BTC))
    client.wait_for(of(ev.TickPrice, 8))
    client.send(rq.ReqMktData(8, AAPL))
    err = client.wait_for(error_with(322, 8))
    assert isinstance(err, ev.Error)
    assert err.message.startswith("Error processing request.-'") and err.message.endswith("Duplicate ticker id")


def test_the_market_data_line_limit_gives_error_101() -> None:
    with SimulatorThread(max_lines=2, rate=20) as sim:
        a, b = Client(sim.port, client_id=1), Client(sim.port, client_id=2)
        try:
            a.send(rq.ReqMktData(1, BTC))
            a.wait_for(of(ev.TickPrice, 1))
            b.send(rq.ReqMktData(1, AAPL))  # lines are the account's: both clients count
            b.wait_for(of(ev.TickPrice, 1))
            b.send(rq.ReqMktData(2, Contract("ETH", "CRYPTO", "PAXOS", "USD")))
            err = b.wait_for(error_with(101, 2))
            assert isinstance(err, ev.Error) and err.message == "Max number of tickers has been reached"
            b.send(rq.ReqMktData(3, BTC, snapshot=True))  # a snapshot needs no line
            assert b.wait_for(of(ev.TickSnapshotEnd, 3))
            a.send(rq.CancelMktData(1))  # a freed line can be used again
            deadline = time.monotonic() + 5
            while True:
                b.send(rq.ReqMktData(4, Contract("ETH", "CRYPTO", "PAXOS", "USD")))
                got = b.wait_for(lambda e: of(ev.TickReqParams, 4)(e) or error_with(101, 4)(e))
                if isinstance(got, ev.TickReqParams) or time.monotonic() > deadline:
                    break
            assert isinstance(got, ev.TickReqParams)
        finally:
            a.close()
            b.close()


def test_all_subscribers_of_an_instrument_see_the_same_prices(sim: SimulatorThread) -> None:
    a, b = Client(sim.port, client_id=70), Client(sim.port, client_id=71)
    try:
        for c in (a, b):
            c.send(rq.ReqMktData(1, Contract("ETH", "CRYPTO", "PAXOS", "USD")))
        seen = []
        for c in (a, b):
            events = c.collect(0.6)
            seen.append({e.price for e in events if isinstance(e, ev.TickPrice) and e.tick_type == TickType.BID})
        assert len(seen[0] & seen[1]) >= 5
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(("kind", "streams"), [(3, True), (4, False)], ids=["delayed", "delayed-frozen"])
def test_delayed_market_data_uses_the_delayed_tick_types(sim: SimulatorThread, kind: int, streams: bool) -> None:
    c = Client(sim.port, client_id=80 + kind)
    try:
        c.send(rq.ReqMarketDataType(kind))
        c.send(rq.ReqMktData(1, BTC))
        assert c.wait_for(of(ev.MarketDataTypeChanged, 1)) == ev.MarketDataTypeChanged(1, kind)
        first = c.collect(0.15)
        later = c.collect(0.4)
        ticks = [e for e in first + later if isinstance(e, ev.TickPrice | ev.TickSize | ev.TickString)]
        types = {e.tick_type for e in ticks}
        assert {TickType.DELAYED_BID, TickType.DELAYED_ASK, TickType.DELAYED_LAST} <= types
        assert TickType.DELAYED_LAST_TIMESTAMP in types
        assert all(66 <= t <= 76 or t == 88 for t in types), types
        assert bool(later) is streams
    finally:
        c.close()


def test_frozen_market_data_is_one_live_typed_picture(client: Client) -> None:
    client.send(rq.ReqMarketDataType(2))
    client.send(rq.ReqMktData(9, AAPL))
    assert client.wait_for(of(ev.MarketDataTypeChanged, 9)) == ev.MarketDataTypeChanged(9, 2)
    first = client.collect(0.15)
    assert {TickType.BID, TickType.ASK, TickType.LAST} <= {e.tick_type for e in first if isinstance(e, ev.TickPrice)}
    assert client.collect(0.3) == []


# --- tick-by-tick, bars, depth --------------------------------------------------------------------


def test_tick_by_tick_streams_each_kind_until_cancelled(client: Client) -> None:
    for req_id, kind in enumerate(("Last", "AllLast", "BidAsk", "MidPoint"), start=20):
        client.send(rq.ReqTickByTickData(req_id, BTC, kind))
    events = client.collect(0.6)
    last = [e for e in events if isinstance(e, ev.TickByTickLast) and e.req_id == 20]
    all_last = [e for e in events if isinstance(e, ev.TickByTickLast) and e.req_id == 21]
    bid_ask = [e for e in events if isinstance(e, ev.TickByTickBidAsk) and e.req_id == 22]
    mid = [e for e in events if isinstance(e, ev.TickByTickMidPoint) and e.req_id == 23]
    assert len(last) > 2 and len(all_last) > 2 and len(bid_ask) > 2 and len(mid) > 2
    assert {e.tick_type for e in last} == {1} and {e.tick_type for e in all_last} == {2}
    assert all(e.bid_price < e.ask_price and e.bid_size for e in bid_ask)
    assert all(abs(e.time - time.time()) < 5 for e in bid_ask)
    for req_id in range(20, 24):
        client.send(rq.CancelTickByTickData(req_id))
    client.collect(0.2)
    assert not any(getattr(e, "req_id", 0) in range(20, 24) for e in client.collect(0.3))


def test_real_time_bars_arrive_every_bar_period_until_cancelled(client: Client) -> None:
    client.send(rq.ReqRealTimeBars(30, BTC, "TRADES"))
    client.send(rq.ReqRealTimeBars(31, BTC, "MIDPOINT"))
    events = client.collect(0.9)  # the fixture's bars are 0.2 s long
    for req_id in (30, 31):
        bars = [e for e in events if isinstance(e, ev.RealTimeBar) and e.req_id == req_id]
        assert len(bars) >= 3
        assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
        assert [b.time for b in bars] == sorted(b.time for b in bars)
    trades = [e for e in events if isinstance(e, ev.RealTimeBar) and e.req_id == 30]
    assert any(b.volume and b.count for b in trades) and all(b.wap and b.low <= b.wap <= b.high for b in trades)
    client.send(rq.CancelRealTimeBars(30))
    client.send(rq.CancelRealTimeBars(31))
    client.collect(0.25)
    assert not any(isinstance(e, ev.RealTimeBar) for e in client.collect(0.5))


def test_depth_is_a_book_of_rows_then_updates_until_cancelled(client: Client) -> None:
    client.send(rq.ReqMktDepth(40, AAPL._replace(exchange="NASDAQ"), num_rows=3))
    client.send(rq.ReqMktDepth(41, AAPL, num_rows=3, is_smart_depth=True))
    events = client.collect(0.5)
    plain = [e for e in events if isinstance(e, ev.MarketDepth) and e.req_id == 40]
    smart = [e for e in events if isinstance(e, ev.MarketDepthL2) and e.req_id == 41]
    inserts = plain[:6]
    assert {(e.side, e.position, e.operation) for e in inserts} == {(s, p, 0) for s in (0, 1) for p in range(3)}
    assert any(e.operation == 1 for e in plain[6:]), "the book updates"
    asks = sorted((e.position, e.price) for e in inserts if e.side == 0)
    bids = sorted((e.position, e.price) for e in inserts if e.side == 1)
    assert [p for _, p in asks] == sorted(p for _, p in asks) and bids[0][1] < asks[0][1]
    assert smart and all(e.is_smart_depth and e.market_maker for e in smart)
    client.send(rq.CancelMktDepth(40))
    client.send(rq.CancelMktDepth(41, is_smart_depth=True))
    client.collect(0.2)
    assert not any(isinstance(e, ev.MarketDepth | ev.MarketDepthL2) for e in client.collect(0.3))


# --- reference data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expect"),
    [
        (Contract("AAPL", "STK", "SMART", "USD"), dict(con_id=265598, primary_exchange="NASDAQ", exchange="SMART")),
        (Contract("AAPL", "STK", "NASDAQ", "USD"), dict(con_id=265598, exchange="NASDAQ")),
        (Contract(con_id=272093), dict(symbol="MSFT", sec_type="STK")),
        (Contract("ETH", "CRYPTO", "PAXOS", "USD"), dict(con_id=495759171, local_symbol="ETH.USD")),
        (Contract("EUR", "CASH", "IDEALPRO", "USD"), dict(local_symbol="EUR.USD", con_id=12087792)),
        (
            Contract("ES", "FUT", "CME", "USD", last_trade_date_or_contract_month="202612"),
            dict(multiplier="50", local_symbol="ESZ6", last_trade_date_or_contract_month="20261218"),
        ),
        (Contract(local_symbol="ESZ6", sec_type="FUT", exchange="CME"), dict(symbol="ES")),
    ],
    ids=["aapl-smart", "aapl-primary", "msft-conid", "eth", "eur-usd", "es-future", "es-local-symbol"],
)
def test_contract_details_as_tws_matches_them(client: Client, wanted: Contract, expect: dict[str, object]) -> None:
    client.send(rq.ReqContractDetails(50, wanted))
    d = client.wait_for(of(ev.ContractDetails, 50))
    assert client.wait_for(of(ev.ContractDetailsEnd, 50)) == ev.ContractDetailsEnd(50)
    assert isinstance(d, ev.ContractDetails)
    for name, value in expect.items():
        assert getattr(d.contract, name) == value, name
    assert d.long_name and d.min_tick > 0 and d.valid_exchanges and d.trading_hours and d.time_zone_id


def test_catalogue_holds_the_promised_instruments() -> None:
    keys = {
        (i.contract.symbol, i.contract.sec_type, i.contract.exchange, i.contract.currency)
        for symbol in ("BTC", "ETH", "AAPL", "MSFT")
        for i in lookup(Contract(symbol))
        if i.contract.sec_type != "OPT"  # AAPL has options too
    }
    assert keys == {
        ("BTC", "CRYPTO", "PAXOS", "USD"),
        ("ETH", "CRYPTO", "PAXOS", "USD"),
        ("AAPL", "STK", "SMART", "USD"),
        ("MSFT", "STK", "SMART", "USD"),
    }
    assert lookup(Contract("AAPL", "STK", "SMART", "EUR")) == []


def test_the_same_seed_gives_the_same_prices() -> None:
    (btc,) = lookup(BTC)

    def path(seed: int) -> list[tuple[float, float, float]]:
        market = Market(seed)
        return [(q.bid, q.ask, q.last) for q in (market.step(btc) for _ in range(50))]

    assert path(3) == path(3)
    assert path(3) != path(4)
    assert all(bid < ask for bid, ask, _ in path(3))


# --- the command line -----------------------------------------------------------------------------


def test_the_cli_runs_a_simulator_process_that_journals_requests(tmp_path: Path) -> None:
    journal = tmp_path / "requests.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bridge.simulator", "--port", "0", "--rate", "20", "--seed", "1"]
    cmd += ["--server-version", "176", "--journal", str(journal)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 15
        while not port and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            line = proc.stderr.readline() if ready else ""
            if "listening on" in line:
                port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        assert port, "the simulator did not say where it listens"
        c = Client(port, client_id=5)
        try:
            assert c.version == 176
            c.send(rq.ReqMktData(1, BTC))
            assert c.wait_for(of(ev.TickPrice, 1))
            c.send(rq.CancelMktData(1))
            c.send(rq.ReqCurrentTime())
            c.wait_for(of(ev.CurrentTime))
        finally:
            c.close()
        lines = [json.loads(x) for x in journal.read_text().splitlines()]
        assert [x["request"] for x in lines] == ["StartApi", "ReqMktData", "CancelMktData", "ReqCurrentTime"]
        assert lines[1] | {"t": 0} == {
            "t": 0,
            "conn": 1,
            "client_id": 5,
            "request": "ReqMktData",
            "req_id": 1,
            "symbol": "BTC",
            "sec_type": "CRYPTO",
        }
        assert all(abs(x["t"] - time.time()) < 30 for x in lines)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "StartApi clientId=5" in err and "ReqMktData reqId=1 BTC" in err  # readable log lines


def test_with_stamp_each_market_data_step_ends_with_the_time_it_was_written() -> None:
    """--stamp, for benchmarks: a tickString 85 (lastRegTime) holding time.time_ns() after each step."""
    with SimulatorThread(rate=40, seed=3, stamp=True) as sim:
        c = Client(sim.port, client_id=1)
        try:
            c.send(rq.ReqMktData(5, Contract("AAPL", "STK", "SMART", "USD")))
            events = c.collect(1.0)
        finally:
            c.close()
    stamps = [e for e in events if isinstance(e, ev.TickString) and e.tick_type == TickType.LAST_REG_TIME]
    assert 20 <= len(stamps) <= 45  # 40 steps a second
    assert all(e.req_id == 5 for e in stamps)
    sent = [int(e.value) for e in stamps]
    assert sent == sorted(sent) and abs(sent[-1] - time.time_ns()) < 2e9


def test_without_stamp_no_step_carries_one(client: Client) -> None:
    client.send(rq.ReqMktData(6, Contract("AAPL", "STK", "SMART", "USD")))
    events = client.collect(0.5)
    assert events and not [e for e in events if isinstance(e, ev.TickString) and e.tick_type == 85]


def test_with_a_shared_clock_every_read_holds_a_whole_sample_of_every_instrument() -> None:
    """--shared-clock: instruments subscribed at different moments still step together, and each
    sample reaches the client in one write, so a client wakes once per sample (as with TWS's
    250 ms snapshots), not once per instrument."""
    ids = {1: AAPL, 2: Contract("MSFT", "STK", "SMART", "USD"), 3: BTC}
    with SimulatorThread(rate=20, seed=3, shared_clock=True) as sim:
        c = Client(sim.port, client_id=1)
        try:
            c.wait_for(error_with(2158))
            for req_id, contract in ids.items():
                c.send(rq.ReqMktData(req_id, contract))
                time.sleep(0.02)  # on clocks of their own, these would step 20 ms apart
            c.collect(0.3)  # the pictures
            chunks = []
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if select.select([c.sock], [], [], 0.2)[0]:
                    c.conn.receive_data(c.sock.recv(65536))
                    chunks.append({e.req_id for e in c.conn.events() if isinstance(e, ev.TickPrice | ev.TickSize)})
        finally:
            c.close()
    assert 12 <= len(chunks) <= 25  # 20 samples a second
    assert all(chunk == set(ids) for chunk in chunks), chunks

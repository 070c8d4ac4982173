"""What TWS can do wrong, and what the user sees: a clear error, and nothing else lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from tests.fake_tws import FakeTws
from tests.harness import Bridge, recv, wait_for


def answer(tws: FakeTws, request: object) -> list[bytes]:
    """TWS's behaviour per symbol: NOSUB is not subscribed (354), LATE falls back to delayed
    data (10167), GARBLE is followed by malformed messages, then good ticks."""
    if not isinstance(request, rq.ReqMktData):
        return []
    symbol, rid = request.contract.symbol, request.req_id
    if symbol == "NOSUB":
        return tws.send(ev.Error(rid, 354, "Requested market data is not subscribed."))
    if symbol == "LATE":
        return tws.send(
            ev.Error(rid, 10167, "Requested market data is not subscribed. Displaying delayed market data."),
            ev.MarketDataTypeChanged(rid, 3),
            ev.TickPrice(rid, 66, 101.5, 10.0, 0),
        )
    if symbol == "GARBLE":
        return [
            *tws.raw(b"1\x006\x00not-a-number\x00"),  # tickPrice that does not parse
            *tws.raw(b"\xff\xfe\x00garbage\x00"),  # not even a message id
            *tws.raw(b"777\x001\x00new message kind\x00"),  # a message id we do not know
            *tws.send(ev.TickPrice(rid, 1, 99.5, 3.0, 0)),
        ]
    return tws.send(ev.TickPrice(rid, 1, 50.0, 1.0, 0))


@pytest.fixture
def tws() -> Iterator[FakeTws]:
    t = FakeTws(answer)
    yield t
    t.close()


@pytest.fixture
def bridge(tmp_path: Path, tws: FakeTws) -> Iterator[Bridge]:
    b = Bridge(tmp_path, tws.port)
    yield b
    b.stop()


def test_not_subscribed_354_reaches_the_subscriber_in_tws_words_and_ours(bridge: Bridge) -> None:
    reply = bridge.request({"op": "subscribe", "instrument": "NOSUB"})
    assert reply["ok"] is False and reply["code"] == "tws_error" and reply["tws_code"] == 354
    assert "not subscribed" in reply["error"] and "try market_data_type 'delayed'" in reply["error"]
    assert bridge.request({"op": "list"})["subscriptions"] == []


def test_delayed_fallback_10167_is_an_event_and_the_data_keeps_coming(bridge: Bridge) -> None:
    sub = bridge.subscriber("quote/LATE")
    time.sleep(0.2)
    reply = bridge.request({"op": "subscribe", "instrument": "LATE"})
    assert reply["ok"], reply
    events = [recv(sub)[1] for _ in range(3)]
    assert events[0]["event"] == "error" and events[0]["code"] == 10167
    assert "delayed" in events[0]["hint"]
    assert events[1]["market_data_type"] == "delayed"
    assert events[2]["tick"] == "delayed_bid" and events[2]["price"] == 101.5


def test_malformed_messages_from_tws_are_reported_and_skipped(bridge: Bridge) -> None:
    sub = bridge.subscriber("quote/GARBLE")
    time.sleep(0.2)
    assert bridge.request({"op": "subscribe", "instrument": "GARBLE"})["ok"]
    _, tick = recv(sub)
    assert tick["price"] == 99.5  # the good tick after the bad ones
    metrics = bridge.metrics()
    assert metrics['twsbridge_tws_messages_received_total{kind="malformed_message"}'] == 2
    assert metrics['twsbridge_tws_messages_received_total{kind="unhandled"}'] == 1
    assert "malformed message" in wait_for(lambda: "malformed message" in bridge.output and bridge.output, 3)


def test_an_out_of_step_stream_drops_the_connection_and_reconnects(bridge: Bridge, tws: FakeTws) -> None:
    assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["ok"]
    assert tws.sock is not None
    tws.sock.sendall(b"\x7f\xff\xff\xff")  # a 2 GiB frame length: the stream cannot be trusted
    wait_for(lambda: tws.connections == 2, 10, "the bridge to reconnect")
    wait_for(lambda: sum(isinstance(r, rq.ReqMktData) for r in tws.requests) == 2, 10, "AAPL re-requested")
    assert "over the" in bridge.output and "reconnect" in bridge.output
    assert bridge.request({"op": "ping"})["ok"]


def test_tws_hanging_up_is_survived(bridge: Bridge, tws: FakeTws) -> None:
    assert bridge.request({"op": "subscribe", "instrument": "MSFT"})["ok"]
    tws.hang_up()
    wait_for(lambda: tws.connections == 2, 10, "the bridge to reconnect")
    wait_for(lambda: bridge.metrics()["twsbridge_tws_up"] == 1, 10, "tws_up back to 1")
    assert bridge.metrics()["twsbridge_tws_connects_total"] == 2


def test_restoring_many_subscriptions_stays_under_tws_message_rate(bridge: Bridge, tws: FakeTws) -> None:
    """TWS disconnects a client that sends over 50 messages a second (error 100)."""
    symbols = [f"S{i:02d}" for i in range(60)]
    for symbol in symbols:
        assert bridge.request({"op": "subscribe", "instrument": symbol})["ok"]
    tws.hang_up()
    wait_for(lambda: sum(isinstance(r, rq.ReqMktData) for r in tws.requests) == 120, 15, "all 60 lines restored")
    for connection in (1, 2):  # TWS counts per connection
        times = [t for c, t in tws.request_times if c == connection]
        assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 50
    assert "pacing:" in bridge.output


def test_tws_losing_its_market_data_1101_makes_the_bridge_request_again(bridge: Bridge, tws: FakeTws) -> None:
    assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["ok"]
    assert tws.sock is not None and tws.conn is not None
    tws.sock.sendall(tws.conn.send(ev.Error(-1, 1101, "Connectivity between IB and TWS has been restored- data lost.")))
    wait_for(lambda: sum(isinstance(r, rq.ReqMktData) for r in tws.requests) == 2, 5, "AAPL requested again")
    assert tws.connections == 1
    assert bridge.request({"op": "status"})["tws"]["last_error"]["code"] == 1101

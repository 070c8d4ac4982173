"""Conflated views (subscribe with `conflate`, optionally `fields`): a stream's latest values at most
once an interval, folded by the bridge once for every consumer of the view. Real simulator, bridge,
ZeroMQ and TCP; the simulator steps each instrument 20 times a second."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from bridge.book import LineKey, SubscriptionBook, ViewKey
from bridge.protocol import Contract
from consumers.client import BusClient
from tests.harness import Bridge, Simulator, recv


def _collect(sub: Any, seconds: float) -> list[tuple[float, str, dict[str, Any]]]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sub.poll(100):
            topic, payload = recv(sub)
            out.append((time.monotonic(), topic, payload))
    return out


def test_a_conflated_view_sends_the_latest_values_at_most_once_an_interval(bridge: Bridge, sim: Simulator) -> None:
    full = bridge.subscriber("quote/AAPL.STK.SMART.USD")
    view_sub = bridge.subscriber("quote/AAPL.STK.SMART.USD/every250ms")
    time.sleep(0.2)
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "conflate": 0.25})
    assert reply["ok"] and reply["topic"] == "quote/AAPL.STK.SMART.USD/every250ms", reply
    views = _collect(view_sub, 2.0)
    stream = [p for _, t, p in _collect(full, 0.5) if t == "quote/AAPL.STK.SMART.USD"]
    assert stream, "the stream itself flows"
    assert 4 <= len(views) <= 9, [round(t, 2) for t, _, _ in views]  # 2 s / 0.25 s, allowing for start-up
    payloads = [p for _, _, p in views]
    gaps = [(b["recv_ns"] - a["recv_ns"]) / 1e9 for a, b in itertools.pairwise(payloads)]  # as the bridge sent them
    assert min(gaps) >= 0.245, gaps  # never closer than the interval (uvloop's clock has 1 ms steps)
    assert all(p["event"] == "latest" and p["instrument"] == "AAPL.STK.SMART.USD" for p in payloads)
    assert [p["seq"] for p in payloads] == list(range(payloads[0]["seq"], payloads[0]["seq"] + len(payloads)))
    assert all({"bid", "ask", "last"} <= set(p["latest"]) for p in payloads)
    assert all(p["folded"] >= 1 for p in payloads[1:]) and max(p["folded"] for p in payloads) > 1
    assert len(sim.requests("ReqMktData")) == 1


def test_a_view_of_some_fields_sends_only_those_and_only_when_they_change(bridge: Bridge) -> None:
    view_sub = bridge.subscriber("quote/MSFT.STK.SMART.USD/every100ms/ask,bid")
    time.sleep(0.2)
    reply = bridge.request({"op": "subscribe", "instrument": "MSFT", "conflate": 0.1, "fields": ["bid", "ask", "bid"]})
    assert reply["ok"] and reply["topic"] == "quote/MSFT.STK.SMART.USD/every100ms/ask,bid", reply
    assert set(reply["latest"]) <= {"bid", "ask"}
    payloads = [p for _, _, p in _collect(view_sub, 1.5)]
    assert payloads
    assert all(set(p["latest"]) == {"bid", "ask"} for p in payloads)
    values = [(p["latest"]["bid"], p["latest"]["ask"]) for p in payloads]
    assert all(a != b for a, b in itertools.pairwise(values)), "an unchanged picture is not sent again"


def test_consumers_of_one_view_share_it_and_its_stream_shares_one_tws_request(bridge: Bridge, sim: Simulator) -> None:
    with BusClient(bridge.pub, bridge.rep, timeout=5) as a, BusClient(bridge.pub, bridge.rep, timeout=5) as b:
        sa = a.subscribe("ETH.CRYPTO", conflate=0.2)
        sb = b.subscribe("ETH.CRYPTO", conflate=0.2)
        plain = b.subscribe("ETH.CRYPTO")
        assert sa.topic == sb.topic == "quote/ETH.CRYPTO.PAXOS.USD/every200ms" and sa.id != sb.id
        assert plain.topic == "quote/ETH.CRYPTO.PAXOS.USD"
        got_a = [a.recv(2) for _ in range(3)]
        assert all(m is not None and m.topic == sa.topic and m.payload["event"] == "latest" for m in got_a)
        assert len(sim.requests("ReqMktData")) == 1
        b.unsubscribe(plain.id)
        b.unsubscribe(sb.id)
        assert a.recv(2) is not None, "the view goes on while one consumer holds it"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"conflate": 0.001}, "conflate is a number of seconds from 0.05 to 60"),
        ({"conflate": "fast"}, "conflate is a number of seconds"),
        ({"conflate": True}, "conflate is a number of seconds"),
        ({"fields": ["bid"]}, "fields goes with conflate"),
        ({"conflate": 1, "fields": []}, "fields is a list of 1 to 32 field names"),
        ({"conflate": 1, "fields": ["Bid; DROP"]}, "fields is a list of 1 to 32 field names"),
        ({"conflate": 1, "fields": "bid"}, "fields is a list"),
    ],
)
def test_a_bad_view_request_is_refused_with_what_is_allowed(bridge: Bridge, extra: dict, says: str) -> None:
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL", **extra})
    assert reply["ok"] is False and reply["code"] == "bad_request" and says in reply["error"], reply


def test_a_view_lives_while_its_subscriptions_do_and_its_seq_goes_on_after() -> None:
    book = SubscriptionBook()
    key = LineKey("BTC.CRYPTO.PAXOS.USD", "quote")
    btc = Contract("BTC", "CRYPTO", "PAXOS", "USD", 479624278)
    fast = ViewKey(100)
    line, a, _ = book.subscribe(key, btc, 1, 30, 0, fast)
    _, b, _ = book.subscribe(key, btc, 2, 30, 0, fast)
    book.subscribe(key, btc, 3, 30, 0, ViewKey(1000, ("bid",)))  # holds the line
    assert [v.topic for v, _ in book.views()] == [
        b"quote/BTC.CRYPTO.PAXOS.USD/every100ms",
        b"quote/BTC.CRYPTO.PAXOS.USD/every1000ms/bid",
    ]
    assert book.view_of(a) is book.view_of(b)
    book.view_of(a).seq = 7  # type: ignore[union-attr]
    book.unsubscribe(a)
    assert len(book.views()) == 2
    assert book.unsubscribe(b) == (True, None)  # the line stays: c holds it
    assert [v.key for v, _ in book.views()] == [ViewKey(1000, ("bid",))]
    _, d, _ = book.subscribe(key, btc, 4, 30, 0, fast)
    assert book.view_of(d).seq == 7  # type: ignore[union-attr]
    book.expire(31)
    assert book.views() == [] and book.lines() == [] and line.views == {}

"""Sequence numbers keep docs/bus.md's promise: a topic's seq never restarts within one bridge
process (one epoch), not even when its line is dropped and made again; the epoch tells a restart."""

from __future__ import annotations

import time
from pathlib import Path

import zmq
from hypothesis import given
from hypothesis import strategies as st

from bridge.book import LineKey, SubscriptionBook
from bridge.protocol import Contract
from bridge.seqs import Seqs
from tests.harness import Bridge, Simulator, recv, wait_for

TOPIC = "quote/BTC.CRYPTO.PAXOS.USD"


def _drain(sub: zmq.Socket, quiet: float = 0.5) -> list[dict]:
    """Everything the socket holds until `quiet` seconds pass with nothing new."""
    sub.setsockopt(zmq.RCVTIMEO, int(quiet * 1000))
    out = []
    while True:
        try:
            out.append(recv(sub)[1])
        except zmq.Again:
            sub.setsockopt(zmq.RCVTIMEO, 5000)
            return out


def test_seq_goes_on_after_the_line_is_cancelled_and_made_again(bridge: Bridge, sim: Simulator) -> None:
    sub = bridge.subscriber(TOPIC)
    time.sleep(0.2)
    first = bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})
    assert first["ok"]
    seqs = [recv(sub)[1]["seq"] for _ in range(10)]
    assert seqs == list(range(1, 11))
    assert bridge.request({"op": "unsubscribe", "id": first["id"]}) == {"ok": True}
    wait_for(lambda: sim.requests("CancelMktData"), 5, "the line cancelled at TWS")
    last = max(seqs + [p["seq"] for p in _drain(sub)])
    again = bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})
    assert again["ok"] and again["seq"] >= last and again["epoch"] == first["epoch"]
    assert len(sim.requests("ReqMktData")) == 2  # really a new TWS request
    assert recv(sub)[1]["seq"] == last + 1  # no restart, no gap


def test_the_epoch_is_on_state_messages_and_replies_and_stable(tmp_path: Path, bridge: Bridge, sim: Simulator) -> None:
    state = bridge.subscriber("state")
    time.sleep(0.2)
    epoch = bridge.request({"op": "status"})["epoch"]
    assert isinstance(epoch, str) and len(epoch) >= 16
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL"})
    assert reply["epoch"] == epoch
    _, message = recv(state)
    assert message["event"] == "subscription" and message["epoch"] == epoch
    assert bridge.request({"op": "status"})["epoch"] == epoch
    other = Bridge(tmp_path, sim.port, extra=["--client-id", "18"])  # another run: another epoch
    try:
        assert other.request({"op": "status"})["epoch"] not in ("", epoch)
    finally:
        other.stop()


def _contract() -> Contract:
    return Contract("AAPL", "STK", "SMART", "USD")


def test_the_book_hands_a_new_line_the_seq_its_topic_stopped_at() -> None:
    book = SubscriptionBook()
    key = LineKey("AAPL.STK.SMART.USD", "quote")
    line, sub_id, _ = book.subscribe(key, _contract(), 1, 30, now=0)
    line.seq = 41
    _, unused = book.unsubscribe(sub_id)
    assert unused is line
    again, _, is_new = book.subscribe(key, _contract(), 2, 30, now=1)
    assert is_new and again is not line and again.seq == 41
    other, _, _ = book.subscribe(LineKey("AAPL.STK.SMART.USD", "trades"), _contract(), 3, 30, now=1)
    assert other.seq == 0  # a topic of its own


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 50)), max_size=200))
def test_a_topics_seq_never_goes_back_however_little_is_remembered(runs: list[tuple[int, int]]) -> None:
    seqs = Seqs(capacity=5)
    last: dict[bytes, int] = {}
    for topic_no, messages in runs:
        topic = b"t%d" % topic_no
        start = seqs.resume(topic)
        assert start >= last.get(topic, 0)
        last[topic] = start + messages
        seqs.remember(topic, start + messages)
    assert len(seqs) <= 5

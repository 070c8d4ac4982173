"""Keep-up-to-date bars (kind hbars) through the running bridge: real simulator and bridge processes,
the simulator serving keepUpToDate and enforcing IB's historical pacing, both time-scaled
(--history-time-scale 0.01) as in test_history_bus.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.harness import Bridge, Simulator, history_pair, recv, wait_for

SCALE = 0.01
Message = tuple[str, dict[str, Any]]


class Listener:
    """Every message under some topic prefixes, read on a thread of its own while the test goes on."""

    def __init__(self, bridge: Bridge, *prefixes: str) -> None:
        self._sock = bridge.subscriber(*prefixes)
        self._sock.setsockopt(zmq.RCVTIMEO, 100)
        self.messages: list[Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.3)  # the SUB filter reaches the bridge

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(recv(self._sock))
            except zmq.Again:
                continue
        self._sock.close()

    def on(self, topic: str, after_seq: int = 0) -> list[dict[str, Any]]:
        return [p for t, p in list(self.messages) if t == topic and p["seq"] > after_seq]

    def wait(self, check: Callable[[], object], timeout: float, what: str) -> None:
        wait_for(check, timeout, what)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Bridge]]:
    with history_pair(tmp_path_factory.mktemp("hbars"), SCALE) as both:
        yield both


def hbars(instrument: str, bar: str, **more: Any) -> dict[str, Any]:
    return {"op": "subscribe", "instrument": instrument, "kind": "hbars", "bar": bar, **more}


def closes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in messages if p["event"] == "bar_close"]


def consecutive(times: list[int], step: int) -> bool:
    return times == list(range(times[0], times[0] + step * len(times), step))


def test_a_keep_up_to_date_bars_topic_shared_by_two_consumers_is_one_tws_request(
    pair: tuple[Simulator, Bridge],
) -> None:
    sim, bridge = pair
    before = len(sim.requests("ReqHistoricalData"))
    request = hbars("AMD", "1 min", what="MIDPOINT")
    replies: list[dict[str, Any]] = []
    askers = [threading.Thread(target=lambda: replies.append(bridge.request(request, timeout=10))) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert [r["ok"] for r in replies] == [True, True], replies
    topic = "hbars/AMD.STK.SMART.USD/1min/MIDPOINT"
    assert {r["topic"] for r in replies} == {topic} and replies[0]["id"] != replies[1]["id"]
    assert len(sim.requests("ReqHistoricalData")) == before + 1
    for reply in replies:  # each reply carries the complete bars it may warm up on, the last 1000
        assert reply["backfilled"] and len(reply["backfill"]) == 1000
        assert reply["columns"][0] == "time" and consecutive([row[0] for row in reply["backfill"]], 60)
        assert reply["latest"]["complete"] is False and reply["latest"]["tws_time"] > reply["backfill"][-1][0]
    line = next(s for s in bridge.request({"op": "list"})["subscriptions"] if s["topic"] == topic)
    assert line["consumers"] == 2 and line["kind"] == "hbars"

    assert bridge.request({"op": "unsubscribe", "id": replies[0]["id"]})["ok"]
    time.sleep(0.3)
    assert not sim.requests("CancelHistoricalData"), "one consumer left: the line stays"
    assert bridge.request({"op": "unsubscribe", "id": replies[1]["id"]})["ok"]
    cancels = wait_for(lambda: sim.requests("CancelHistoricalData"), 3, "cancelHistoricalData at TWS")
    assert [c["req_id"] for c in cancels] == [line["req_id"]], "the line's one request, cancelled once"
    assert not any(s["topic"] == topic for s in bridge.request({"op": "list"})["subscriptions"])


def test_backfill_and_live_bars_join_without_a_gap_or_an_overlap(pair: tuple[Simulator, Bridge]) -> None:
    _, bridge = pair
    listener = Listener(bridge, "hbars/NVDA", "trades/NVDA")
    try:
        assert bridge.request({"op": "subscribe", "instrument": "NVDA", "kind": "trades"})["ok"]
        reply = bridge.request(hbars("NVDA", "5 secs"), timeout=10)
        assert reply["ok"] and reply["backfilled"], reply
        topic, seq = reply["topic"], reply["seq"]
        assert topic == "hbars/NVDA.STK.SMART.USD/5secs/TRADES"
        listener.wait(lambda: len(closes(listener.on(topic, seq))) >= 2, 15, "two bars closing live")
        live = listener.on(topic, seq)
        both = [(t, p) for t, p in listener.messages if t == topic or t.startswith("trades/")]
    finally:
        listener.close()

    assert [p["seq"] for p in live] == list(range(seq + 1, seq + 1 + len(live))), "nothing lost, nothing twice"
    times = [row[0] for row in reply["backfill"]] + [p["tws_time"] for p in closes(live)]
    assert consecutive(times, 5), "complete bars follow each other at the bar size: no gap, no overlap"
    assert closes(live)[0]["tws_time"] == reply["latest"]["tws_time"], "the bar forming at the reply closes first"

    forming: dict[str, Any] = {**reply["latest"]}
    closed_up_to = reply["backfill"][-1][0]
    fields = ("open", "high", "low", "close", "volume", "wap", "count")
    for p in live:
        assert p["tws_time"] > closed_up_to, "a complete bar never changes afterwards"
        if p["event"] == "bar_close":
            assert p["complete"] and p["tws_time"] == forming["tws_time"]
            assert {f: p[f] for f in fields} == {f: forming[f] for f in fields}, "it closes as last updated"
            closed_up_to = p["tws_time"]
            continue
        assert p["event"] == "bar_update" and p["complete"] is False
        if p["tws_time"] != forming["tws_time"]:
            assert forming["tws_time"] == closed_up_to, "a new bar starts only once the one before closed"
        elif p["tws_time"] != reply["latest"]["tws_time"]:  # a bar of live trades only (see below)
            assert p["open"] == forming["open"] and p["high"] >= forming["high"] and p["low"] <= forming["low"]
            assert p["volume"] >= forming["volume"] and p["count"] >= forming["count"]
        forming = p
    # The bar forming at the reply began on the simulator's seeded path and goes on with its live
    # tape (the simulator's live era began moments before, inside that bar): its open and range may
    # jump once there. Every later bar is made of live trades alone.
    assert moves_with_the_trades(both, seq, seam=reply["latest"]["tws_time"]) >= 20


def moves_with_the_trades(messages: list[Message], after_seq: int, seam: int) -> int:
    """The forming bar follows the trades the simulator prints (tick-by-tick, asked first, so each
    step's trade comes just before its bar update): close at the last price, high and low
    stretched to it, volume up by the sizes printed. Returns how many updates were checked."""
    printed: list[dict[str, Any]] = []
    before: dict[str, Any] | None = None
    checked = 0
    for topic, p in messages:
        if topic.startswith("trades/"):
            printed.append(p)
            continue
        if p["event"] != "bar_update" or p["seq"] <= after_seq:
            continue
        if printed:
            prices = [t["price"] for t in printed]
            assert p["close"] == prices[-1], (p, printed)
            if before is not None and before["tws_time"] == p["tws_time"] != seam:
                assert p["high"] == max(before["high"], *prices) and p["low"] == min(before["low"], *prices)
                assert p["volume"] == pytest.approx(before["volume"] + sum(t["size"] for t in printed))
                checked += 1
        printed, before = [], p
    return checked


@pytest.mark.parametrize(
    ("more", "says"),
    [
        ({"bar": "1 secs"}, "5 secs to 1 month"),
        ({"bar": "7 mins"}, "5 secs to 1 month"),
        ({}, "needs 'bar'"),
        ({"bar": "1 min", "what": "TRADE"}, "MIDPOINT"),
        ({"bar": "1 min", "backfill": 5000}, "0 to 1000"),
        ({"bar": "1 min", "kind": "quote"}, "go with kind hbars"),
    ],
)
def test_a_bad_bar_request_is_refused_naming_what_is_allowed_and_costs_tws_nothing(
    pair: tuple[Simulator, Bridge], more: dict[str, Any], says: str
) -> None:
    sim, bridge = pair
    before = len(sim.requests("ReqHistoricalData"))
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "kind": "hbars", **more})
    assert reply["ok"] is False and reply["code"] == "bad_request" and says in reply["error"], reply
    assert len(sim.requests("ReqHistoricalData")) == before


def test_a_tws_restart_is_marked_and_its_gap_filled_by_the_new_backfill(pair: tuple[Simulator, Bridge]) -> None:
    sim, bridge = pair
    listener = Listener(bridge, "hbars/INTC")
    try:
        reply = bridge.request(hbars("INTC", "5 secs", what="MIDPOINT"), timeout=10)
        assert reply["ok"] and reply["backfilled"], reply
        topic, seq = reply["topic"], reply["seq"]
        listener.wait(lambda: closes(listener.on(topic, seq)), 8, "a bar closing before the restart")
        sim.fault("restart", seconds=6)  # more than a bar's length without TWS

        def resumed_and_flowing() -> bool:
            events = [p["event"] for p in listener.on(topic, seq)]
            return "resumed" in events and events[events.index("resumed") :].count("bar_close") >= 2

        listener.wait(resumed_and_flowing, 25, "the line back, its gap filled, and bars closing again")
        live = listener.on(topic, seq)
    finally:
        listener.close()
    assert len([r for r in sim.requests("ReqHistoricalData") if r["symbol"] == "INTC"]) == 2, "asked again once"
    events = [p["event"] for p in live]
    stale, resumed = events.index("stale"), events.index("resumed")
    assert stale < resumed and live[stale]["reason"] == "tws_down" and live[resumed]["reason"] == "tws_down"
    assert "bar_close" not in events[stale + 1 : resumed], "nothing new while TWS is away"
    times = [row[0] for row in reply["backfill"]] + [p["tws_time"] for p in closes(live)]
    assert consecutive(times, 5), "the bars missed during the outage come after resumed: no gap, none twice"
    forming_then = [p for p in live[:stale] if p["event"] == "bar_update"][-1]["tws_time"]
    backfilled = [p for p in closes(live[resumed:]) if p["recv_ns"] == live[resumed]["recv_ns"]]
    assert backfilled and backfilled[0]["tws_time"] == forming_then, "the new backfill closes the bar of the outage"


def test_tws_losing_its_data_asks_the_line_again_and_the_bars_go_on(pair: tuple[Simulator, Bridge]) -> None:
    """1101 (IB connectivity back, data lost): TWS forgot its requests, so the line is cancelled and asked
    again through the scheduler; its bars go on from where they were."""
    sim, bridge = pair
    listener = Listener(bridge, "hbars/CSCO")
    try:
        reply = bridge.request(hbars("CSCO", "5 secs", what="MIDPOINT"), timeout=10)
        assert reply["ok"] and reply["backfilled"], reply
        topic, seq = reply["topic"], reply["seq"]
        sim.fault("connectivity", seconds=1, data_lost=True)

        def resumed_then_closing() -> bool:
            events = [p["event"] for p in listener.on(topic, seq)]
            return "resumed" in events and "bar_close" in events[events.index("resumed") :]

        listener.wait(resumed_then_closing, 12, "the line asked again and a bar closing after it")
        live = listener.on(topic, seq)
    finally:
        listener.close()
    journal = sim.requests()
    asked = [i for i, r in enumerate(journal) if r["request"] == "ReqHistoricalData" and r["symbol"] == "CSCO"]
    cancelled = [i for i, r in enumerate(journal) if r["request"] == "CancelHistoricalData"
                 and r["req_id"] == journal[asked[0]]["req_id"]]  # fmt: skip
    assert len(asked) == 2 and len(cancelled) == 1 and asked[0] < cancelled[0], "cancelled and asked again"
    markers = [(p["event"], p["reason"]) for p in live if p["event"] in ("stale", "resumed")]
    assert markers == [("stale", "ib_connectivity"), ("resumed", "ib_connectivity")]
    times = [row[0] for row in reply["backfill"]] + [p["tws_time"] for p in closes(live)]
    assert consecutive(times, 5)


def test_a_line_that_must_wait_for_ib_pacing_says_so_and_its_bars_follow_on_the_topic(
    pair: tuple[Simulator, Bridge], tmp_path: Path
) -> None:
    """A second bridge keeps IB's rules at half their length (8 s between identical requests): asking
    for a line again right after cancelling it must wait for the rule, and the reply says so at once."""
    sim, _ = pair
    slow = Bridge(tmp_path, sim.port, extra=["--history-time-scale", "0.5", "--client-id", "18"])
    listener = Listener(slow, "hbars/QCOM")
    try:
        first = slow.request(hbars("QCOM", "5 secs"), timeout=10)
        assert first["ok"] and first["backfilled"]
        assert slow.request({"op": "unsubscribe", "id": first["id"]})["ok"]
        asked = time.monotonic()
        again = slow.request(hbars("QCOM", "5 secs"), timeout=10)
        assert time.monotonic() - asked < 2, "a wait for IB's pacing is said at once, not sat out"
        assert again["ok"] and again["backfilled"] is False and again["backfill"] == []
        assert again["queued_behind"] >= 0 and 3 < again["eta_s"] <= 9, again

        def forming_came() -> bool:  # published after every bar of the backfill
            return any(p["event"] == "bar_update" for p in listener.on(again["topic"], again["seq"]))

        listener.wait(forming_came, 15, "the backfill on the topic, up to the forming bar")
        assert time.monotonic() - asked > 5
        backfill = closes(listener.on(again["topic"], again["seq"]))
        assert len(backfill) >= 700 and consecutive([p["tws_time"] for p in backfill], 5)
    finally:
        listener.close()
        slow.stop()
    requests = [r for r in sim.requests("ReqHistoricalData") if r["symbol"] == "QCOM"]
    assert len(requests) == 2 and requests[1]["t"] - requests[0]["t"] >= 7.5

"""The bridge as users run it: real simulator and bridge processes, real ZeroMQ and TCP."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
import zmq

from tests.harness import Bridge, Simulator, free_port, recv, wait_for


def test_two_consumers_of_one_instrument_cost_one_tws_request(bridge: Bridge, sim: Simulator) -> None:
    sub = bridge.subscriber("quote/BTC.CRYPTO.PAXOS.USD")
    time.sleep(0.2)
    first = bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})
    second = bridge.request({"op": "subscribe", "instrument": {"symbol": "BTC", "secType": "CRYPTO",
                                                                 "exchange": "PAXOS", "currency": "USD"}})  # fmt: skip
    assert first["ok"] and second["ok"], (first, second)
    assert first["topic"] == second["topic"] == "quote/BTC.CRYPTO.PAXOS.USD"
    assert first["id"] != second["id"]
    topic, payload = recv(sub)
    assert topic == first["topic"] and payload["instrument"] == "BTC.CRYPTO.PAXOS.USD" and payload["v"] == 1
    assert len(sim.requests("ReqMktData")) == 1
    listing = bridge.request({"op": "list"})["subscriptions"]
    assert [(s["topic"], s["consumers"]) for s in listing] == [("quote/BTC.CRYPTO.PAXOS.USD", 2)]

    assert bridge.request({"op": "unsubscribe", "id": first["id"]}) == {"ok": True}
    time.sleep(0.3)
    assert sim.requests("CancelMktData") == []
    assert bridge.request({"op": "unsubscribe", "id": second["id"]}) == {"ok": True}
    wait_for(lambda: sim.requests("CancelMktData"), 5, "the cancel at TWS")
    assert bridge.request({"op": "list"})["subscriptions"] == []


def test_a_late_joiner_gets_the_latest_values_in_its_reply(bridge: Bridge) -> None:
    early = bridge.request({"op": "subscribe", "instrument": "AAPL"})
    assert early["ok"]
    time.sleep(0.5)
    late = bridge.request({"op": "subscribe", "instrument": "AAPL"})
    latest = late["latest"]
    assert {"bid", "ask", "last", "bid_size", "ask_size"} <= set(latest)
    assert latest["bid"] < latest["ask"]


def test_payloads_follow_the_documented_schema_with_per_topic_sequence(bridge: Bridge) -> None:
    sub = bridge.subscriber("quote/")
    time.sleep(0.2)
    assert bridge.request({"op": "subscribe", "instrument": "ETH.CRYPTO"})["ok"]
    seqs = []
    for _ in range(20):
        _, p = recv(sub)
        assert {"v", "kind", "event", "instrument", "seq", "recv_ns", "tws_time"} <= set(p)
        assert p["kind"] == "quote" and abs(p["recv_ns"] - time.time_ns()) < 5e9
        if p["event"] == "tick_price":
            assert isinstance(p["price"], float) and p["tick"] in {"bid", "ask", "last", "high", "low", "close", "open"}
        seqs.append(p["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + 20))


def test_a_consumer_that_stops_renewing_loses_its_subscription_after_its_lease(bridge: Bridge, sim: Simulator) -> None:
    reply = bridge.request({"op": "subscribe", "instrument": "MSFT", "lease": 1})
    assert reply["ok"] and reply["lease"] == 1
    renewed = bridge.request({"op": "renew", "ids": [reply["id"]]})
    assert renewed == {"ok": True, "renewed": [reply["id"]], "unknown": []}
    wait_for(lambda: sim.requests("CancelMktData"), 5, "the lease to lapse and the line to be cancelled")
    assert bridge.request({"op": "renew", "ids": [reply["id"]]})["unknown"] == [reply["id"]]
    assert bridge.metrics()["twsbridge_lease_expiries_total"] == 1


def test_unknown_symbols_get_tws_words_and_ours(bridge: Bridge) -> None:
    reply = bridge.request({"op": "subscribe", "instrument": "NOSUCH.STK"})
    assert reply["ok"] is False and reply["code"] == "unknown_instrument" and reply["tws_code"] == 200
    assert "No security definition" in reply["error"] and "check symbol" in reply["error"]


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"\xc1\xff not msgpack", "not valid msgpack"),
        (b"\x93\x01\x02\x03", "must be a msgpack map"),
        ({"op": 5}, "needs 'op'"),
        ({"op": "launch"}, "unknown op"),
        ({"op": "subscribe"}, "needs 'instrument'"),
        ({"op": "subscribe", "instrument": "AAPL", "kind": "options"}, "kind 'options'"),
        ({"op": "subscribe", "instrument": "AAPL", "lease": "long"}, "lease"),
        ({"op": "subscribe", "instrument": ["AAPL"]}, "short-form string"),
        ({"op": "unsubscribe", "id": "nope"}, "no subscription"),
        (b"\x81\xa2op" + b"\xda\xff\xff" + b"x" * 65535, "byte limit"),
    ],
)
def test_garbage_on_the_request_socket_gets_a_clear_error_and_the_bridge_carries_on(
    bridge: Bridge, garbage: dict | bytes, says: str
) -> None:
    reply = bridge.request(garbage)
    assert reply["ok"] is False and says in reply["error"], reply
    assert bridge.request({"op": "ping"})["ok"]


def test_metrics_show_the_counts_moving(bridge: Bridge) -> None:
    before = bridge.metrics()
    assert before["twsbridge_tws_up"] == 1
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})["ok"]
    time.sleep(1.0)
    after = bridge.metrics()
    assert after["twsbridge_messages_published_total"] > before["twsbridge_messages_published_total"]
    assert after['twsbridge_tws_messages_received_total{kind="tick_price"}'] > 0
    assert after["twsbridge_lines_in_use"] == 1 and after["twsbridge_subscriptions"] == 1
    assert after['twsbridge_rep_requests_total{op="subscribe",outcome="ok"}'] == 1
    assert after["twsbridge_publish_latency_seconds_count"] > 0


def test_sigterm_cancels_at_tws_says_so_and_exits_zero_within_two_seconds(bridge: Bridge, sim: Simulator) -> None:
    state = bridge.subscriber("state")
    time.sleep(0.2)
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})["ok"]
    assert bridge.request({"op": "subscribe", "instrument": "AAPL", "kind": "trades"})["ok"]
    started = time.monotonic()
    bridge.signal(signal.SIGTERM)
    assert bridge.wait(timeout=2) == 0
    assert time.monotonic() - started < 2
    wait_for(lambda: sim.requests("CancelMktData") and sim.requests("CancelTickByTickData"), 3, "cancels at TWS")
    states = []
    state.setsockopt(zmq.RCVTIMEO, 300)
    while True:
        try:
            states.append(recv(state)[1])
        except Exception:
            break
    assert states[-1]["event"] == "connection" and states[-1]["state"] == "stopped"


def test_subscribers_leaving_while_the_bridge_stops_do_not_hang_it(bridge: Bridge) -> None:
    """A whole host going down at once (systemctl stop, docker compose down): consumers disconnect
    while the bridge is still cancelling its lines at TWS's pace. It must still exit, promptly."""
    symbols = ("AAPL", "MSFT", "NVDA", "AVGO", "ADBE", "CSCO", "INTC", "QCOM", "TXN", "AMD", "INTU", "AMAT")
    subscribers = [bridge.subscriber("quote/") for _ in range(4)]
    for symbol in symbols:  # 12 cancels 20 ms apart: a quarter of a second of stopping
        assert bridge.request({"op": "subscribe", "instrument": f"{symbol}.STK.SMART.USD"})["ok"]
    wait_for(lambda: bridge.metrics()["twsbridge_pub_connections"] == 4, 5, "the subscribers connected")
    started = time.monotonic()
    bridge.signal(signal.SIGTERM)
    time.sleep(0.05)
    for sock in subscribers:
        sock.close(linger=0)
    assert bridge.wait(timeout=8) == 0
    assert time.monotonic() - started < 8
    assert "stopped" in bridge.output.splitlines()[-1]


def test_a_stop_as_tws_goes_away_ends_promptly(bridge: Bridge, sim: Simulator) -> None:
    """TWS (or the whole host) going down as the bridge is stopped: its tasks may be woken by the lost
    connection and cancelled by the stop in one turn of the loop, and every one of them must end.
    (Whether they meet in one turn is up to timing here; tests/test_waits.py makes it certain.)"""
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})["ok"]
    assert bridge.request({"op": "subscribe", "instrument": "AAPL", "conflate": 0.1})["ok"]
    time.sleep(0.5)
    sim.signal(signal.SIGKILL)
    bridge.signal(signal.SIGTERM)
    assert bridge.wait(timeout=8) == 0
    assert "stopped" in bridge.output.splitlines()[-1]


def test_a_tws_restart_is_survived_and_subscriptions_come_back(tmp_path: Path, sim: Simulator, bridge: Bridge) -> None:
    sub = bridge.subscriber("quote/BTC.CRYPTO.PAXOS.USD", "state")
    time.sleep(0.2)
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})["ok"]
    sim.stop()
    wait_for(lambda: bridge.metrics()["twsbridge_tws_up"] == 0, 5, "tws_up to drop")
    assert bridge.request({"op": "subscribe", "instrument": "ETH.CRYPTO"})["code"] == "not_connected"
    restarted = Simulator(tmp_path, port=sim.port, journal=tmp_path / "journal2.jsonl")
    try:
        wait_for(
            lambda: restarted.requests("ReqMktData"), 30, "the bridge to re-request after the restart"
        )  # its retries back off
        seen: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ("state", "restored") not in seen:
            topic, p = recv(sub)
            seen.add((topic, p.get("state", p["event"])))
        assert ("state", "disconnected") in seen and ("state", "connected") in seen and ("state", "restored") in seen
        topic, p = recv(sub)
        while topic == "state":
            topic, p = recv(sub)
        assert topic == "quote/BTC.CRYPTO.PAXOS.USD"
        assert bridge.metrics()["twsbridge_tws_up"] == 1
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    ("kind", "event", "tws_request"),
    [
        ("trades", "trade", "ReqTickByTickData"),
        ("alltrades", "trade", "ReqTickByTickData"),
        ("bidask", "bid_ask", "ReqTickByTickData"),
        ("midpoint", "midpoint", "ReqTickByTickData"),
        ("bars", "bar", "ReqRealTimeBars"),
        ("depth", "depth", "ReqMktDepth"),
    ],
)
def test_every_data_kind_flows_through_its_own_tws_request(
    bridge: Bridge, sim: Simulator, kind: str, event: str, tws_request: str
) -> None:
    sub = bridge.subscriber(f"{kind}/AAPL.STK.SMART.USD")
    time.sleep(0.2)
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "kind": kind})
    assert reply["ok"] and reply["topic"] == f"{kind}/AAPL.STK.SMART.USD", reply
    topic, p = recv(sub)
    while p["event"] == "error":  # e.g. a depth notice; the data follows
        topic, p = recv(sub)
    assert (topic, p["kind"], p["event"]) == (reply["topic"], kind, event)
    if kind in ("trades", "alltrades", "bidask", "midpoint", "bars"):
        assert isinstance(p["tws_time"], int) and abs(p["tws_time"] - time.time()) < 60
    assert len(sim.requests(tws_request)) == 1
    assert bridge.request({"op": "unsubscribe", "id": reply["id"]}) == {"ok": True}


def test_delayed_quotes_switch_the_market_data_type_first(bridge: Bridge, sim: Simulator) -> None:
    sub = bridge.subscriber("quote/MSFT.STK.SMART.USD/delayed")
    time.sleep(0.2)
    reply = bridge.request({"op": "subscribe", "instrument": "MSFT", "market_data_type": "delayed"})
    assert reply["ok"] and reply["topic"] == "quote/MSFT.STK.SMART.USD/delayed"
    names = [r["request"] for r in sim.requests()]
    assert names.index("ReqMarketDataType") < names.index("ReqMktData")
    ticks = {recv(sub)[1].get("tick") for _ in range(12)}
    assert {"delayed_bid", "delayed_ask"} & ticks


def test_a_taken_client_id_is_reported_in_status_and_retried_with_backoff(
    tmp_path: Path, sim: Simulator, bridge: Bridge
) -> None:
    second = Bridge(tmp_path, sim.port, wait_ready=False)  # same client id as the running bridge
    try:
        error = wait_for(lambda: second.request({"op": "status"})["tws"]["last_error"], 10, "the 326 refusal")
        assert error["code"] == 326 and "client id" in error["hint"]
        assert second.request({"op": "status"})["tws"]["connected"] is False
        assert second.request({"op": "subscribe", "instrument": "AAPL"})["code"] == "not_connected"

        def delays_logged() -> list[float]:
            return [float(x) for x in re.findall(r"reconnecting in ([0-9.]+) s", second.output)]

        delays = wait_for(lambda: len(delays_logged()) >= 3 and delays_logged(), 15, "three retries")
        assert delays[2] > 2 * delays[0], f"each refusal waits longer (jittered doubling): {delays}"
    finally:
        second.stop()
    assert bridge.request({"op": "status"})["tws"]["connected"] is True


def test_request_input_cannot_create_metric_labels(bridge: Bridge) -> None:
    for op in ("xyz123", "subscribe2", "a" * 50):
        assert bridge.request({"op": op})["code"] == "bad_request"
    names = bridge.metrics()
    assert names['twsbridge_rep_requests_total{op="invalid",outcome="bad_request"}'] == 3
    assert not any("xyz123" in name or "subscribe2" in name for name in names)


def test_a_bridge_started_before_tws_says_so_and_connects_when_tws_comes(tmp_path: Path) -> None:
    port = free_port()
    bridge = Bridge(tmp_path, port, wait_ready=False)
    try:
        wait_for(lambda: "cannot reach TWS" in bridge.output, 5, "the bridge to say TWS is not there")
        assert "API enabled on that port" in bridge.output
        assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["code"] == "not_connected"
        sim = Simulator(tmp_path, port=port)
        try:
            wait_for(lambda: bridge.request({"op": "status"})["tws"]["connected"], 15, "the bridge to connect")
            assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["ok"]
        finally:
            sim.stop()
    finally:
        bridge.stop()


def test_the_bridge_runs_on_uvloop_where_it_is_installed(bridge: Bridge) -> None:
    """uvloop halves the cost of each TWS read (bench/e2e.py); a silent fall-back would double it."""
    pytest.importorskip("uvloop", reason="uvloop is a dependency on Linux and macOS only")
    wait_for(lambda: "event loop: " in bridge.output, 10, "the bridge's start-up log")
    assert "event loop: uvloop.Loop" in bridge.output

"""The bridge against a TWS that misbehaves as a real one does: real processes, the simulator's faults.

What a consumer must be able to rely on: a silent or half-dead TWS is noticed within the
configured time and said so (state topic, stale markers on its own topic, Prometheus,
status), TWS's connection codes are reflected, and data comes back soon after TWS does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from tests.harness import Bridge, Simulator, free_port, wait_for

FAST = ["--heartbeat", "0.5", "--tws-timeout", "3", "--handshake-timeout", "1.5"]


class Watcher:
    """A SUB socket on everything, kept in order, with waits by predicate."""

    def __init__(self, bridge: Bridge) -> None:
        self.sock = bridge.subscriber("")
        self.seen: list[tuple[str, dict[str, Any], float]] = []
        time.sleep(0.3)  # the SUB filter reaches the bridge

    def pump(self) -> None:
        """Take what has arrived, waiting at most 0.1 s for the first message (a live stream never pauses)."""
        if not self.sock.poll(100):
            return
        while True:
            try:
                topic, payload = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.seen.append((topic.decode(), msgpack.unpackb(payload), time.monotonic()))

    def wait(self, match: Any, timeout: float = 15.0, what: str = "message") -> tuple[str, dict[str, Any], float]:
        deadline = time.monotonic() + timeout
        start = 0
        while time.monotonic() < deadline:
            self.pump()
            for item in self.seen[start:]:
                if match(item[0], item[1]):
                    return item
            start = len(self.seen)
        raise AssertionError(
            f"no {what} within {timeout} s; last: {[(t, b.get('event')) for t, b, _ in self.seen[-8:]]}"
        )

    def events(self, topic: str) -> list[str]:
        self.pump()
        return [b["event"] for t, b, _ in self.seen if t == topic]


def state(event: str, **fields: Any) -> Any:
    return lambda t, b: t == "state" and b.get("event") == event and all(b.get(k) == v for k, v in fields.items())


def on(topic: str, event: str, **fields: Any) -> Any:
    return lambda t, b: t == topic and b["event"] == event and all(b.get(k) == v for k, v in fields.items())


def data(topic: str) -> Any:
    return lambda t, b: t == topic and b["event"] in ("tick_price", "tick_size")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    s = Simulator(tmp_path, rate=20)
    yield s
    s.stop()


@pytest.fixture
def bridge(tmp_path: Path, sim: Simulator) -> Iterator[Bridge]:
    b = Bridge(tmp_path, sim.port, extra=FAST)
    yield b
    b.stop()


def subscribed(bridge: Bridge, watcher: Watcher, instrument: str = "BTC.CRYPTO") -> str:
    reply = bridge.request({"op": "subscribe", "instrument": instrument, "lease": 300})
    assert reply["ok"], reply
    watcher.wait(data(reply["topic"]), what="first data")
    return str(reply["topic"])


def test_a_stalled_tws_is_declared_stalled_then_down_and_reconnected(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("stall", seconds=60)
    _, stalled, t_stalled = w.wait(state("connection", state="stalled"), what="stalled")
    assert "not answered a heartbeat" in stalled["message"]
    w.wait(on(topic, "stale", reason="tws_stalled"))
    assert bridge.metrics()["twsbridge_tws_up"] == 0
    status = bridge.request({"op": "status"})
    assert status["tws"]["state"] == "stalled" and status["stale_topics"] == 1
    _, down, t_down = w.wait(state("connection", state="disconnected"), what="disconnected")
    assert "sent nothing for" in down["message"] and 0.5 < t_down - t_stalled < 10
    sim.fault("clear")  # TWS wakes up: the bridge is already connecting again
    w.wait(state("connection", state="connected"), what="reconnected")
    w.wait(on(topic, "resumed"))
    w.wait(data(topic), what="data after the stall")
    assert bridge.metrics()["twsbridge_tws_stalls_total"] == 1
    assert w.events(topic).count("stale") == 1, "a stall that ends in a reconnect is one outage window"


def test_a_short_stall_recovers_without_a_reconnect(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("stall", seconds=2.2)  # past 'stalled' (1.5 s), short of 'down' (3 s)
    w.wait(state("connection", state="stalled"))
    w.wait(state("connection", state="connected", message="TWS answers again after a stall"))
    w.wait(on(topic, "resumed", reason="tws_stalled"))
    assert len(sim.requests("StartApi")) == 1, "the same session carries on"
    assert bridge.metrics()["twsbridge_tws_up"] == 1


def test_a_quiet_healthy_tws_is_never_stalled(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    time.sleep(4)  # no subscriptions: TWS sends nothing unless asked; the heartbeat asks
    assert not [b for t, b, _ in w.seen if t == "state" and b.get("state") == "stalled"]
    assert len(sim.requests("ReqCurrentTime")) >= 3, "heartbeats while idle"
    assert bridge.request({"op": "status"})["tws"]["state"] == "connected"


@pytest.mark.parametrize("fault", ["mute_handshake", "withhold_ready"])  # no greeting; no nextValidId
def test_a_tws_that_never_finishes_the_handshake_is_dropped_and_retried(
    tmp_path: Path, sim: Simulator, fault: str
) -> None:
    sim.fault(fault, seconds=2)
    bridge = Bridge(tmp_path, sim.port, extra=FAST, wait_ready=False)
    try:
        wait_for(lambda: "did not finish the API handshake" in bridge.output, 10, "the handshake deadline")
        wait_for(lambda: bridge.request({"op": "status"})["tws"]["connected"], 15, "a later connect to succeed")
    finally:
        bridge.stop()


def test_data_is_back_within_seconds_after_a_restart_window(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("restart", seconds=6)
    w.wait(on(topic, "stale", reason="tws_down"))
    rows = wait_for(lambda: [r for r in sim.journal_rows() if r.get("fault") == "end"], 15, "the listener back")
    back_at = rows[0]["t"]
    _, first, _ = w.wait(lambda t, b: data(topic)(t, b) and b["recv_ns"] > back_at * 1e9, what="data after restart")
    delay = first["recv_ns"] / 1e9 - back_at
    assert delay < 4, f"data came {delay:.1f} s after TWS listened again (the fast poll is 1 s)"
    events = w.events(topic)
    after = events[events.index("stale") + 1 :]
    assert after[0] == "resumed" and after[1] not in ("stale", "resumed"), "resumed comes with the first new data"


def test_connectivity_lost_and_kept_marks_the_topic_and_requests_nothing_again(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("connectivity", seconds=1.5)
    w.wait(state("ib_connection", state="lost", code=1100))
    w.wait(on(topic, "stale", reason="ib_connectivity", code=1100))
    assert bridge.metrics()["twsbridge_tws_ib_connected"] == 0
    assert bridge.request({"op": "status"})["tws"]["ib_connected"] is False
    w.wait(state("ib_connection", state="restored", data_lost=False, code=1102))
    w.wait(on(topic, "resumed", code=1102))
    w.wait(data(topic))
    assert len(sim.requests("ReqMktData")) == 1, "1102: TWS kept the data; nothing is asked again"


def test_connectivity_restored_with_data_lost_requests_every_line_again(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("connectivity", seconds=1, data_lost=True)
    w.wait(state("ib_connection", state="restored", data_lost=True, code=1101))
    w.wait(on(topic, "resumed", code=1101))
    wait_for(lambda: len(sim.requests("ReqMktData")) == 2, 10, "the line requested again")
    n = len(w.events(topic))
    w.wait(lambda t, b: data(topic)(t, b) and len(w.events(topic)) > n + 1, what="data after 1101")


def test_farm_blips_are_state_metrics_and_markers(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("farm", farm="historical", seconds=1)
    w.wait(state("farm", farm="historical", name="ushmds", state="broken", code=2105))
    w.wait(state("farm", farm="historical", state="ok", code=2106))
    assert "stale" not in w.events(topic), "history's farm does not stop market data"
    sim.fault("farm", farm="market", seconds=2)
    w.wait(state("farm", farm="market", name="usfarm", state="broken"))
    w.wait(on(topic, "stale", reason="market_farm", code=2103))
    assert bridge.metrics()['twsbridge_tws_farm_up{farm="market"}'] == 0
    assert bridge.request({"op": "status"})["tws"]["farms"]["market"] == {"usfarm": "broken"}
    w.wait(on(topic, "resumed", reason="market_farm", code=2104))
    assert bridge.metrics()['twsbridge_tws_farm_up{farm="market"}'] == 1


def test_a_competing_session_marks_its_streams_until_data_flows(sim: Simulator, bridge: Bridge) -> None:
    w = Watcher(bridge)
    topic = subscribed(bridge, w)
    sim.fault("competing_session", seconds=1.5)
    w.wait(on(topic, "error", code=10197))
    w.wait(on(topic, "stale", reason="competing_session", code=10197))
    assert bridge.metrics()["twsbridge_stale_topics"] == 1
    w.wait(on(topic, "resumed", reason="competing_session"))
    assert bridge.metrics()["twsbridge_stale_topics"] == 0
    assert bridge.request({"op": "list"})["subscriptions"], "10197 does not end the subscription"


def test_sessions_that_break_the_protocol_are_retried_with_growing_waits(tmp_path: Path, sim: Simulator) -> None:
    bridge = Bridge(tmp_path, sim.port, extra=FAST)
    try:
        for session in range(1, 5):
            wait_for(lambda n=session: len(sim.requests("StartApi")) >= n, 30, f"session {session}")
            time.sleep(0.3)
            sim.fault("overlong_length")
        wait_for(lambda: len(sim.requests("StartApi")) >= 5, 40, "the fifth session")
        starts = [r["t"] for r in sim.requests("StartApi")]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert gaps[-1] > gaps[0] + 1, f"the bridge backs off between broken sessions: {gaps}"
        assert "broke the protocol" in bridge.output
    finally:
        bridge.stop()


def test_state_codes_never_create_metric_labels_from_tws_text(tmp_path: Path) -> None:
    port = free_port()
    bridge = Bridge(tmp_path, port, extra=FAST, wait_ready=False)
    try:
        names = bridge.metrics()
        farms = {k for k in names if k.startswith("twsbridge_tws_farm_up")}
        assert farms == {f'twsbridge_tws_farm_up{{farm="{k}"}}' for k in ("market", "historical", "secdef")}
        assert bridge.request({"op": "status"})["tws"]["state"] == "disconnected"
    finally:
        bridge.stop()

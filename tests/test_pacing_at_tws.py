"""TWS's 50 messages a second, as TWS receives them: restores after a restart and the cancels at
shutdown, read from the simulator's journal (receive times per connection). The simulator
enforces the limit (error 100, then disconnect), so the bridge must never see error 100."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.simulator import CATALOGUE
from bridge.simulator.limits import busiest_second
from tests.harness import Bridge, Simulator, wait_for

LINES = 130


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    s = Simulator(tmp_path, rate=1, extra=["--max-lines", "1000"])
    yield s
    s.stop()


def open_lines(bridge: Bridge, count: int = LINES) -> None:
    """`count` lines of distinct stocks from the simulator's catalogue."""
    symbols = [i.contract.symbol for i in CATALOGUE if i.contract.sec_type == "STK"][:count]
    assert len(symbols) == count
    for symbol in symbols:
        reply = bridge.request({"op": "subscribe", "instrument": symbol, "lease": 600})
        assert reply["ok"], reply


def no_rate_errors(bridge: Bridge) -> None:
    assert bridge.metrics().get('twsbridge_tws_errors_total{code="100"}', 0) == 0
    assert "Max rate of messages" not in bridge.output


def test_restoring_lines_after_a_restart_stays_under_50_a_second_at_tws(sim: Simulator, bridge: Bridge) -> None:
    open_lines(bridge)
    first = [r for r in sim.requests("ReqMktData")]
    assert len(first) == LINES
    sim.fault("restart", seconds=1)
    wait_for(lambda: len(sim.requests("ReqMktData")) == 2 * LINES, 40, "every line restored")
    wait_for(lambda: bridge.metrics()["twsbridge_tws_up"] == 1, 10, "TWS up")
    rows = sim.requests()
    conns = {r["conn"] for r in rows}
    assert len(conns) == 2, "one reconnect, no disconnect for a rate violation"
    assert busiest_second(rows) <= 50
    no_rate_errors(bridge)
    assert "pacing:" in bridge.output


def test_a_dropped_connection_restores_under_the_limit_too(sim: Simulator, bridge: Bridge) -> None:
    open_lines(bridge)
    sim.fault("drop", reset=True)
    wait_for(lambda: len(sim.requests("ReqMktData")) == 2 * LINES, 40, "every line restored")
    assert busiest_second(sim.requests()) <= 50
    assert len({r["conn"] for r in sim.requests()}) == 2
    no_rate_errors(bridge)


def test_the_cancels_at_shutdown_are_paced_and_all_reach_tws(sim: Simulator, bridge: Bridge) -> None:
    open_lines(bridge)
    no_rate_errors(bridge)
    bridge.signal(signal.SIGTERM)
    assert bridge.wait(15) == 0
    cancels = sim.requests("CancelMktData")
    assert len(cancels) == LINES
    assert busiest_second(sim.requests()) <= 50
    assert f"cancelled {LINES} TWS requests" in bridge.output
    assert "Max rate of messages" not in bridge.output


def test_shutdown_cancels_are_bounded_in_time_and_say_what_was_left(tmp_path: Path, sim: Simulator) -> None:
    bridge = Bridge(tmp_path, sim.port, extra=["--shutdown-cancel-seconds", "0.5"])
    try:
        open_lines(bridge)
        bridge.signal(signal.SIGTERM)
        assert bridge.wait(10) == 0
        sent = len(sim.requests("CancelMktData"))
        assert 0 < sent < LINES  # 0.5 s at 45 per 1.2 s cannot carry 130
        assert f"{LINES - sent} not sent within 0.5 s" in bridge.output
        assert busiest_second(sim.requests()) <= 50
    finally:
        bridge.stop()

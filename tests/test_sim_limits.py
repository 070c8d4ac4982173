"""TWS's limits as the simulator enforces them, and the fault control an operator uses, over real TCP."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.protocol import Contract
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.simulator import SimulatorThread
from bridge.simulator.limits import MessageRate

from .harness import ROOT, Process, free_port, wait_for
from .twsclient import Client, error_with, of

BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD")
AAPL = Contract("AAPL", "STK", "SMART", "USD")
_ids = itertools.count(1)


def started(port: int) -> Client:
    c = Client(port, client_id=next(_ids))
    c.wait_for(of(ev.NextValidId))
    return c


# --- the message rate --------------------------------------------------------------------------------


def test_a_burst_over_50_gets_error_100_and_a_persistent_flood_is_disconnected() -> None:
    with SimulatorThread() as sim:
        c = started(sim.port)
        for burst in (1, 2):
            c.sock.sendall(b"".join(c.conn.send(rq.ReqCurrentTime()) for _ in range(60)))
            warning = c.wait_for(error_with(100, -1))
            assert isinstance(warning, ev.Error)
            assert warning.message.startswith("Max rate of messages per second has been exceeded:max=50 rec=")
            assert warning.message.endswith(f"({burst})")
            assert not c.closed, "one violation is a warning"
            time.sleep(1.1)
        c.sock.sendall(b"".join(c.conn.send(rq.ReqCurrentTime()) for _ in range(60)))
        c.wait_for(error_with(100, -1))
        assert c.wait_closed(), "the third violation within 10 s closes the connection"


def test_fifty_a_second_is_within_the_limit() -> None:
    with SimulatorThread() as sim:
        c = started(sim.port)
        for _ in range(2):
            c.sock.sendall(b"".join(c.conn.send(rq.ReqCurrentTime()) for _ in range(49)))  # + startApi: 50
            time.sleep(2.0)
        events = c.collect(0.5)
        assert not [e for e in events if isinstance(e, ev.Error) and e.code == 100]
        assert sum(isinstance(e, ev.CurrentTime) for e in events) == 98


def test_the_rate_limit_can_be_lifted() -> None:
    with SimulatorThread(max_messages_per_second=0) as sim:
        c = started(sim.port)
        c.sock.sendall(b"".join(c.conn.send(rq.ReqCurrentTime()) for _ in range(300)))
        events = c.collect(1.0)
        assert sum(isinstance(e, ev.CurrentTime) for e in events) == 300 and not c.closed


@given(st.lists(st.floats(min_value=0, max_value=0.2), min_size=1, max_size=300))
def test_error_100_comes_exactly_when_a_sliding_second_holds_more_than_the_limit(gaps: list[float]) -> None:
    rate = MessageRate(limit=10, window=1.0, strikes=10**9)
    now, times, expected_violating = 0.0, [], []
    for gap in gaps:
        now += gap
        times.append(now)
        in_window = [t for t in times if t > now - 1.0]
        expected_violating.append(len(in_window) > 10)
        violation = rate.arrived(now)
        if violation is not None:
            assert len(in_window) > 10 and violation.received == len(in_window)
    # one warning per second of violation, never a silent violation stretch longer than that
    warned = 0
    last = -10.0
    rate = MessageRate(limit=10, window=1.0, strikes=10**9)
    for t, bad in zip(times, expected_violating, strict=True):
        if rate.arrived(t) is not None:
            warned += 1
            assert t - last >= 1.0
            last = t
        elif bad:
            assert t - last < 1.0, "a violation more than a second after the last warning is warned"


# --- streams TWS counts ----------------------------------------------------------------------------------


def test_lines_count_market_data_only_not_snapshots_depth_or_tick_by_tick() -> None:
    with SimulatorThread(max_lines=2) as sim:
        c = started(sim.port)
        c.send(rq.ReqMktData(1, BTC))
        c.send(rq.ReqMktData(2, AAPL))
        c.send(rq.ReqTickByTickData(3, BTC, "BidAsk", 0, False))
        c.send(rq.ReqMktDepth(4, AAPL, 5, False))
        c.send(rq.ReqMktData(5, AAPL, snapshot=True))
        c.wait_for(of(ev.TickSnapshotEnd, 5))
        c.wait_for(of(ev.TickByTickBidAsk, 3))
        c.send(rq.ReqMktData(6, BTC))
        c.wait_for(error_with(101, 6))
        assert not [e for e in c.collect(0.3) if isinstance(e, ev.Error) and e.req_id in (1, 2, 3, 4, 5)]


@pytest.mark.parametrize("limit", [5, 2])
def test_tick_by_tick_streams_are_limited_with_10190(limit: int) -> None:
    options = {} if limit == 5 else {"max_tick_by_tick": limit}
    with SimulatorThread(**options) as sim:
        c = started(sim.port)
        for req_id in range(1, limit + 1):
            c.send(rq.ReqTickByTickData(req_id, BTC, "AllLast", 0, False))
        c.send(rq.ReqTickByTickData(99, BTC, "AllLast", 0, False))
        refusal = c.wait_for(error_with(10190, 99))
        assert (
            isinstance(refusal, ev.Error) and refusal.message == "Max number of tick-by-tick requests has been reached."
        )
        assert not [e for e in c.collect(0.3) if isinstance(e, ev.Error) and 0 < e.req_id <= limit]
        c.send(rq.CancelTickByTickData(1))
        c.send(rq.ReqTickByTickData(100, BTC, "AllLast", 0, False))
        c.wait_for(of(ev.TickByTickLast, 100))


def test_depth_books_are_limited_as_configured() -> None:
    with SimulatorThread(max_depth_books=4) as sim:
        c = started(sim.port)
        for req_id in range(1, 5):
            c.send(rq.ReqMktDepth(req_id, AAPL, 5, False))
        c.send(rq.ReqMktDepth(5, BTC, 5, False))
        refusal = c.wait_for(error_with(309, 5))
        assert isinstance(refusal, ev.Error) and "Max number (4) of market depth requests" in refusal.message


def test_the_journal_has_each_request_with_its_receive_time_and_connection(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with SimulatorThread(journal=journal) as sim:
        a = started(sim.port)
        sent = time.time()
        a.send(rq.ReqCurrentTime())
        a.wait_for(of(ev.CurrentTime))
        b = started(sim.port)
        b.send(rq.ReqCurrentTime())
        b.wait_for(of(ev.CurrentTime))
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(r["conn"], r["request"]) for r in rows] == [
        (1, "StartApi"), (1, "ReqCurrentTime"), (2, "StartApi"), (2, "ReqCurrentTime"),
    ]  # fmt: skip
    assert 0 <= rows[1]["t"] - sent < 5 and rows[0]["t"] <= rows[1]["t"] <= rows[3]["t"]


# --- the operator's command line ------------------------------------------------------------------------


def control(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.simulator.control", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_faults_and_limits_from_the_command_line(tmp_path: Path) -> None:
    port, control_port = free_port(), free_port()
    args = ["-m", "bridge.simulator", "--port", str(port), "--control", str(control_port), "--max-tick-by-tick", "1"]
    sim = Process("sim-cli", args, tmp_path)
    try:
        wait_for(lambda: "fault control on" in sim.output, 15, "the control port")
        c = started(port)
        c.send(rq.ReqTickByTickData(1, BTC, "AllLast", 0, False))
        c.send(rq.ReqTickByTickData(2, BTC, "AllLast", 0, False))
        c.wait_for(error_with(10190, 2))

        done = control(str(control_port), "farm", "farm=market", "seconds=30")
        assert done.returncode == 0, done.stderr
        c.wait_for(error_with(2103, -1))
        assert control(str(control_port), "clear").returncode == 0
        c.wait_for(error_with(2104, -1))

        wrong = control(str(control_port), "farm", "farm=options", "seconds=1")
        assert wrong.returncode == 1 and "is one of market, historical, secdef" in wrong.stderr
        assert "Traceback" not in wrong.stderr

        with socket.create_connection(("127.0.0.1", control_port), timeout=5) as s:
            s.sendall(b"not json\n" + b"x" * 10000 + b"\n")
            f = s.makefile("rb")
            assert json.loads(f.readline())["error"].startswith("not JSON")
            assert "at most 4096 bytes" in json.loads(f.readline())["error"]

        assert control(str(control_port), "drop").returncode == 0
        assert c.wait_closed()
    finally:
        sim.stop()
    assert "Traceback" not in sim.output


def test_the_control_command_lists_every_fault() -> None:
    listing = control("--list")
    assert listing.returncode == 0
    from bridge.simulator.faults import FAULTS

    assert all(f"\n{name}" in "\n" + listing.stdout for name in FAULTS)


def test_an_unreachable_control_port_and_a_bad_script_say_so(tmp_path: Path) -> None:
    missing = control(str(free_port()), "stall", "seconds=1")
    assert missing.returncode == 2 and "cannot reach the simulator's control port" in missing.stderr
    script = tmp_path / "day.json"
    script.write_text('[{"at": 1, "fault": "nap"}]')
    started_sim = subprocess.run(
        [sys.executable, "-m", "bridge.simulator", "--port", "0", "--faults", str(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert started_sim.returncode != 0
    assert "fault script entry 0: unknown fault 'nap'" in started_sim.stderr and "Traceback" not in started_sim.stderr

"""The simulator's faults, each seen by a real client over TCP as it would see them from TWS."""

from __future__ import annotations

import itertools
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.protocol import Contract
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.simulator import SimulatorThread
from bridge.simulator.faults import FAULTS, FaultError, check_args, load_script

from .twsclient import Client, error_with, of

BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD")
AAPL = Contract("AAPL", "STK", "SMART", "USD")
_ids = itertools.count(1)


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(rate=40, seed=3) as s:
        yield s


def streaming(sim: SimulatorThread, req_id: int = 1) -> Client:
    """A started client with BTC streaming on `req_id`."""
    c = Client(sim.port, client_id=next(_ids))
    c.wait_for(of(ev.NextValidId))
    c.send(rq.ReqMktData(req_id, BTC))
    c.wait_for(of(ev.TickPrice, req_id))
    return c


def ticks(events: list[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, ev.TickPrice | ev.TickSize)]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until(check, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


# --- the listening socket -------------------------------------------------------------------------


def test_refuse_closes_the_listener_for_its_window_then_listens_again(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("refuse", seconds=1.5)
    assert refused(sim.port)
    assert ticks(c.collect(0.3)), "a connection open before the window keeps its data"
    assert wait_until(lambda: not refused(sim.port)), "the simulator listens again after the window"
    streaming(sim, 2).close()
    c.close()


def test_close_listener_holds_until_open_listener(sim: SimulatorThread) -> None:
    sim.inject("close_listener")
    time.sleep(0.5)
    assert refused(sim.port)
    sim.inject("open_listener")
    assert wait_until(lambda: not refused(sim.port))


def test_restart_drops_every_connection_and_refuses_until_it_is_back(sim: SimulatorThread) -> None:
    clients = [streaming(sim), streaming(sim)]
    sim.inject("restart", seconds=1.5)
    assert all(c.wait_closed() for c in clients)
    assert refused(sim.port)
    assert wait_until(lambda: not refused(sim.port))
    c = streaming(sim)  # the same client ids may connect again
    c.close()


# --- handshake -------------------------------------------------------------------------------------


def test_mute_handshake_accepts_tcp_and_never_answers_the_greeting(sim: SimulatorThread) -> None:
    sim.inject("mute_handshake", seconds=1.0)
    muted = Client(sim.port, start=False)
    assert muted.collect(1.5) == [] and not muted.closed, "the socket stays open and says nothing"
    muted.close()
    healthy = Client(sim.port, client_id=next(_ids))  # connected after the window: a normal greeting
    healthy.wait_for(of(ev.NextValidId))
    healthy.close()


def test_withhold_ready_answers_the_greeting_but_never_sends_next_valid_id(sim: SimulatorThread) -> None:
    sim.inject("withhold_ready", seconds=5)
    c = Client(sim.port, client_id=next(_ids))  # the constructor waits for the greeting's answer
    assert not [e for e in c.collect(1.0) if isinstance(e, ev.NextValidId | ev.ManagedAccounts)]
    assert not c.closed
    c.close()


# --- stall and drops ---------------------------------------------------------------------------------


def test_stall_keeps_the_socket_open_sends_nothing_and_answers_afterwards(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("stall", seconds=1.5)
    c.collect(0.1)  # whatever was already in flight
    c.send(rq.ReqCurrentTime())
    assert c.collect(1.0) == [] and not c.closed, "nothing arrives, and the connection is still up"
    c.wait_for(of(ev.CurrentTime), timeout=5)  # read once the stall is over
    assert ticks(c.collect(0.5)), "data flows again"
    c.close()


def test_drop_now_closes_every_connection(sim: SimulatorThread) -> None:
    a, b = streaming(sim), streaming(sim)
    sim.inject("drop")
    assert a.wait_closed() and b.wait_closed()
    assert not a.reset, "a plain drop is an orderly close"
    assert not refused(sim.port), "the listener is untouched"


def test_drop_with_reset_sends_a_tcp_reset(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("drop", reset=True)
    assert c.wait_closed() and c.reset


def test_drop_one_client_leaves_the_others(sim: SimulatorThread) -> None:
    a, b = streaming(sim), streaming(sim)
    sim.inject("drop", client_id=a.conn.client_id)
    assert a.wait_closed()
    assert ticks(b.collect(0.5)) and not b.closed
    b.close()


def test_drop_after_messages_sends_exactly_that_many_more(sim: SimulatorThread) -> None:
    c = Client(sim.port, client_id=next(_ids))
    c.wait_for(of(ev.NextValidId))
    c.collect(0.3)  # the connect sequence's farm notices
    sim.inject("drop", after_messages=3)
    for _ in range(5):
        c.send(rq.ReqCurrentTime())
    assert c.wait_closed()
    assert [type(e) for e in c.collect(0.1)] == [ev.CurrentTime] * 3


def test_drop_after_seconds_closes_later(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("drop", after_seconds=1.0)
    assert ticks(c.collect(0.5)) and not c.closed
    assert c.wait_closed(timeout=5)


# --- connectivity, farms, competing session -------------------------------------------------------------


def test_connectivity_lost_then_restored_with_data_kept(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("connectivity", seconds=1.0)
    c.wait_for(error_with(1100, -1))
    c.collect(0.1)
    quiet = c.collect(0.6)
    assert not ticks(quiet), "no data while TWS is cut off from IB"
    c.wait_for(error_with(1102, -1), timeout=5)
    assert ticks(c.collect(0.5)), "1102: the subscription carries on without being asked again"
    c.close()


def test_connectivity_restored_with_data_lost_ends_every_stream(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("connectivity", seconds=0.5, data_lost=True)
    c.wait_for(error_with(1100, -1))
    c.wait_for(error_with(1101, -1), timeout=5)
    c.seen.clear()
    assert not ticks(c.collect(0.8)), "1101: the client's subscriptions are gone"
    c.send(rq.ReqMktData(1, BTC))  # the same id may be used again: TWS forgot it
    c.wait_for(of(ev.TickPrice, 1))
    c.close()


def test_a_broken_market_farm_pauses_data_until_it_is_ok(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("farm", farm="market", seconds=1.0)
    c.wait_for(error_with(2103, -1))
    c.collect(0.1)
    assert not ticks(c.collect(0.5))
    c.wait_for(error_with(2104, -1), timeout=5)
    assert ticks(c.collect(0.5))
    c.close()


def test_a_broken_secdef_farm_holds_contract_details_until_it_is_ok(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("farm", farm="secdef", seconds=1.0)
    c.wait_for(error_with(2157, -1))
    c.send(rq.ReqContractDetails(9, AAPL))
    assert not [e for e in c.collect(0.5) if isinstance(e, ev.ContractDetails)]
    c.wait_for(error_with(2158, -1), timeout=5)
    c.wait_for(of(ev.ContractDetails, 9))
    c.wait_for(of(ev.ContractDetailsEnd, 9))
    c.close()


def test_a_broken_historical_farm_holds_history_requests(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("farm", farm="historical", seconds=1.0)
    c.wait_for(error_with(2105, -1))
    c.send(rq.ReqHistoricalData(77, BTC, "", "1 D", "1 hour", "TRADES", False))
    assert not [e for e in c.collect(0.5) if getattr(e, "req_id", None) == 77]
    assert ticks(c.collect(0.2)), "market data does not depend on the historical farm"
    c.wait_for(error_with(2106, -1), timeout=5)
    c.wait_for(of(ev.HistoricalData, 77))
    c.close()


def test_a_competing_session_sends_10197_per_stream_and_no_data(sim: SimulatorThread) -> None:
    c = streaming(sim, 4)
    sim.inject("competing_session", seconds=1.0)
    c.wait_for(error_with(10197, 4))
    c.collect(0.1)
    c.send(rq.ReqMktData(5, AAPL))
    c.wait_for(error_with(10197, 5)), "a new request during it is told too"
    assert not ticks(c.collect(0.5))
    assert ticks(c.collect(1.5)), "data comes back when the other session ends"
    c.close()


def test_clear_ends_timed_faults_at_once(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("farm", farm="market", seconds=600)
    c.wait_for(error_with(2103, -1))
    sim.inject("clear")
    c.wait_for(error_with(2104, -1))
    assert ticks(c.collect(0.5))
    c.close()


# --- protocol faults --------------------------------------------------------------------------------------


def raw_client(sim: SimulatorThread) -> tuple[Client, socket.socket]:
    c = streaming(sim)
    c.collect(0.2)
    return c, c.sock


def read_some(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(0.2)
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        out += chunk
    return out


def test_a_garbage_frame_is_well_framed_junk_and_the_stream_goes_on(sim: SimulatorThread) -> None:
    c = streaming(sim)
    sim.inject("garbage_frame")
    junk = c.wait_for(lambda e: isinstance(e, ev.MalformedMessage | ev.Unhandled))
    assert junk is not None
    assert ticks(c.collect(0.5)) and not c.closed
    c.close()


def test_a_truncated_frame_is_followed_by_silence_on_an_open_socket(sim: SimulatorThread) -> None:
    c, sock = raw_client(sim)
    sim.inject("truncated_frame")
    data = read_some(sock, 1.0)
    # The last frame starts but never ends: its prefix promises more than ever arrives.
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if pos + 4 + n > len(data):
            break
        pos += 4 + n
    assert pos < len(data), "the stream ends inside a frame"
    assert read_some(sock, 0.6) == b"", "and then nothing"
    c.close()


def test_an_overlong_length_prefix_arrives_then_silence(sim: SimulatorThread) -> None:
    c, sock = raw_client(sim)
    sim.inject("overlong_length")
    data = read_some(sock, 1.0)
    assert struct.pack(">I", 0x7FFFFFF0) in data
    assert read_some(sock, 0.5) == b""
    c.close()


def test_a_malformed_field_arrives_inside_a_valid_message(sim: SimulatorThread) -> None:
    c = streaming(sim, 3)
    sim.inject("malformed_field")
    bad = c.wait_for(lambda e: isinstance(e, ev.MalformedMessage))
    assert isinstance(bad, ev.MalformedMessage) and b"1.2.3" in bad.fields
    assert ticks(c.collect(0.5)), "the stream goes on behind it"
    c.close()


# --- arguments and scripts --------------------------------------------------------------------------------


def test_a_wrong_fault_says_what_is_wrong(sim: SimulatorThread) -> None:
    with pytest.raises(FaultError, match="unknown fault 'nap'"):
        sim.inject("nap")
    with pytest.raises(FaultError, match="needs 'seconds'"):
        sim.inject("stall")
    with pytest.raises(FaultError, match="takes no argument 'minutes'"):
        sim.inject("stall", seconds=1, minutes=2)
    with pytest.raises(FaultError, match="is one of market, historical, secdef"):
        sim.inject("farm", farm="options", seconds=1)
    with pytest.raises(FaultError, match="more than 0"):
        sim.inject("stall", seconds=0)


@given(
    name=st.sampled_from([*FAULTS, "nope"]),
    args=st.dictionaries(
        st.sampled_from(["seconds", "farm", "reset", "after_messages", "data_lost", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers())),
        max_size=4,
    ),
)
def test_fault_arguments_are_checked_never_crash(name: str, args: dict[str, object]) -> None:
    try:
        checked = check_args(name, args)
    except FaultError:
        return
    assert set(checked) == set(FAULTS[name][1])


def test_scripts_load_from_json_and_toml_in_time_order(tmp_path: Path) -> None:
    js = tmp_path / "day.json"
    js.write_text(json.dumps([{"at": 5, "fault": "stall", "args": {"seconds": 2}}, {"at": 1, "fault": "clear"}]))
    toml = tmp_path / "day.toml"
    toml.write_text(
        '[[fault]]\nat = 5\nfault = "stall"\nargs = { seconds = 2 }\n\n[[fault]]\nat = 1\nfault = "clear"\n'
    )
    expected = [(1.0, "clear", {}), (5.0, "stall", {"seconds": 2.0})]
    assert load_script(js) == load_script(toml) == expected
    bad = tmp_path / "bad.json"
    bad.write_text('[{"at": 1, "fault": "stall"}]')
    with pytest.raises(FaultError, match="entry 0: fault 'stall' needs 'seconds'"):
        load_script(bad)


def scripted_day(tmp_path: Path, run: int) -> tuple[list[tuple[str, float]], bytes]:
    """Play a short day with seed 7; return (fault, offset from the first) and the junk bytes seen."""
    script = [
        {"at": 1.5, "fault": "garbage_frame"},
        {"at": 2.0, "fault": "farm", "args": {"farm": "market", "seconds": 0.3}},
        {"at": 3.0, "fault": "garbage_frame"},
    ]
    journal = tmp_path / f"journal-{run}.jsonl"
    with SimulatorThread(rate=20, seed=7, journal=journal, faults=script) as sim:
        c = streaming(sim)
        junk = b""
        for _ in range(2):
            e = c.wait_for(lambda e: isinstance(e, ev.MalformedMessage | ev.Unhandled), timeout=5)
            junk += b"".join(e.fields)  # type: ignore[union-attr]
        c.close()
    rows = [json.loads(x) for x in journal.read_text().splitlines()]
    faults = [r for r in rows if "fault" in r]
    return [(r["fault"], r["t"] - faults[0]["t"]) for r in faults], junk


def test_a_scripted_day_replays_the_same_faults_at_the_same_offsets(tmp_path: Path) -> None:
    first, junk1 = scripted_day(tmp_path, 1)
    second, junk2 = scripted_day(tmp_path, 2)
    assert (
        [name for name, _ in first] == [name for name, _ in second] == ["garbage_frame", "farm", "end", "garbage_frame"]
    )
    assert all(abs(a - b) < 0.25 for (_, a), (_, b) in zip(first, second, strict=True))
    assert junk1 == junk2, "the same seed sends the same bytes"

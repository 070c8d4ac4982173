"""The whole product as a user runs it: simulator, bridge, two printers and a recorder, each
its own process, talking over real TCP and ZeroMQ."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

import msgpack
import zmq

from bridge.limits import MAX_RENEW_IDS
from consumers.client import BusClient
from tests.harness import Bridge, Process, Simulator, wait_for

TOPIC = "quote/BTC.CRYPTO.PAXOS.USD"


def consumer(tmp_path: Path, bridge: Bridge, name: str, module: str, *args: str) -> Process:
    return Process(name, ["-m", f"consumers.{module}", "--pub", bridge.pub, "--rep", bridge.rep, *args], tmp_path)


def update_lines(output: str) -> list[str]:
    """The printer's per-update lines without the local clock and the age, which differ per process."""
    lines = []
    for line in output.splitlines():
        if " BTC.CRYPTO.PAXOS.USD  bid " in line:
            lines.append(re.sub(r"  age .*$", "", line.split(" ", 1)[1]))
    return lines


def test_two_printers_share_one_line_see_the_same_ticks_and_their_leaving_cancels_it(
    tmp_path: Path, bridge: Bridge, sim: Simulator
) -> None:
    first = consumer(tmp_path, bridge, "printer-1", "printer", "BTC.CRYPTO.PAXOS.USD")
    wait_for(lambda: len(update_lines(first.output)) >= 5, 10, "the first printer's ticks")
    second = consumer(tmp_path, bridge, "printer-2", "printer", "BTC.CRYPTO")
    wait_for(lambda: len(update_lines(second.output)) >= 30, 15, "the second printer's ticks")
    assert "latest" in second.output.splitlines()[0]  # the late joiner printed the picture at once
    assert len(sim.requests("ReqMktData")) == 1

    for p in (first, second):
        p.signal(signal.SIGINT)
    assert first.wait(5) == 0 and second.wait(5) == 0
    wait_for(lambda: sim.requests("CancelMktData"), 5, "the cancel at TWS once both left")
    assert bridge.request({"op": "list"})["subscriptions"] == []

    a, b = update_lines(first.output), update_lines(second.output)
    start = a.index(b[0])
    overlap = min(len(b), len(a) - start)
    assert overlap >= 20
    assert a[start : start + overlap] == b[:overlap]


def test_a_printer_killed_with_sigkill_loses_its_subscription_after_its_lease(
    tmp_path: Path, bridge: Bridge, sim: Simulator
) -> None:
    printer = consumer(tmp_path, bridge, "printer", "printer", "AAPL", "--lease", "2")
    wait_for(lambda: "AAPL.STK.SMART.USD" in printer.output, 10, "the printer to subscribe")
    time.sleep(2.5)  # longer than the lease: its renewals keep it alive meanwhile
    assert not sim.requests("CancelMktData")
    printer.signal(signal.SIGKILL)
    printer.wait(5)
    wait_for(lambda: sim.requests("CancelMktData"), 5, "the lapsed lease to cancel the line")
    assert bridge.request({"op": "list"})["subscriptions"] == []


def test_the_recorders_rows_are_exactly_what_was_published(tmp_path: Path, bridge: Bridge) -> None:
    ctx = zmq.Context()
    witness = ctx.socket(zmq.SUB)
    witness.setsockopt(zmq.SUBSCRIBE, TOPIC.encode())
    witness.connect(bridge.pub)
    time.sleep(0.2)
    db = tmp_path / "ticks.sqlite"
    recorder = consumer(tmp_path, bridge, "recorder", "recorder", "BTC.CRYPTO", "--db", str(db))
    published: dict[int, bytes] = {}

    def watch(until: float, last: int | None = None) -> None:
        while time.monotonic() < until and last not in published:
            if witness.poll(100):
                topic, payload = witness.recv_multipart()
                if topic.decode() == TOPIC:
                    published[msgpack.unpackb(payload)["seq"]] = payload

    watch(time.monotonic() + 3)
    recorder.signal(signal.SIGTERM)
    assert recorder.wait(5) == 0
    assert "rows written" in recorder.output
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT seq, payload FROM messages WHERE topic = ? ORDER BY seq", (TOPIC,)).fetchall()
    seqs = [seq for seq, _ in rows]
    # What was published while the recorder stopped is queued here too: read up to its last row.
    watch(time.monotonic() + 5, seqs[-1] if seqs else None)
    ctx.destroy(linger=0)

    assert len(rows) >= 30
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost, nothing twice
    assert all(published[seq] == payload for seq, payload in rows if seq in published)
    assert sum(seq in published for seq in seqs) >= len(seqs) - 5  # the witness saw (almost) the same span


def test_the_client_renews_more_subscriptions_than_one_renew_may_carry(bridge: Bridge) -> None:
    """The bridge takes at most MAX_RENEW_IDS ids per renew; the sample client splits its renewals."""
    bus = BusClient(bridge.pub, bridge.rep)
    try:
        for _ in range(MAX_RENEW_IDS + 5):
            bus.subscribe("BTC.CRYPTO", lease=300)
        reply = bus.renew()
        assert len(reply["renewed"]) == MAX_RENEW_IDS + 5 and reply["unknown"] == []
    finally:
        bus.close()


def test_a_consumer_polling_with_short_timeouts_keeps_its_lease(bridge: Bridge, sim: Simulator) -> None:
    """recv(0) and recv(0.01), as an event loop or a GUI polls: renewal may wait for a call with time to
    spare, but not past half the lease, or the subscription would lapse for a consumer that never gives any."""
    with BusClient(bridge.pub, bridge.rep) as bus:
        sub = bus.subscribe("MSFT", lease=2)
        end = time.monotonic() + 5  # two and a half leases
        late: list[float] = []
        while time.monotonic() < end:
            for timeout in (0.0, 0.01):
                start = time.monotonic()
                bus.recv(timeout)
                late.append(time.monotonic() - start - timeout)
        assert [s["consumers"] for s in bus.list_subscriptions() if s["topic"] == sub.topic] == [1]
        assert sim.requests("CancelMktData") == []
        assert bridge.metrics()["twsbridge_lease_expiries_total"] == 0
        assert sorted(late)[len(late) // 2] < 0.02  # a renewal holds up one call, not every call

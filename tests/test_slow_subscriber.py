"""Slow subscribers: the PUB high-water mark is chosen, shown and bounds what a stuck subscriber
costs; a subscriber that falls behind loses messages, can tell from its seq gaps, and costs the
others nothing. (Memory figures: bench/slow_subscriber.py.)"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from bridge import config
from tests.fake_tws import FakeTws, TickPump
from tests.harness import Bridge, wait_for


def test_the_pub_high_water_mark_is_a_metric_with_a_documented_default(bridge: Bridge) -> None:
    assert bridge.metrics()["twsbridge_pub_hwm_messages"] == 20_000


def test_a_pub_hwm_of_zero_which_zeromq_takes_as_unlimited_is_refused() -> None:
    with pytest.raises(SystemExit, match="at least 1"):
        config.load(["--pub-hwm", "0"], environ={})
    assert config.load(["--pub-hwm", "500"], environ={}).pub_hwm == 500
    assert config.load([], environ={"TWSBRIDGE_PUB_HWM": "7"}).pub_hwm == 7


def test_pub_connections_count_the_subscribers_connected(bridge: Bridge) -> None:
    assert bridge.metrics()["twsbridge_pub_connections"] == 0
    subs = [bridge.subscriber("state") for _ in range(3)]
    wait_for(lambda: bridge.metrics()["twsbridge_pub_connections"] == 3, 5, "three subscribers counted")
    for sub in subs[:2]:
        sub.close()
    wait_for(lambda: bridge.metrics()["twsbridge_pub_connections"] == 1, 5, "two subscribers gone")


@pytest.fixture
def streaming(tmp_path: Path) -> Iterator[tuple[Bridge, str]]:
    """A bridge with a small high-water mark, publishing 8000 messages a second on one topic."""
    pump = TickPump(8000)
    tws = FakeTws(pump.on_request)
    bridge = Bridge(tmp_path, tws.port, extra=["--pub-hwm", "1000"])
    try:
        reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "lease": 600})
        assert reply["ok"], reply
        yield bridge, reply["topic"]
    finally:
        pump.stop.set()
        bridge.stop()
        tws.close()


def _seqs(sock: zmq.Socket, seconds: float) -> list[int]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(zmq.Again):
            out.append(msgpack.unpackb(sock.recv_multipart()[1])["seq"])
    return out


def test_a_stuck_subscriber_sees_its_own_drops_as_seq_gaps_and_the_others_lose_nothing(
    streaming: tuple[Bridge, str],
) -> None:
    bridge, topic = streaming
    assert bridge.metrics()["twsbridge_pub_hwm_messages"] == 1000
    stuck = bridge.ctx.socket(zmq.SUB)
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.setsockopt(zmq.RCVHWM, 100)
    stuck.setsockopt(zmq.RCVBUF, 4096)  # small kernel buffers, so the bridge's queue fills soon
    stuck.setsockopt(zmq.RCVTIMEO, 100)
    stuck.setsockopt(zmq.SUBSCRIBE, topic.encode())
    stuck.connect(bridge.pub)
    healthy = bridge.subscriber(topic)
    healthy.setsockopt(zmq.RCVTIMEO, 100)
    got = _seqs(healthy, 6)  # meanwhile `stuck` reads nothing
    assert len(got) > 10_000 and got == list(range(got[0], got[0] + len(got))), "the healthy one lost nothing"
    late = _seqs(stuck, 1)
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(late) if b > a + 1)
    assert gaps > 0, "the stuck one lost messages while stuck, and its seqs say so"

"""What a subscriber that never reads costs the bridge, per PUB send high-water mark.

    python bench/slow_subscriber.py [--hwm 20000] [--rate 10000] [--seconds 20] [--stuck 1]

A fake TWS (tests/fake_tws.py) streams tickPrice frames for one quote line at `--rate` messages
a second; the real bridge (`python -m bridge --pub-hwm HWM`) publishes them; one healthy
subscriber reads everything (and counts seq gaps), and `--stuck` subscribers connect, subscribe
to everything and never read. Printed: the bridge's RSS before the stuck subscribers came, its
peak while they were stuck, the cost per stuck subscriber, RSS after they left, what the healthy
subscriber received and lost, and the bridge's twsbridge_pub_connections while they were there.
Run one HWM per invocation (each takes about `--seconds` + 8 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_tws import FakeTws, TickPump
from tests.harness import Bridge


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Reader(threading.Thread):
    """A healthy subscriber: reads everything, counts messages and seq gaps."""

    def __init__(self, endpoint: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.topic = endpoint, topic
        self.received = self.lost = 0
        self.done = threading.Event()

    def run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 200)
        sock.setsockopt(zmq.SUBSCRIBE, self.topic.encode())
        sock.connect(self.endpoint)
        last = None
        while not self.done.is_set():
            try:
                _, payload = sock.recv_multipart()
            except zmq.Again:
                continue
            seq = msgpack.unpackb(payload)["seq"]
            if last is not None and seq > last + 1:
                self.lost += seq - last - 1
            last = seq
            self.received += 1
        sock.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hwm", type=int, default=20_000, help="the bridge's --pub-hwm (old default 100000)")
    p.add_argument("--rate", type=float, default=10_000, help="messages a second from TWS")
    p.add_argument("--seconds", type=float, default=20, help="how long the subscribers stay stuck")
    p.add_argument("--stuck", type=int, default=1, help="subscribers that never read")
    a = p.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="slow-sub-"))
    feed = TickPump(a.rate)
    tws = FakeTws(feed.on_request)
    bridge = Bridge(workdir, tws.port, extra=["--pub-hwm", str(a.hwm), "--log-level", "WARNING"])
    ctx = zmq.Context.instance()
    stuck: list[zmq.Socket] = []
    try:
        reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "lease": 3600})
        assert reply.get("ok"), reply
        reader = Reader(bridge.pub, reply["topic"])
        reader.start()
        time.sleep(3)
        base = rss_mb(bridge.proc.pid)
        published0 = bridge.metrics()["twsbridge_messages_published_total"]
        for _ in range(a.stuck):
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(bridge.pub)
            stuck.append(sock)  # never read
        started = time.monotonic()
        peak = base
        while time.monotonic() - started < a.seconds:
            time.sleep(0.5)
            peak = max(peak, rss_mb(bridge.proc.pid))
        metrics = bridge.metrics()
        rate = (metrics["twsbridge_messages_published_total"] - published0) / (time.monotonic() - started)
        connections = metrics["twsbridge_pub_connections"]
        for sock in stuck:
            sock.close()
        time.sleep(3)
        after = rss_mb(bridge.proc.pid)
        reader.done.set()
        reader.join(2)
        print(
            f"pub-hwm {a.hwm}: {rate:,.0f} msgs/s published; bridge RSS {base:.1f} MB before, peak {peak:.1f} MB "
            f"with {a.stuck} stuck subscriber(s) for {a.seconds:g} s (+{(peak - base) / a.stuck:.1f} MB each), "
            f"{after:.1f} MB after they left; pub_connections {connections:.0f} while stuck; healthy subscriber "
            f"received {reader.received:,}, lost {reader.lost:,}"
        )
    finally:
        feed.stop.set()
        bridge.stop()
        tws.close()


if __name__ == "__main__":
    main()

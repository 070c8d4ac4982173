"""Backfill 5 days of 1-minute bars for 50 instruments through the bridge, against the simulator
enforcing IB's historical pacing (issue 12, point 6), next to the least time IB's rules allow.

Both the simulator and the bridge run with --history-time-scale F, so ten minutes of IB's pacing
take 600*F seconds. The figures are scaled back by 1/F. What does not scale (the bridge's 20 ms
between TWS messages, the simulator drawing the bars, the client's polling) is then overstated by
1/F, so the first-to-last request span is also read from the simulator's journal (when each
request reached it): that span is what the pacing rules bound, the same measure as
histpacing.minimum_seconds (first to last start).

python -m bench.backfill [--scale 0.02] [--instruments 50] [--days 5]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `bench` is run as a script; the project is importable from its root

import msgpack  # noqa: E402
import zmq  # noqa: E402

from bridge.histpacing import Limits, minimum_seconds  # noqa: E402
from tests.harness import Bridge, Simulator  # noqa: E402

DAY = 86_400


def stocks(count: int) -> list[str]:
    """The first `count` stocks the simulator lists (python -m bridge.simulator --list)."""
    from bridge.simulator.catalogue import CATALOGUE

    return [i.contract.symbol for i in CATALOGUE if i.contract.sec_type == "STK"][:count]


def counters(sim: Simulator) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", sim.control_port), timeout=5) as sock:
        sock.sendall(b'{"query": "counters"}\n')
        return json.loads(sock.makefile("rb").readline())["counters"]


class Client:
    """One REQ socket, as a notebook or a strategy would hold it."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.REQ)
        self.sock.setsockopt(zmq.RCVTIMEO, 15_000)
        self.sock.connect(endpoint)

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sock.send(msgpack.packb(body))
        return msgpack.unpackb(self.sock.recv())


def backfill(endpoint: str, symbols: list[str], days: int) -> tuple[int, int]:
    """Ask every instrument's span, then fetch each answer (all its pages) as it is ready; (bars, replies)."""
    client = Client(endpoint)
    midnight = int(time.time()) // DAY * DAY
    pending: dict[str, dict[str, Any]] = {}
    bars = replies = 0
    for symbol in symbols:
        reply = client.ask({"op": "history", "instrument": symbol, "bar": "1 min", "start": midnight - days * DAY,
                            "end": midnight})  # fmt: skip
        replies += 1
        pending[symbol] = reply
    while pending:
        for symbol, reply in list(pending.items()):
            if reply.get("pending"):
                reply = pending[symbol] = client.ask({"op": "history", "ticket": reply["ticket"]})
                replies += 1
                continue
            if not reply.get("ok"):
                raise SystemExit(f"{symbol}: {reply}")
            bars += len(reply["bars"])
            while "next" in reply:
                reply = client.ask(reply["next"])
                replies += 1
                bars += len(reply["bars"])
            del pending[symbol]
        if pending:
            time.sleep(0.25)
    return bars, replies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=0.02, help="history time scale on both sides (default 0.02)")
    p.add_argument("--instruments", type=int, default=50)
    p.add_argument("--days", type=int, default=5)
    args = p.parse_args()
    scaled = ["--history-time-scale", str(args.scale)]
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator(Path(tmp), extra=scaled)
        bridge = Bridge(Path(tmp), sim.port, extra=scaled)
        try:
            began = time.monotonic()
            bars, replies = backfill(bridge.rep, stocks(args.instruments), args.days)
            took = time.monotonic() - began
            tally = counters(sim)
            sent = [row["t"] for row in sim.requests("ReqHistoricalData")]
        finally:
            bridge.stop()
            sim.stop()
    requests = len(sent)
    span = (max(sent) - min(sent)) if sent else 0.0
    f = args.scale
    ib, ours = minimum_seconds(requests, limits=Limits.ib()), minimum_seconds(requests, limits=Limits())
    violations = tally["history_pacing_violations"]
    print(f"backfill: {args.instruments} instruments x {args.days} days of 1-min bars = {bars} bars, "
          f"{requests} TWS requests, {replies} replies; pacing violations (162): {violations}")  # fmt: skip
    print(f"time scale {f}: wall {took:.1f} s; first to last request at the simulator {span:.1f} s")
    print(f"scaled back: first to last request {span / f:.0f} s ({span / f / 60:.1f} min), whole backfill "
          f"{took / f:.0f} s (the unscaled overheads, x{1 / f:.0f}, included)")  # fmt: skip
    print(f"least the rules allow (histpacing.minimum_seconds, first to last start): IB's numbers {ib:.0f} s "
          f"({ib / 60:.1f} min); with the bridge's margins (55 per 610 s) {ours:.0f} s "
          f"({ours / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What the NATS hop adds: latency from the bridge reading a TWS frame to a consumer unpacking it,
over ZeroMQ and over the relay + nats-server, side by side on the same stream in the same run.

    python bench/nats_hop.py                     # 1k and ~10k msgs/s, 3 rounds of 10 s each
    python bench/nats_hop.py --rounds 1 --seconds 5

Real processes: the simulator (its lines' ticks are the stream), the bridge, `python -m
bridge.relay`, `nats-server -js`, and two consumer processes (one ZeroMQ SUB, one NATS core
subscriber on `twsbridge.>`), each computing `now - recv_ns` per message (one clock: the same
machine). Prints per point the achieved rate, p50/p99 of each path and the hop's added p50/p99,
as medians over the rounds with their min..max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
import zmq  # noqa: E402

from bench.soak import free_port, spawn, stop, wait_for_port  # noqa: E402
from bridge.simulator.catalogue import CATALOGUE  # noqa: E402
from tests.harness import scrape  # noqa: E402

POINTS = {"1k": (20, 12.0), "10k": (60, 40.0)}  # lines, simulator steps per second per line


def summary(latencies_us: list[float], seconds: float) -> dict[str, float]:
    latencies_us.sort()
    n = len(latencies_us)
    if not n:
        return {"rate": 0.0, "p50": float("nan"), "p99": float("nan")}
    return {"rate": n / seconds, "p50": latencies_us[n // 2], "p99": latencies_us[min(n - 1, int(n * 0.99))]}


def zmq_role(pub: str, seconds: float) -> dict[str, float]:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(pub)
    sub.setsockopt(zmq.SUBSCRIBE, b"quote/")
    time.sleep(0.5)
    while sub.poll(0):  # what queued while the filter took effect is old by now: not a latency
        sub.recv_multipart()
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sub.poll(100):
            _, payload = sub.recv_multipart()
            out.append((time.time_ns() - msgpack.unpackb(payload)["recv_ns"]) / 1e3)
    ctx.destroy(linger=0)
    return summary(out, seconds)


def nats_role(url: str, seconds: float) -> dict[str, float]:
    import nats

    async def run() -> dict[str, float]:
        nc = await nats.connect(url)
        out: list[float] = []

        async def on(msg: Any) -> None:
            out.append((time.time_ns() - msgpack.unpackb(msg.data)["recv_ns"]) / 1e3)

        await nc.subscribe("twsbridge.quote.>", cb=on, pending_msgs_limit=1_000_000)
        await asyncio.sleep(0.5)
        out.clear()  # as on the ZeroMQ side: measure from the same start
        await asyncio.sleep(seconds)
        await nc.close()
        return summary(out, seconds)

    return asyncio.run(run())


def point(lines: int, rate: float, seconds: float, workdir: Path) -> dict[str, dict[str, float]]:
    nats_port, sim_port, control = free_port(), free_port(), free_port()
    pub, rep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    url = f"nats://127.0.0.1:{nats_port}"
    procs = [
        subprocess.Popen([str(shutil.which("nats-server")), "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd",
                          str(workdir / f"js-{nats_port}")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        spawn(["-m", "bridge.simulator", "--port", str(sim_port), "--control", str(control), "--rate", str(rate),
               "--max-lines", "1000"], workdir / "sim.log"),
    ]  # fmt: skip
    try:
        wait_for_port(sim_port)
        wait_for_port(nats_port)
        procs.append(spawn(["-m", "bridge", "--tws-port", str(sim_port), "--pub", pub, "--rep", rep, "--metrics", ""],
                           workdir / "bridge.log"))  # fmt: skip
        time.sleep(1.5)
        relay_metrics = free_port()
        procs.append(spawn(["-m", "bridge.relay", "--nats", url, "--pub", pub, "--rep", rep, "--metrics",
                            f"127.0.0.1:{relay_metrics}"], workdir / "relay.log"))  # fmt: skip
        ctx = zmq.Context()
        req = ctx.socket(zmq.REQ)
        req.connect(rep)
        stocks = [i.contract.symbol for i in CATALOGUE if i.contract.sec_type == "STK"][:lines]
        for symbol in stocks:
            req.send(msgpack.packb({"op": "subscribe", "instrument": symbol, "lease": 600}))
            reply = msgpack.unpackb(req.recv())
            if not reply.get("ok"):
                raise SystemExit(f"cannot subscribe {symbol}: {reply}")
        ctx.destroy(linger=0)
        time.sleep(2)
        roles = [
            subprocess.Popen([sys.executable, __file__, "--role", "zmq", "--target", pub, "--seconds", str(seconds)],
                             stdout=subprocess.PIPE, cwd=ROOT),
            subprocess.Popen([sys.executable, __file__, "--role", "nats", "--target", url, "--seconds", str(seconds)],
                             stdout=subprocess.PIPE, cwd=ROOT),
        ]  # fmt: skip
        before = scrape(relay_metrics)
        zmq_out, nats_out = (json.loads(p.communicate(timeout=seconds + 30)[0]) for p in roles)
        after = scrape(relay_metrics)
        relayed = after["twsbridge_relay_messages_total"] - before["twsbridge_relay_messages_total"]
        dropped = after["twsbridge_relay_dropped_messages_total"] - before["twsbridge_relay_dropped_messages_total"]
        return {"zmq": zmq_out, "nats": nats_out, "relay": {"rate": relayed / (seconds + 1), "dropped": dropped}}
    finally:
        for proc in reversed(procs):
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--role", choices=["zmq", "nats"], help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role:
        role = zmq_role if args.role == "zmq" else nats_role
        print(json.dumps(role(args.target, args.seconds)))
        return 0
    if shutil.which("nats-server") is None:
        print("nats-server is not installed (Debian: apt-get install nats-server)", file=sys.stderr)
        return 2
    results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in POINTS}
    with tempfile.TemporaryDirectory(prefix="nats-hop-") as tmp:
        for r in range(args.rounds):
            for name, (lines, rate) in POINTS.items():  # interleaved: every round visits every point
                results[name].append(point(lines, rate, args.seconds, Path(tmp)))
                print(f"round {r + 1} {name}: {results[name][-1]}", flush=True)
    print(f"\nmicroseconds, median [min..max] over {args.rounds} rounds")
    print(f"{'point':>6} {'rate/s':>8} {'zmq p50':>14} {'zmq p99':>14} {'nats p50':>14} {'nats p99':>14}"
          f" {'added p50':>10} {'added p99':>10}")  # fmt: skip
    for name, runs in results.items():

        def col(path: str, key: str, runs: list[dict[str, dict[str, float]]] = runs) -> str:
            values = [run[path][key] for run in runs]
            return f"{statistics.median(values):6.0f} [{min(values):.0f}..{max(values):.0f}]"

        added = {k: statistics.median(run["nats"][k] - run["zmq"][k] for run in runs) for k in ("p50", "p99")}
        rate = statistics.median(run["zmq"]["rate"] for run in runs)
        print(f"{name:>6} {rate:8.0f} {col('zmq', 'p50'):>14} {col('zmq', 'p99'):>14} {col('nats', 'p50'):>14} "
              f"{col('nats', 'p99'):>14} {added['p50']:10.0f} {added['p99']:10.0f}")  # fmt: skip
        nats_rate = statistics.median(run["nats"]["rate"] for run in runs)
        relay_rate = statistics.median(run["relay"]["rate"] for run in runs)
        dropped = statistics.median(run["relay"]["dropped"] for run in runs)
        print(f"       carried per second: relay {relay_rate:.0f} (dropped {dropped:.0f} a run), NATS consumer "
              f"{nats_rate:.0f}, of {rate:.0f} on the bus")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The comparison users make: K strategy processes each with its own TWS connection (ib_async), or
K consumers of one bridge, all watching the same instruments.

    python -m bench.kclients [--k 1,2,4,8] [--seconds 8] [--rounds 3] [--rate 125] [--instruments 6]
                             [--shape staggered|sampled]

Every part is its own process, everything on 127.0.0.1. The TWS is the simulator
(`python -m bridge.simulator --stamp`): each market-data step ends with a tickString holding the
simulator's `time.time_ns()` as it writes the step, so a consumer knows when what it sees left TWS.

Two shapes of traffic, at the same message rate. `staggered` (the default, the harder case for a
bridge): each instrument steps on its own clock and each message is its own write, so a consumer
wakes for every few messages. `sampled`: every instrument steps on one clock and each connection
gets a step in one write (`--shared-clock`), as TWS sends watchlist data, in snapshots sampled
every 250 ms for stocks and futures, holding every instrument that changed.

- direct: K processes, each `ib_async.IB().connect()` to the simulator with its own client id and
  `reqMktData` for every instrument; latency is taken in its `pendingTickersEvent` handler (where a
  strategy first sees a tick), from the stamp the Ticker holds (`lastRegTime`).
- bridge: one `python -m bridge` on the simulator and K processes on `consumers.client.BusClient`
  subscribed to the same instruments; latency is taken when `recv()` returns the stamp message.

For each K, each round runs both setups back to back (the order alternates), each on a fresh
simulator, for `--seconds` after every consumer has seen data. Columns: `client cpu%` is the CPU of
the client side in % of one core (the K processes, plus the bridge in the bridge setup; every
thread, from schedstat), `tws cpu%` the simulator's, `total` both; `rss MB` the client side's summed
resident memory; `msgs/s` what each consumer received (ib_async's own message count, or the bus
messages), where a setup that falls behind receives less than was sent; `us/msg` the total CPU per
message delivered to a consumer; `p50/p99 ms` the stamp latency pooled over the consumers. Medians
over rounds, with the range of the rounds. The verdicts: from K=2 the bridge setup is ahead on
total CPU and on p99, from K=4 on client-side CPU alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from bench.e2e import free_port, run_seconds
from bench.soak import wait_for_port

ROOT = Path(__file__).resolve().parent.parent
STAMP_TICK = 85  # the simulator's --stamp tick (lastRegTime)
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AVGO", "ADBE", "CSCO", "INTC", "QCOM", "TXN", "AMD", "INTU", "AMAT")


def _percentile(sorted_values: list[int] | array, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1e6


# --- the consumers (child processes) ----------------------------------------------------------


def _measure(seconds: float, step) -> dict:  # type: ignore[no-untyped-def]
    """Print "ready", keep consuming (unmeasured) until "go" on stdin, then call `step(record)` until
    `seconds` pass; the summary (latencies in ns, messages) as JSON on stdout. Consuming while waiting
    matters: a consumer that stopped reading would start the measurement on a backlog."""
    latencies: array = array("q")
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        step(None)
    if not sys.stdin.readline():
        raise SystemExit(0)
    end = time.monotonic() + seconds
    received = 0
    while time.monotonic() < end:
        received += step(latencies.append)
    return {"latencies": list(latencies), "received": received, "seconds": seconds}


def run_ib_async(port: int, client_id: int, symbols: list[str], seconds: float) -> None:
    from ib_async import IB, Stock

    ib = IB()
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=20)
    contracts = [Stock(s, "SMART", "USD") for s in symbols]
    ib.qualifyContracts(*contracts)
    tickers = [ib.reqMktData(c, "", False, False) for c in contracts]
    last_stamp: dict[int, str] = {}
    sink: list = [None]

    def on_pending(pending) -> None:  # type: ignore[no-untyped-def]
        now = time.time_ns()
        record = sink[0]
        for t in pending:
            stamp = t.lastRegTime
            if stamp and last_stamp.get(id(t)) != stamp:
                last_stamp[id(t)] = stamp
                if record is not None:
                    record(now - int(stamp))

    ib.pendingTickersEvent += on_pending
    while not all(t.lastRegTime for t in tickers):
        ib.sleep(0.05)
    start_msgs: list[int] = []

    def step(record) -> int:  # type: ignore[no-untyped-def]
        if record is not None and not start_msgs:  # the first measured step, right after "go"
            sink[0] = record
            start_msgs.append(ib.client.connectionStats().numMsgRecv)
        ib.sleep(0.05)
        return 0

    summary = _measure(seconds, step)
    summary["received"] = ib.client.connectionStats().numMsgRecv - start_msgs[0]
    print(json.dumps(summary), flush=True)
    ib.disconnect()


def run_bus(pub: str, rep: str, symbols: list[str], seconds: float) -> None:
    from consumers.client import BridgeError, BusClient

    with BusClient(pub, rep, timeout=20) as bus:
        for s in symbols:
            for _ in range(100):  # the bridge may still be connecting to the simulator
                try:
                    bus.subscribe(f"{s}.STK.SMART.USD")
                    break
                except BridgeError as exc:
                    if exc.code != "not_connected":
                        raise
                    time.sleep(0.2)
        seen = set()
        while len(seen) < len(symbols):
            msg = bus.recv(20)
            if msg is None:
                raise SystemExit("bus consumer: no data from the bridge")
            if msg.payload.get("tick_type") == STAMP_TICK:
                seen.add(msg.topic)

        def step(record) -> int:  # type: ignore[no-untyped-def]
            msg = bus.recv(0.05)
            if msg is None:
                return 0
            payload = msg.payload
            if record is not None and payload.get("tick_type") == STAMP_TICK:
                record(time.time_ns() - int(payload["value"]))
            return 1

        print(json.dumps(_measure(seconds, step)), flush=True)


# --- the harness --------------------------------------------------------------------------------


def _spawn(args: list[str], **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True, **kw)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_setup(
    setup: str,
    k: int,
    symbols: list[str],
    rate: float,
    seconds: float,
    transport: str = "tcp",
    shape: str = "staggered",
) -> dict:
    """Run one setup once; its figures."""
    port = free_port()
    procs: list[subprocess.Popen] = []
    try:
        sim = _spawn(["-m", "bridge.simulator", "--port", str(port), "--rate", str(rate), "--seed", "1", "--stamp",
                      "--pacing-limit", "0", "--log-level", "WARNING",
                      *(["--shared-clock"] if shape == "sampled" else [])])  # fmt: skip
        procs.append(sim)
        wait_for_port(port)
        client_side: list[subprocess.Popen] = []
        if setup == "bridge":
            if transport == "ipc":  # Unix sockets: what a consumer on the same machine can use instead of TCP
                pub, rep = f"ipc:///tmp/kclients-{port}.pub", f"ipc:///tmp/kclients-{port}.rep"
            else:
                pub, rep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
            bridge = _spawn(["-m", "bridge", "--tws-port", str(port), "--pub", pub, "--rep", rep, "--metrics", "",
                             "--log-level", "WARNING"])  # fmt: skip
            procs.append(bridge)
            client_side.append(bridge)
        consumers = []
        for i in range(k):
            if setup == "direct":
                role = ["--role", "ib", "--port", str(port), "--client-id", str(100 + i)]
            else:
                role = ["--role", "bus", "--pub", pub, "--rep", rep]
            c = _spawn(["-m", "bench.kclients", *role, "--symbols", ",".join(symbols), "--seconds", str(seconds)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
            procs.append(c)
            consumers.append(c)
            client_side.append(c)
        for c in consumers:
            assert c.stdout is not None
            if c.stdout.readline().strip() != "ready":
                raise SystemExit(f"{setup} K={k}: a consumer did not start")
        time.sleep(0.5)  # let the first pictures pass
        t0 = time.monotonic()
        hub = client_side[0] if setup == "bridge" else None  # the bridge process, on its own too

        def cpu() -> tuple[float, float, float]:  # client side, simulator, bridge: seconds on a CPU so far
            return (sum(run_seconds(p.pid) for p in client_side), run_seconds(sim.pid),
                    run_seconds(hub.pid) if hub else 0.0)  # fmt: skip

        cpu0 = cpu()
        for c in consumers:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        time.sleep(seconds)
        cpu1 = cpu()
        wall = time.monotonic() - t0
        rss = sum(_rss_mb(p.pid) for p in client_side)
        latencies: list[int] = []
        rates = []
        for c in consumers:
            assert c.stdout is not None
            line = c.stdout.readline()
            if not line:
                raise SystemExit(f"{setup} K={k}: a consumer ended without figures")
            summary = json.loads(line)
            latencies += summary["latencies"]
            rates.append(summary["received"] / summary["seconds"])
        latencies.sort()
        return {
            "client": (cpu1[0] - cpu0[0]) / wall * 100,
            "tws": (cpu1[1] - cpu0[1]) / wall * 100,
            "hub": (cpu1[2] - cpu0[2]) / wall * 100,
            "rss": rss,
            "rate": statistics.median(rates),
            "p50": _percentile(latencies, 0.5),
            "p99": _percentile(latencies, 0.99),
            "samples": len(latencies),
        }
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", default="1,2,4,8", help="numbers of consumer processes (default 1,2,4,8)")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=125.0, help="simulator steps per second per instrument")
    ap.add_argument("--instruments", type=int, default=6)
    ap.add_argument(
        "--transport", choices=("tcp", "ipc"), default="tcp", help="the bridge's bus endpoints (default tcp)"
    )
    ap.add_argument(
        "--shape",
        choices=("staggered", "sampled"),
        default="staggered",
        help="instruments on clocks of their own, a write per message (default); or on one clock, a write per step",
    )
    ap.add_argument("--role", choices=("ib", "bus"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client-id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pub", help=argparse.SUPPRESS)
    ap.add_argument("--rep", help=argparse.SUPPRESS)
    ap.add_argument("--symbols", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "ib":
        run_ib_async(args.port, args.client_id, args.symbols.split(","), args.seconds)
        return
    if args.role == "bus":
        run_bus(args.pub, args.rep, args.symbols.split(","), args.seconds)
        return

    symbols = list(SYMBOLS[: args.instruments])
    ks = [int(k) for k in args.k.split(",")]
    results: dict[tuple[int, str], list[dict]] = {}
    for r in range(args.rounds):
        for k in ks:
            order = ("direct", "bridge") if (r + k) % 2 == 0 else ("bridge", "direct")
            for setup in order:
                fig = one_setup(setup, k, symbols, args.rate, args.seconds, args.transport, args.shape)
                results.setdefault((k, setup), []).append(fig)
                print(f"round {r + 1} K={k} {setup}: " + ", ".join(f"{n} {v:.3g}" for n, v in fig.items()),
                      file=sys.stderr, flush=True)  # fmt: skip
    report(results, ks, args)


def report(results: dict[tuple[int, str], list[dict]], ks: list[int], args: argparse.Namespace) -> None:
    def med(k: int, setup: str, what: str) -> float:
        return statistics.median(f[what] for f in results[(k, setup)])

    def rng(k: int, setup: str, what: str) -> str:
        values = [f[what] for f in results[(k, setup)]]
        return f"{min(values):.3g}-{max(values):.3g}"

    print(f"\nK consumers of {args.instruments} instruments at {args.rate:g} steps/s each, {args.shape}; "
          f"{args.rounds} rounds of {args.seconds:g} s; medians (range)")  # fmt: skip
    head = f"{'K':>2} {'setup':7} {'client cpu%':>18} {'tws cpu%':>16} {'total':>6} {'rss MB':>7} {'msgs/s':>7}"
    print(head + f" {'us/msg':>6} {'p50 ms':>16} {'p99 ms':>16}")
    for k in ks:
        for setup in ("direct", "bridge"):
            total = med(k, setup, "client") + med(k, setup, "tws")
            print(f"{k:>2} {setup:7} {med(k, setup, 'client'):6.1f} ({rng(k, setup, 'client'):>9}) "
                  f"{med(k, setup, 'tws'):5.1f} ({rng(k, setup, 'tws'):>8}) {total:6.1f} {med(k, setup, 'rss'):7.0f} "
                  f"{med(k, setup, 'rate'):7.0f} {total * 1e4 / (k * med(k, setup, 'rate')):6.1f} "
                  f"{med(k, setup, 'p50'):6.3f} ({rng(k, setup, 'p50'):>7}) "
                  f"{med(k, setup, 'p99'):6.3f} ({rng(k, setup, 'p99'):>7})")  # fmt: skip
    print()
    per_process(results, ks, med)
    met = missed = 0
    for k in ks:
        checks = []
        if k >= 2:
            checks += [("total CPU", "total"), ("p99", "p99")]
        if k >= 4:
            checks.append(("client-side CPU", "client"))
        for name, what in checks:
            if what == "total":
                ours = med(k, "bridge", "client") + med(k, "bridge", "tws")
                theirs = med(k, "direct", "client") + med(k, "direct", "tws")
            else:
                ours, theirs = med(k, "bridge", what), med(k, "direct", what)
            ok = ours < theirs
            met += ok
            missed += not ok
            print(f"K={k}: bridge {name} {ours:.3g} vs direct {theirs:.3g} ({ours / theirs:.2f}x; target < 1): "
                  f"{'met' if ok else 'MISSED'}")  # fmt: skip
    print(f"targets: {met} met, {missed} missed")


Median = Callable[[int, str, str], float]  # (K, setup, figure) -> its median over the rounds


def per_process(results: dict[tuple[int, str], list[dict]], ks: list[int], med: Median) -> None:
    """The client side split by process: the bridge's own share, a bus consumer's, an ib_async
    process's (medians over rounds), and what a consumer would have to cost for the bridge setup to
    be ahead on client-side CPU at that K (the bridge's share spread over the K consumers)."""
    for k in ks:
        bridge = med(k, "bridge", "hub")
        consumer = statistics.median((f["client"] - f["hub"]) / k for f in results[(k, "bridge")])
        direct = med(k, "direct", "client") / k
        print(f"K={k}: bridge process {bridge:.1f}% + {k} x {consumer:.2f}% a consumer; ib_async {direct:.2f}% a "
              f"process; client-side CPU is ahead when a consumer costs under {direct - bridge / k:.2f}%")  # fmt: skip
    print()


if __name__ == "__main__":
    main()

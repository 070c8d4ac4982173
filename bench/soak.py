#!/usr/bin/env python3
"""A trading day compressed into minutes: the bridge against what a real TWS does to it.

    python bench/soak.py                 # ~5 minutes: 200 instruments, 8 consumers and a recorder
    python bench/soak.py --short         # ~1 minute, fewer of each (tests/test_soak.py runs it)

Real processes throughout: the simulator (with its control port and journal), the bridge, eight
consumers built on `consumers.client` and `consumers.recorder` writing SQLite. On a timeline the
soak makes TWS restart three times (a refused-connect window, an abrupt reset, a short restart),
stall past the bridge's timeout, blip its farms, lose and regain IB with data lost (1101), while a
client storms the request socket with subscribes and another sends it garbage.

What it checks, from the consumers' side: every message of a topic arrives (seq has no gap)
except inside an outage window the bridge marked on that topic (`stale` ... `resumed`), no topic
falls silent outside such a window, and every topic's data is back soon after TWS is. From the
bridge's side: RSS and CPU time; from TWS's side (the journal): the message rate it received.
The last line is `lost outside marked windows: N`; anything but 0 is a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `bench` is run as a script; the project is importable from its root

import msgpack  # noqa: E402
import zmq  # noqa: E402

from bridge.simulator.catalogue import CATALOGUE, Instrument  # noqa: E402
from bridge.simulator.limits import busiest_second  # noqa: E402

SILENCE = 5.0  # seconds without data on a topic, outside a window, that count as a silent stretch
LEASE = 30
BRIDGE_FLAGS = ["--heartbeat", "1", "--tws-timeout", "4", "--handshake-timeout", "2"]


# --- the day -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    seconds: float
    instruments: int
    consumers: int
    recorded: int  # instruments the recorder takes
    storm: int  # extra subscribes in the pacing storm
    rate: float  # simulator ticks per second per line


FULL = Shape(seconds=300, instruments=200, consumers=8, recorded=20, storm=60, rate=4)
SHORT = Shape(seconds=70, instruments=30, consumers=2, recorded=5, storm=20, rate=4)


def timeline(seconds: float) -> list[tuple[float, str, dict[str, Any]]]:
    """(at, action, args): simulator faults by name, `storm` and `garbage` done by the soak itself."""
    s = seconds
    restart = max(6.0, s * 0.05)  # the daily restart: connects refused for a while
    return [
        (0.10 * s, "farm", {"farm": "market", "seconds": 2}),
        (0.15 * s, "storm", {}),
        (0.22 * s, "restart", {"seconds": restart}),
        (0.36 * s, "farm", {"farm": "historical", "seconds": 2}),
        (0.42 * s, "stall", {"seconds": 6}),  # past --tws-timeout 4: stalled, then down
        (0.52 * s, "connectivity", {"seconds": 3, "data_lost": True}),  # 1100, then 1101
        (0.58 * s, "farm", {"farm": "secdef", "seconds": 2}),
        (0.64 * s, "drop", {"reset": True}),  # TWS killed: a TCP reset, back at once
        (0.70 * s, "garbage", {}),
        (0.74 * s, "farm", {"farm": "market", "seconds": 3}),
        (0.80 * s, "restart", {"seconds": 3}),
        (0.88 * s, "farm", {"farm": "market", "seconds": 1}),
    ]


def instrument_key(inst: Instrument) -> str:
    """The bridge's short form (docs/bus.md, Instruments) for a catalogue entry."""
    c = inst.contract
    key = f"{c.symbol}.{c.sec_type}.{c.exchange}.{c.currency}"
    if c.last_trade_date_or_contract_month:
        key += f".{c.last_trade_date_or_contract_month}"
    if c.strike is not None and c.right:
        key += f".{c.strike:g}.{c.right}"
    return key


def pick(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(instrument, kind) pairs across the catalogue's kinds: mostly quotes, some tick-by-tick and bars."""
    by_type: dict[str, list[Instrument]] = {}
    for inst in CATALOGUE:
        if inst.contract.sec_type != "IND":  # an index ticks when its level moves (VIX: every 15 s), so
            by_type.setdefault(inst.contract.sec_type, []).append(inst)  # its silence says nothing here
    order = [inst for group in itertools.zip_longest(*by_type.values()) for inst in group if inst is not None]
    # TWS allows few tick-by-tick streams (10190 beyond; the simulator's default is 5): two of each.
    stocks = [inst for inst in order if inst.contract.sec_type == "STK"]  # forex and indices have no trades
    kinds = ["trades", "trades", "bidask", "bidask"]
    chosen = [(instrument_key(inst), kind) for inst, kind in zip(stocks, kinds, strict=False)]
    for bars in (lambda i: i % 10 == 9, lambda i: i % 10 != 9):  # a second pass stretches a small catalogue
        more = [(instrument_key(inst), "bars" if bars(i) else "quote") for i, inst in enumerate(order)]
        more = [pair for pair in more if pair not in chosen]
        rng.shuffle(more)
        chosen += more  # the day takes the first n, the storm what follows
    return chosen[:n]


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def fault(control_port: int, name: str, args: dict[str, Any]) -> None:
    with socket.create_connection(("127.0.0.1", control_port), timeout=5) as sock:
        sock.sendall(json.dumps({"fault": name, "args": args}).encode() + b"\n")
        answer = json.loads(sock.makefile("rb").readline() or b"{}")
    if not answer.get("ok"):
        raise SystemExit(f"the simulator refused fault {name}: {answer}")


class Sampler(threading.Thread):
    """The bridge's RSS (from /proc) every half second, and its CPU seconds at the end."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.rss: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            rss = self.rss_mib()
            if rss is not None:
                self.rss.append(rss)

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the consumer (a process of its own) ---------------------------------------------------------


@dataclass
class TopicLog:
    """What one consumer saw of one topic."""

    data: int = 0
    windows: int = 0
    in_window: bool = False
    lost_outside: int = 0
    lost_inside: int = 0
    silent: list[float] = field(default_factory=list)  # silent stretches outside windows, seconds
    last_data: float | None = None  # monotonic; None inside a window
    resumed_ns: list[int] = field(default_factory=list)  # first data after a window or a pause


def consume(pub: str, rep: str, pairs: list[tuple[str, str]], out: Path) -> int:
    from consumers.client import BridgeError, BusClient

    bus = BusClient(pub, rep, timeout=10)
    bus.stop_on_signals()
    logs: dict[str, TopicLog] = {}
    for instrument, kind in pairs:
        for _ in range(60):  # the bridge may be between TWS sessions: not_connected, try again
            try:
                sub = bus.subscribe(instrument, kind=kind, lease=LEASE)
                logs.setdefault(sub.topic, TopicLog())
                break
            except BridgeError as exc:
                if exc.code not in ("not_connected", "timeout"):
                    print(f"cannot subscribe {instrument} {kind}: {exc}", flush=True)
                    break
                time.sleep(0.5)
    print(f"subscribed {len(logs)} topics", flush=True)
    other = 0
    for msg in bus:
        seen(logs, msg.topic, msg.payload, msg.lost) or (other := other + 1)
    for msg in bus.pending():
        seen(logs, msg.topic, msg.payload, msg.lost)
    now = time.monotonic()
    for log in logs.values():  # a topic silent at the end, outside a window, counts too
        if log.last_data is not None and now - log.last_data > SILENCE:
            log.silent.append(now - log.last_data)
    out.write_text(json.dumps({t: log.__dict__ for t, log in logs.items()}))
    bus.close()
    return 0


def seen(logs: dict[str, TopicLog], topic: str, p: dict[str, Any], lost: int) -> bool:
    log = logs.get(topic)
    if log is None:
        return False
    event = p.get("event")
    now = time.monotonic()
    if log.in_window:
        log.lost_inside += lost
    else:
        log.lost_outside += lost
    if event == "stale":
        if not log.in_window:
            log.windows += 1
        log.in_window, log.last_data = True, None
    elif event == "resumed":  # it comes with the stream's first new data, or when TWS says data flows
        log.in_window, log.last_data = False, now
        log.resumed_ns.append(int(p.get("recv_ns", 0)))
    elif event not in ("error",):
        if log.last_data is None or now - log.last_data > 0.5:
            log.resumed_ns.append(int(p.get("recv_ns", 0)))
        if not log.in_window:
            if log.last_data is not None and now - log.last_data > SILENCE:
                log.silent.append(now - log.last_data)
            log.last_data = now
        log.data += 1
    return True


# --- the actions the soak does itself ------------------------------------------------------------


def storm(rep: str, pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Many subscribes at once from one client (a DEALER pipelining them, retrying what the bridge
    calls busy, as a client should), then every one cancelled, the last first."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(rep)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)

    def ask(requests: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
        for request in requests:
            sock.send_multipart([b"", msgpack.packb(request)])
        answers: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while len(answers) < len(requests) and time.monotonic() < deadline:
            if poller.poll(500):
                answers.append(msgpack.unpackb(sock.recv_multipart()[-1]))
        return answers

    todo = [{"op": "subscribe", "instrument": i, "kind": k, "lease": 10} for i, k in pairs]
    ids: list[str] = []
    counts: dict[str, int] = {"busy": 0, "unanswered": 0}
    deadline = time.monotonic() + 30
    while todo and time.monotonic() < deadline:
        answers = ask(todo, 15)
        counts["unanswered"] += len(todo) - len(answers)
        ids += [a["id"] for a in answers if a.get("ok")]
        busy = [a for a in answers if a.get("code") == "busy"]
        counts["busy"] += len(busy)
        for a in answers:
            if not a.get("ok") and a.get("code") != "busy":
                counts[a.get("code", "?")] = counts.get(a.get("code", "?"), 0) + 1
        todo = todo[: len(busy)] if busy else []  # as many again (which ones is immaterial to the load)
        time.sleep(0.2 if busy else 0)
    done = ask([{"op": "unsubscribe", "id": i} for i in reversed(ids)], 15)
    counts["unanswered"] += len(ids) - len(done)
    sock.close()
    return {"subscribed": len(ids), **counts}


GARBAGE: list[list[bytes]] = [
    [b"\xff\x00 not msgpack"],
    [msgpack.packb([1, 2, 3])],
    [msgpack.packb({"op": "subscribe\nWARNING forged line", "instrument": "AAPL"})],
    [msgpack.packb({"op": "subscribe", "instrument": "AAPL\x00X"})],
    [msgpack.packb({"op": "subscribe", "instrument": "NOSUCHTHING"})],
    [msgpack.packb({"op": "renew", "ids": ["x"] * 20_000})],
    [msgpack.packb({"op": "x" * 70_000})],
    [msgpack.packb({"op": "ping"}), msgpack.packb({"op": "ping"})],
]


def garbage(rep: str, rounds: int = 3) -> dict[str, int]:
    """Junk on the request socket: each must be answered, and the bridge must carry on."""
    ctx = zmq.Context.instance()
    answered = unanswered = 0
    for _ in range(rounds):
        for frames in GARBAGE:
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, 3_000)
            sock.connect(rep)
            try:
                sock.send_multipart(frames)
                sock.recv_multipart()
                answered += 1
            except zmq.Again:
                unanswered += 1
            finally:
                sock.close()
    return {"answered": answered, "unanswered": unanswered}


# --- after the day -------------------------------------------------------------------------------


def back_times(journal: Path) -> list[float]:
    """Wall times at which TWS was back after an outage that stopped data: what the bridge must catch up on."""
    back = []
    for line in journal.read_text().splitlines():
        row = json.loads(line)
        name, args = row.get("fault"), row.get("args", {})
        if (name == "end" and args.get("of") in ("refuse", "stall", "connectivity")) or name == "drop":
            back.append(row["t"])
    return back


def tws_max_rate(journal: Path) -> int:
    """The most messages TWS received from one connection in any sliding second."""
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    return busiest_second([row for row in rows if "request" in row])


def recorder_check(db: Path) -> dict[str, int]:
    """Rows the recorder stored, and seq gaps outside the stale/resumed windows it stored too."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT topic, seq, event FROM messages WHERE topic != 'state' ORDER BY rowid").fetchall()
    con.close()
    last: dict[str, int] = {}
    in_window: dict[str, bool] = {}
    lost = 0
    for topic, seq, event in rows:
        if topic in last and seq > last[topic] + 1 and not in_window.get(topic):
            lost += seq - last[topic] - 1
        last[topic] = max(seq, last.get(topic, 0))
        if event in ("stale", "resumed"):
            in_window[topic] = event == "stale"
    return {"rows": len(rows), "lost_outside": lost}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_day(shape: Shape, workdir: Path, seed: int) -> int:
    rng = random.Random(seed)
    pairs = pick(shape.instruments + shape.storm, rng)
    day_pairs, storm_pairs = pairs[: shape.instruments], pairs[shape.instruments :]
    sim_port, control, metrics = free_port(), free_port(), free_port()
    pub, rep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    journal = workdir / "journal.jsonl"
    sim = spawn(["-m", "bridge.simulator", "--port", str(sim_port), "--control", str(control), "--journal",
                 str(journal), "--rate", str(shape.rate), "--seed", str(seed), "--max-lines", "1000",
                 "--bar-seconds", "1"],
                workdir / "simulator.log")  # fmt: skip
    procs = [sim]
    try:
        wait_for_port(sim_port)
        bridge = spawn(["-m", "bridge", "--tws-port", str(sim_port), "--pub", pub, "--rep", rep, "--metrics",
                        f"127.0.0.1:{metrics}", *BRIDGE_FLAGS], workdir / "bridge.log")  # fmt: skip
        procs.append(bridge)
        wait_for_port(metrics)
        sampler = Sampler(bridge.pid)
        sampler.start()
        time.sleep(1)
        rss_start = sampler.rss_mib() or 0.0
        shares = [day_pairs[k :: shape.consumers] for k in range(shape.consumers)]
        shares[0] = shares[0] + day_pairs[: max(1, len(day_pairs) // 10)]  # some lines shared by two consumers
        outs = [workdir / f"consumer{k}.json" for k in range(shape.consumers)]
        consumers = []
        for k, share in enumerate(shares):
            spec = workdir / f"consumer{k}.pairs.json"
            spec.write_text(json.dumps(share))
            consumers.append(spawn([__file__, "--role", "consumer", "--pub", pub, "--rep", rep, "--pairs", str(spec),
                                    "--out", str(outs[k])], workdir / f"consumer{k}.log"))  # fmt: skip
        recorded = [i for i, kind in day_pairs if kind == "quote"][: shape.recorded]
        db = workdir / "recorded.sqlite"
        recorder = spawn(["-m", "consumers.recorder", *recorded, "--db", str(db), "--pub", pub, "--rep", rep],
                         workdir / "recorder.log")  # fmt: skip
        procs += [*consumers, recorder]
        start = time.monotonic()
        notes: dict[str, Any] = {}
        for at, action, args in timeline(shape.seconds):
            time.sleep(max(0.0, start + at - time.monotonic()))
            print(f"{time.monotonic() - start:6.1f} s  {action} {args or ''}", flush=True)
            if action == "storm":
                notes["storm"] = storm(rep, storm_pairs)
            elif action == "garbage":
                notes["garbage"] = garbage(rep)
            else:
                fault(control, action, args)
        time.sleep(max(0.0, start + shape.seconds - time.monotonic()))
        notes["end"] = time.time()
        for proc in [*consumers, recorder]:
            stop(proc, 20)
        rss_end = sampler.rss_mib() or 0.0
        cpu = sampler.cpu_seconds()
        published = scrape(metrics, "twsbridge_messages_published_total")
        sampler.done.set()
        return report(shape, workdir, outs, journal, db, notes, sampler.rss, rss_start, rss_end, cpu, published)
    finally:
        for proc in reversed(procs):
            stop(proc)


def scrape(port: int, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return float("nan")


def report(
    shape: Shape, workdir: Path, outs: list[Path], journal: Path, db: Path, notes: dict[str, Any],
    rss: list[float], rss_start: float, rss_end: float, cpu: float, published: float,
) -> int:  # fmt: skip
    logs: dict[str, dict[str, Any]] = {}
    missing = 0
    for out in outs:
        if not out.exists():
            missing += 1
            continue
        for topic, log in json.loads(out.read_text()).items():
            logs[f"{out.stem}:{topic}"] = log
    backs = [t for t in back_times(journal) if t < notes["end"] - 15]  # later ones had no time to come back
    delays, never = [], 0
    for log in logs.values():
        resumed = sorted(n / 1e9 for n in log["resumed_ns"])
        for back in backs:
            first = next((t for t in resumed if t >= back), None)
            if first is None or first - back > 60:
                never += 1
            else:
                delays.append(first - back)
    lost_outside = sum(log["lost_outside"] for log in logs.values())
    silent = [s for log in logs.values() for s in log["silent"]]
    rec = recorder_check(db) if db.exists() else {"rows": 0, "lost_outside": 0}
    print(f"soak: {shape.seconds:.0f} s day, {len({t.split(':', 1)[1] for t in logs})} topics, "
          f"{shape.consumers} consumers (+ recorder), files in {workdir}")  # fmt: skip
    print(f"ticks published by the bridge: {published:.0f}; received by consumers: "
          f"{sum(log['data'] for log in logs.values())}; recorder rows: {rec['rows']}")  # fmt: skip
    windows = sum(log["windows"] for log in logs.values())
    print(f"gaps marked (stale ... resumed windows, per consumer topic): {windows}")
    print(f"lost inside marked windows: {sum(log['lost_inside'] for log in logs.values())}")
    print(f"silent stretches > {SILENCE:g} s outside windows: {len(silent)}"
          + (f" (longest {max(silent):.1f} s)" if silent else ""))  # fmt: skip
    print(f"TWS back -> data on every topic ({len(backs)} outages x {len(logs)} topics): "
          f"p50 {percentile(delays, 0.5):.2f} s, max {max(delays, default=float('nan')):.2f} s, "
          f"never back: {never}")  # fmt: skip
    print(f"TWS saw at most {tws_max_rate(journal)} messages in one second from one connection (its limit: 50)")
    print(f"storm: {notes.get('storm')}; garbage: {notes.get('garbage')}")
    print(f"bridge RSS start {rss_start:.1f} MiB, peak {max(rss, default=0):.1f} MiB, end {rss_end:.1f} MiB; "
          f"CPU {cpu:.1f} s")  # fmt: skip
    if missing:
        print(f"consumers that wrote no summary: {missing}")
    unanswered = sum(notes.get(k, {}).get("unanswered", 0) for k in ("storm", "garbage"))
    if unanswered:
        print(f"requests that got no reply: {unanswered}")
    lost = lost_outside + rec["lost_outside"] + len(silent) + never + missing
    print(f"lost outside marked windows: {lost}")
    return 0 if lost == 0 and unanswered == 0 else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help="a one-minute day with fewer instruments and consumers")
    p.add_argument("--seconds", type=float, help="length of the day (default 300, or 70 with --short)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, journal, recordings)")
    p.add_argument("--role", choices=["day", "consumer"], default="day", help=argparse.SUPPRESS)
    p.add_argument("--pub", help=argparse.SUPPRESS)
    p.add_argument("--rep", help=argparse.SUPPRESS)
    p.add_argument("--pairs", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "consumer":
        pairs = [tuple(x) for x in json.loads(Path(args.pairs).read_text())]
        return consume(args.pub, args.rep, pairs, Path(args.out))  # type: ignore[arg-type]
    shape = SHORT if args.short else FULL
    if args.seconds:
        shape = Shape(args.seconds, *list(shape.__dict__.values())[1:])
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    code = run_day(shape, workdir, args.seed)
    if not args.keep and code == 0:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

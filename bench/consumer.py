"""What a consumer pays per message: `consumers.client.BusClient` against the least a Python
consumer can do (read the two frames, msgpack.unpackb), on the same stream.

    python -m bench.consumer [--messages 200000] [--rounds 5] [--topics 50]
    python -m bench.consumer --paced 750 --burst 5 --messages 20000

Without --paced the publisher sends one burst as fast as it can, so the consumer always finds messages
queued: this is the cost per message alone, in the consumer's main thread. With --paced the messages
come in bursts of --burst, --paced bursts a second (the shape of the bridge's output: one publish per
TWS read), so each burst wakes the consumer; the CPU is then the whole process's (ZeroMQ's I/O
thread included), which is where a consumer's cost goes at the rates TWS sends, and the report
gives the wake-ups per burst (voluntary context switches of every thread).

A publisher process sends of bus payloads (tickPrice / tickSize / tickString as the bridge
builds them, over `--topics` quote topics); a consumer process reads all of them and reports the
CPU time of its thread from the first data message to the last, per message. Each round runs every
consumer once against a fresh burst, in alternating order; the figures are medians over rounds with
their range. Kinds of consumer:

- floor: two `sub.recv()` (topic, payload) + `msgpack.unpackb`, nothing else (recv_multipart
  costs ~8x as much: it asks ZeroMQ after every frame whether more follow);
- floor poll: the same reads after waiting in `zmq.Poller`, draining with non-blocking reads until
  one fails (how BusClient waited before; it costs per wake-up, so only --paced tells it apart);
- client: `BusClient.recv()` (topic check, unpack, seq gap accounting, lease bookkeeping);
- client batch: `BusClient.recv_batch()` (the same checks, the messages already queued taken at once);
- floor batched: not what the bridge sends, a measure of what batching would save: each burst's
  messages of one topic travel as one message, a msgpack array of their payloads, read with two
  `recv()` and one `unpackb` (figures per payload, as for the others). With `--topics 6 --burst 30`
  a burst holds 5 payloads of each of 6 topics, the shape of the simulator's `--shared-clock`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import msgpack
import zmq

KINDS = ("floor", "floor poll", "client", "client batch", "floor batched")
WARM_TOPIC = b"warm"


def _payloads(topics: int, count: int) -> list[tuple[bytes, bytes]]:
    """`count` messages shaped as the bridge publishes them, round robin over `topics` topics."""
    out = []
    seqs = [0] * topics
    for i in range(count):
        t = i % topics
        seqs[t] += 1
        head = {"v": 1, "kind": "quote", "instrument": f"SYM{t}.STK.SMART.USD", "seq": seqs[t],
                "recv_ns": time.time_ns(), "tws_time": None}  # fmt: skip
        match i % 20:
            case n if n < 9:
                head |= {"event": "tick_price", "tick": "bid", "tick_type": 1, "price": 100 + i % 50 / 100,
                         "size": 300.0, "attrib": 0}  # fmt: skip
            case n if n < 17:
                head |= {"event": "tick_size", "tick": "bid_size", "tick_type": 0, "size": 200.0 + i % 7}
            case _:
                head |= {"event": "tick_string", "tick": "last_timestamp", "tick_type": 45, "value": "1764770000"}
        out.append((f"quote/SYM{t}.STK.SMART.USD".encode(), msgpack.packb(head)))
    return out


def _batches(messages: list[tuple[bytes, bytes]], burst: int) -> list[tuple[bytes, bytes]]:
    """Each `burst` of messages regrouped as one message per topic: a msgpack array of its payloads."""
    out = []
    for i in range(0, len(messages), burst):
        by_topic: dict[bytes, list[bytes]] = {}
        for topic, payload in messages[i : i + burst]:
            by_topic.setdefault(topic, []).append(payload)
        for topic, payloads in by_topic.items():
            if len(payloads) > 15:
                raise SystemExit("floor batched: at most 15 payloads of a topic in a burst (a msgpack fixarray)")
            out.append((topic, bytes([0x90 | len(payloads)]) + b"".join(payloads)))
    return out


def run_publisher(endpoint: str, topics: int, count: int, paced: float, burst: int, batched: bool = False) -> None:
    """Warm-up messages until "go" on stdin, then the messages (at once, or `paced` bursts of `burst` a
    second on a fixed schedule), then "done". `batched`: a burst's payloads of one topic as one message."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)  # the burst is queued whole: nothing is dropped, whatever the reader's pace
    pub.bind(endpoint)
    messages = _payloads(topics, count)
    if batched:
        messages = _batches(messages, burst)
        burst = 1 if not paced else max(1, len(messages) * burst // count)  # messages per burst, batched
    os.set_blocking(sys.stdin.fileno(), False)
    while not sys.stdin.readline():
        pub.send_multipart([WARM_TOPIC, msgpack.packb({"warm": True})])
        time.sleep(0.01)
    due = time.monotonic()
    for i, (topic, payload) in enumerate(messages):
        if paced and i % burst == 0:
            due += 1 / paced
            time.sleep(max(0.0, due - time.monotonic()))
        pub.send(topic, zmq.SNDMORE)
        pub.send(payload)
    print("done", flush=True)
    time.sleep(60)  # the consumer's queue lives in this process's I/O thread too: stay until killed


def _wakes() -> int:
    """This process's voluntary context switches so far, every thread: how often it slept and woke."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))
    return total


def run_consumer(endpoint: str, kind: str, count: int, paced: bool) -> None:
    """Read `count` data messages; print the CPU per message as JSON: the main thread's, or with `paced`
    the whole process's."""
    from consumers.client import BusClient

    clock = time.process_time if paced else time.thread_time
    if kind.startswith("floor"):
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        while sub.recv_multipart()[0] != WARM_TOPIC:
            pass
        print("ready", flush=True)
        recv, unpackb = sub.recv, msgpack.unpackb
        while recv() == WARM_TOPIC:  # every message is [topic, payload]: two reads, no RCVMORE question
            recv()
        first = recv()  # the first data message starts the clock
        start = clock()
        wakes0 = _wakes()
        if kind == "floor":
            for _ in range(count - 1):
                recv()
                unpackb(recv())
        elif kind == "floor batched":
            got = len(unpackb(first))
            while got < count:
                recv()
                got += len(unpackb(recv()))
        else:
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            got = 1
            while got < count:
                poller.poll(5000)
                with contextlib.suppress(zmq.Again):
                    while got < count:
                        recv(zmq.NOBLOCK)
                        unpackb(recv())
                        got += 1
        cpu = clock() - start
        wakes = _wakes() - wakes0
    else:
        bus = BusClient(endpoint, "tcp://127.0.0.1:1")  # no request socket is used: listen() needs none
        bus._sub.setsockopt(zmq.RCVHWM, 0)
        bus.listen("quote/")
        bus.listen(WARM_TOPIC.decode())
        while bus.recv(5) is None:
            pass
        print("ready", flush=True)
        while (msg := bus.recv(5)) is not None and msg.topic == "warm":
            pass
        start = clock()
        wakes0 = _wakes()
        got = 1
        if kind == "client":
            while got < count:
                bus.recv(5)
                got += 1
        else:
            while got < count:
                got += len(bus.recv_batch(5))
        cpu = clock() - start
        wakes = _wakes() - wakes0
        bus.close(unsubscribe=False)
    print(json.dumps({"us_per_msg": cpu / (count - 1) * 1e6, "wakes": wakes}), flush=True)


def one_run(kind: str, args: argparse.Namespace, port: int) -> tuple[float, int]:
    """CPU us per message, and the consumer's wake-ups (voluntary context switches, all threads)."""
    endpoint = f"tcp://127.0.0.1:{port}"
    me = [sys.executable, "-m", "bench.consumer", "--endpoint", endpoint, "--messages", str(args.messages),
          "--paced", str(args.paced), "--burst", str(args.burst)]  # fmt: skip
    batched = ["--batched"] if kind == "floor batched" else []
    pub = subprocess.Popen([*me, "--role", "publish", "--topics", str(args.topics), *batched],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    con = subprocess.Popen([*me, "--role", "consume", "--kind", kind], stdout=subprocess.PIPE, text=True)
    try:
        assert con.stdout is not None and pub.stdin is not None
        if con.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind}: the consumer did not start")
        pub.stdin.write("go\n")
        pub.stdin.flush()
        line = con.stdout.readline()
        if not line:
            raise SystemExit(f"{kind}: the consumer ended without a figure")
        figures = json.loads(line)
        return figures["us_per_msg"], figures["wakes"]
    finally:
        for proc in (con, pub):
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--paced", type=float, default=0.0, help="bursts a second (default: one burst, at once)")
    ap.add_argument("--burst", type=int, default=5, help="messages per burst with --paced (default 5)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="which consumers, comma separated (default: all)")
    ap.add_argument("--role", choices=("publish", "consume"), help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--batched", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "publish":
        run_publisher(args.endpoint, args.topics, args.messages, args.paced, args.burst, args.batched)
        return
    if args.role == "consume":
        run_consumer(args.endpoint, args.kind, args.messages, args.paced > 0)
        return
    from bench.e2e import free_port

    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    figures: dict[str, list[float]] = {kind: [] for kind in kinds}
    wakes: dict[str, list[int]] = {kind: [] for kind in kinds}
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            us, woke = one_run(kind, args, free_port())
            figures[kind].append(us)
            wakes[kind].append(woke)
        print(f"round {r + 1}: " + ", ".join(f"{k} {figures[k][-1]:.2f}" for k in kinds), file=sys.stderr)
    floor = statistics.median(figures["floor"])
    shape = f"{args.paced:g} bursts/s of {args.burst}, process CPU" if args.paced else "one burst, main thread CPU"
    print(f"consumer CPU per message, {args.messages:,} messages over {args.topics} topics ({shape}), "
          f"{args.rounds} rounds (median, range; from first to last message)")  # fmt: skip
    for kind in kinds:
        values = figures[kind]
        med = statistics.median(values)
        line = f"  {kind:13s} {med:6.2f} us  ({min(values):.2f}-{max(values):.2f})  {med / floor:.2f}x the floor"
        if args.paced:  # every thread's: ZeroMQ's I/O thread wakes for each TCP read, the main thread after it
            line += f", {statistics.median(wakes[kind]) * args.burst / args.messages:.1f} wake-ups per burst"
        print(line)


if __name__ == "__main__":
    main()

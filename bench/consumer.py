"""What a consumer pays per message: `consumers.client.BusClient` against the least a Python
consumer can do (read the two frames, msgpack.unpackb), on the same stream.

    python -m bench.consumer [--messages 200000] [--rounds 5] [--topics 50]

A publisher process sends a burst of bus payloads (tickPrice / tickSize / tickString as the bridge
builds them, over `--topics` quote topics); a consumer process reads all of them and reports the
CPU time of its thread from the first data message to the last, per message. Each round runs every
consumer once against a fresh burst, in alternating order; the figures are medians over rounds with
their range. Kinds of consumer:

- floor: two `sub.recv()` (topic, payload) + `msgpack.unpackb`, nothing else (recv_multipart
  costs ~8x as much: it asks ZeroMQ after every frame whether more follow);
- client: `BusClient.recv()` (topic check, unpack, seq gap accounting, lease bookkeeping);
- client batch: `BusClient.recv_batch()` (the same checks, the messages already queued taken at once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import msgpack
import zmq

KINDS = ("floor", "client", "client batch")
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


def run_publisher(endpoint: str, topics: int, count: int) -> None:
    """Warm-up messages until "go" on stdin, then the burst, then "done"."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)  # the burst is queued whole: nothing is dropped, whatever the reader's pace
    pub.bind(endpoint)
    burst = _payloads(topics, count)
    os.set_blocking(sys.stdin.fileno(), False)
    while not sys.stdin.readline():
        pub.send_multipart([WARM_TOPIC, msgpack.packb({"warm": True})])
        time.sleep(0.01)
    for topic, payload in burst:
        pub.send(topic, zmq.SNDMORE)
        pub.send(payload)
    print("done", flush=True)
    time.sleep(60)  # the consumer's queue lives in this process's I/O thread too: stay until killed


def run_consumer(endpoint: str, kind: str, count: int) -> None:
    """Read `count` data messages; print the thread CPU per message as JSON."""
    from consumers.client import BusClient

    if kind == "floor":
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
        recv()
        start = time.thread_time()
        for _ in range(count - 1):
            recv()
            unpackb(recv())
        cpu = time.thread_time() - start
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
        start = time.thread_time()
        got = 1
        if kind == "client":
            while got < count:
                bus.recv(5)
                got += 1
        else:
            while got < count:
                got += len(bus.recv_batch(5))
        cpu = time.thread_time() - start
        bus.close(unsubscribe=False)
    print(json.dumps({"us_per_msg": cpu / (count - 1) * 1e6}), flush=True)


def one_run(kind: str, topics: int, count: int, port: int) -> float:
    endpoint = f"tcp://127.0.0.1:{port}"
    me = [sys.executable, "-m", "bench.consumer"]
    pub = subprocess.Popen([*me, "--role", "publish", "--endpoint", endpoint, "--topics", str(topics),
                            "--messages", str(count)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    con = subprocess.Popen([*me, "--role", "consume", "--endpoint", endpoint, "--kind", kind, "--messages", str(count)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert con.stdout is not None and pub.stdin is not None
        if con.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind}: the consumer did not start")
        pub.stdin.write("go\n")
        pub.stdin.flush()
        line = con.stdout.readline()
        if not line:
            raise SystemExit(f"{kind}: the consumer ended without a figure")
        return json.loads(line)["us_per_msg"]
    finally:
        for proc in (con, pub):
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--kinds", default=",".join(KINDS), help="which consumers, comma separated (default: all)")
    ap.add_argument("--role", choices=("publish", "consume"), help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "publish":
        run_publisher(args.endpoint, args.topics, args.messages)
        return
    if args.role == "consume":
        run_consumer(args.endpoint, args.kind, args.messages)
        return
    from bench.e2e import free_port

    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    figures: dict[str, list[float]] = {kind: [] for kind in kinds}
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            figures[kind].append(one_run(kind, args.topics, args.messages, free_port()))
        print(f"round {r + 1}: " + ", ".join(f"{k} {figures[k][-1]:.2f}" for k in kinds), file=sys.stderr)
    floor = statistics.median(figures["floor"])
    print(f"consumer CPU per message, {args.messages:,} messages over {args.topics} topics, {args.rounds} rounds "
          "(median, range; thread CPU from first to last message)")  # fmt: skip
    for kind in kinds:
        values = figures[kind]
        med = statistics.median(values)
        print(f"  {kind:13s} {med:6.2f} us  ({min(values):.2f}-{max(values):.2f})  {med / floor:.2f}x the floor")


if __name__ == "__main__":
    main()

"""The processes of the end-to-end bench (bench/e2e.py): feeder, floor and subscriber.

    python bench/e2e_roles.py feeder --max-seconds S
    python bench/e2e_roles.py floor --tws-port P --pub ENDPOINT --topic T --max-seconds S
    python bench/e2e_roles.py subscriber --sub ENDPOINT --topic T --out FILE --max-seconds S

Each role is its own process so that none of them shares a GIL with the thing being measured.
They talk to the harness over stdin (commands, one per line) and stdout (JSON lines), and each
one exits by itself: on stdin EOF (the harness is gone), on a lost connection, or at
`--max-seconds` at the latest. SIGINT is ignored: the harness owns Ctrl-C and stops its
children with SIGTERM.

The timestamp: every data frame is a tickString (tick type 32) whose value is the feeder's
`time.time_ns()` taken just before the write, as 19 decimal digits. The bridge passes a
tickString value through unchanged (payload key `value`); the floor copies the same field into
its map under the same key. A value of all zeros marks a warm-up frame, not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import socket
import sys
import time
from array import array
from typing import Any

import msgpack
import zmq

SERVER_VERSION = 200
STAMP_TICK_TYPE = 32  # a string tick type; the bridge does not interpret its value (unlike 45 or 88)
STAMP_DIGITS = 19  # time.time_ns() has 19 digits until the year 2286
WARM_STAMP = b"0" * STAMP_DIGITS
MSG_TICK_STRING = b"46"


def emit(**fields: Any) -> None:
    """One JSON line to the harness."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


# --- feeder: a fake TWS ------------------------------------------------------------------------


class Feeder:
    """The server side of one TWS API connection, plus the paced tick writer.

    Answers the handshake, startApi (nextValidId + managedAccounts) and reqContractDetails (one
    ContractDetails + End for whatever instrument is asked), remembers the reqMktData id, and
    on "go RATE SECONDS" writes tickString frames at RATE per second for SECONDS.
    """

    def __init__(self) -> None:
        from bridge.protocol import ServerConnection

        self.server = ServerConnection()
        self.sock: socket.socket | None = None
        self.req_id: int | None = None
        self.head = self.tail = b""

    def on_client_data(self, data: bytes) -> None:
        from bridge.protocol import ClientHello
        from bridge.protocol import events as ev
        from bridge.protocol import requests as rq

        assert self.sock is not None
        out: list[bytes] = []
        for item in self.server.receive_data(data):
            if isinstance(item, ClientHello):
                hello = self.server.accept(item, SERVER_VERSION, "20260101 00:00:00 UTC")
                if hello is None:
                    raise SystemExit("feeder: client speaks no version we can answer")
                out.append(hello)
            elif isinstance(item, rq.StartApi):
                out.append(self.server.send(ev.NextValidId(1)))
                out.append(self.server.send(ev.ManagedAccounts(("DU0000000",))))
            elif isinstance(item, rq.ReqContractDetails):
                contract = item.contract._replace(con_id=item.contract.con_id or 424242, primary_exchange="NASDAQ")
                out.append(self.server.send(ev.ContractDetails(item.req_id, contract, market_name="BENCH")))
                out.append(self.server.send(ev.ContractDetailsEnd(item.req_id)))
            elif isinstance(item, rq.ReqMktData):
                self.set_request(item.req_id)
                emit(ev="mktdata", req_id=item.req_id)
            elif isinstance(item, rq.ReqCurrentTime):  # the bridge's heartbeat while the feed is quiet
                out.append(self.server.send(ev.CurrentTime(int(time.time()))))
            elif isinstance(item, rq.CancelMktData) and item.req_id == self.req_id:
                self.req_id = None
                emit(ev="cancelled", req_id=item.req_id)
        if out:
            self.sock.sendall(b"".join(out))

    def set_request(self, req_id: int) -> None:
        """Cut the frame template for this request id around a placeholder stamp."""
        from bridge.protocol import encode_event
        from bridge.protocol import events as ev

        placeholder = "9" * STAMP_DIGITS
        sample = encode_event(ev.TickString(req_id, STAMP_TICK_TYPE, placeholder), self.server.server_version)
        self.head, _, self.tail = sample.partition(placeholder.encode())
        assert self.head + placeholder.encode() + self.tail == sample
        self.req_id = req_id

    def warm(self) -> None:
        if self.sock is not None and self.req_id is not None:
            self.sock.sendall(self.head + WARM_STAMP + self.tail)

    def feed(self, rate: float, seconds: float) -> None:
        """Write round(rate * seconds) frames on a fixed schedule: every ~1 ms (at least), all that
        are due, each stamped as it is built. Falls behind rather than drops if writes block."""
        assert self.sock is not None and self.req_id is not None
        head, tail, now_ns, clock, sleep = self.head, self.tail, time.time_ns, time.perf_counter, time.sleep
        sendall = self.sock.sendall
        total = round(rate * seconds)
        sent = writes = 0
        t0 = clock()
        t0_ns = now_ns()
        deadline = t0 + 3 * seconds + 10
        while sent < total:
            start = clock()
            if start > deadline:
                break
            due = min(total, int((start - t0) * rate) + 1)
            if due > sent:
                sendall(b"".join([head + b"%019d" % now_ns() + tail for _ in range(due - sent)]))
                sent = due
                writes += 1
            wake = max(t0 + sent / rate, start + 0.001)
            pause = wake - clock()
            if pause > 0:
                sleep(pause)
        emit(ev="done", written=sent, writes=writes, t0_ns=t0_ns, t1_ns=now_ns())


def run_feeder(max_seconds: float) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    emit(ev="listening", port=listener.getsockname()[1])
    feeder = Feeder()
    stdin = sys.stdin.fileno()
    pending = b""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        watched = [stdin, listener] if feeder.sock is None else [stdin, feeder.sock]
        readable, _, _ = select.select(watched, [], [], 0.5)
        if listener in readable:
            sock, _ = listener.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            feeder.sock = sock
            listener.close()  # one client per feeder
            emit(ev="client")
        if feeder.sock is not None and feeder.sock in readable:
            data = feeder.sock.recv(65536)
            if not data:
                emit(ev="client_gone")
                return
            feeder.on_client_data(data)
        if stdin in readable:
            chunk = os.read(stdin, 4096)
            if not chunk:
                return  # harness gone
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "warm":
                    feeder.warm()
                elif words[0] == "go":
                    feeder.feed(float(words[1]), float(words[2]))
                elif words[0] == "quit":
                    return


# --- floor: the minimal reference loop ---------------------------------------------------------


def run_floor(tws_port: int, pub_endpoint: str, topic: str, max_seconds: float) -> None:
    """Handshake + startApi + one reqMktData through the protocol layer, then the loop the bridge
    is measured against: recv, split frames, pack the bridge's payload for the tick (the same keys
    and values), PUB send. No asyncio, no book, no metrics, no event decoding."""
    from bridge.payload import tick_name
    from bridge.protocol import ClientConnection, Contract, FrameReader
    from bridge.protocol import events as ev
    from bridge.protocol import requests as rq

    deadline = time.monotonic() + max_seconds
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 100_000)  # as the bridge's PUB, so that loss compares like with like
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(pub_endpoint)
    sock = socket.create_connection(("127.0.0.1", tws_port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = ClientConnection(client_id=99)
    sock.sendall(conn.initiate())
    requested = False
    while not requested and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("floor: feeder closed during the handshake")
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, ev.Connected):
                sock.sendall(conn.send(rq.StartApi(conn.client_id)))
            elif isinstance(event, ev.ManagedAccounts):  # the last thing the feeder says before data
                sock.sendall(conn.send(rq.ReqMktData(1, Contract("BENCH", "STK", "SMART", "USD"))))
                requested = True
    emit(ev="requested")

    # The feeder sends nothing between managedAccounts and the first tick, so no bytes are left
    # in `conn`'s buffer: the loop below starts on a frame boundary.
    reader = FrameReader()
    topic_b = topic.encode()
    instrument = topic.split("/", 1)[1]
    names: dict[bytes, tuple[str, int]] = {}  # tick type field -> (name, number), as the bridge names them
    pack = msgpack.Packer().pack
    send = super(zmq.Socket, pub).send  # the compiled send, as the bridge calls it (0.2 us less per frame)
    recv = sock.recv
    now_ns = time.time_ns
    seq = 0
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            data = recv(262144)
        except TimeoutError:
            continue
        if not data:
            break
        recv_ns = now_ns()
        reader.feed(data)
        for payload in reader.frames():
            fields = payload.split(b"\0")
            if fields[0] != MSG_TICK_STRING:
                continue
            seq += 1
            tick = names.get(fields[3])
            if tick is None:
                tick = names[fields[3]] = (tick_name(int(fields[3])), int(fields[3]))
            # The bridge's own payload for a tickString (docs/bus.md), key for key: the same output.
            send(topic_b, zmq.SNDMORE)
            send(pack({"v": 1, "kind": "quote", "event": "tick_string", "instrument": instrument, "seq": seq,
                       "recv_ns": recv_ns, "tws_time": None, "tick": tick[0], "tick_type": tick[1],
                       "value": fields[4].decode()}))  # fmt: skip
    pub.close()
    ctx.term()


# --- subscriber --------------------------------------------------------------------------------


def run_subscriber(endpoint: str, topic: str, out: str, max_seconds: float) -> None:
    """Receive until told to stop and then quiet for 0.3 s; write latencies (ns, int64) to `out`,
    their inbound part (to the payload's `recv_ns`) to `out`.in, and a JSON summary to stdout.
    Prints {"ev": "ready"} on the first warm-up message."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    stdin = sys.stdin.fileno()
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(stdin, zmq.POLLIN)
    latencies = array("q")
    record = latencies.append
    inbound = array("q")  # feeder write -> bridge/floor read (payload recv_ns): where a stall happened
    record_in = inbound.append
    unpackb, now_ns, recv, clock = msgpack.unpackb, time.time_ns, sub.recv_multipart, time.monotonic
    received = warm = gaps = backwards = 0
    prev_seq: int | None = None
    first_ns = last_ns = 0
    ready = False
    markers: list[str] = []
    cpu_at_ready = 0.0
    stop_at: float | None = None
    last_msg = clock()
    deadline = clock() + max_seconds
    while clock() < deadline:
        events = dict(poller.poll(100))
        if sub in events:
            for _ in range(100_000):  # drain what is queued, bounded
                try:
                    _, payload = recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msg = unpackb(payload)
                t = now_ns()
                if "value" not in msg:  # a marker on the topic (stale/resumed, an error), not a tick
                    markers.append(str(msg.get("event")))
                    continue
                stamp = int(msg["value"])
                seq = msg["seq"]
                if prev_seq is not None:
                    if seq > prev_seq + 1:
                        gaps += seq - prev_seq - 1
                    elif seq <= prev_seq:
                        backwards += 1
                prev_seq = seq
                if stamp == 0:
                    warm += 1
                    if not ready:
                        ready = True
                        usage = resource.getrusage(resource.RUSAGE_SELF)
                        cpu_at_ready = usage.ru_utime + usage.ru_stime  # startup is not the cost of a message
                        emit(ev="ready")
                    continue
                record(t - stamp)
                record_in(msg["recv_ns"] - stamp)
                received += 1
                if not first_ns:
                    first_ns = t
                last_ns = t
            last_msg = clock()
        if stdin in events and stop_at is None:
            os.read(stdin, 4096)  # "stop", or EOF when the harness is gone: either way, finish
            poller.unregister(stdin)
            stop_at = clock()
        if stop_at is not None:
            now = clock()
            if now - last_msg > 0.3 or now - stop_at > 20:
                break
    with open(out, "wb") as f:
        latencies.tofile(f)
    with open(out + ".in", "wb") as f:
        inbound.tofile(f)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit(ev="result", received=received, warm=warm, gaps=gaps, backwards=backwards, first_ns=first_ns,
         last_ns=last_ns, cpu_s=usage.ru_utime + usage.ru_stime - cpu_at_ready, markers=markers[:20])  # fmt: skip
    sub.close()
    ctx.term()


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=("feeder", "floor", "subscriber"))
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--tws-port", type=int)
    p.add_argument("--pub")
    p.add_argument("--sub")
    p.add_argument("--topic")
    p.add_argument("--out")
    a = p.parse_args(argv)
    if a.role == "feeder":
        run_feeder(a.max_seconds)
    elif a.role == "floor":
        run_floor(a.tws_port, a.pub, a.topic, a.max_seconds)
    else:
        run_subscriber(a.sub, a.topic, a.out, a.max_seconds)


if __name__ == "__main__":
    main()

"""Decode throughput: our protocol layer against the official client and ib_async, on the same bytes.

    python -m bench.decode [--messages N] [--chunk BYTES] [--seed S]

One realistic market-data stream (about 45% tickPrice, 40% tickSize, 10% tickString, 5%
tickByTick over 100 request ids) is written once with `encode_event` at server version 200
and then read by:

1. ours: `FrameReader` + `Decoder.decode_all`, fed in socket-sized chunks;
2. the official client (ibapi) driven inline: its `EReader` framing (`comm.read_msg`), the
   msg-id split of `EClient.run`, `comm.read_fields` and `Decoder.interpret`, no thread;
3. the official client for real: an `EClient` connected over loopback TCP to a local server
   (our `ServerConnection` does the handshake), its `EReader` thread feeding its queue and
   `EClient.run` consuming it;
4. ib_async: its `Client._onSocketHasData` (framing + split) calling its `Decoder.interpret`.

Every reader counts what it delivers, by message kind, and the counts must agree. The last
line printed is `ratio: X`, ours / official-inline messages per second.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bridge.protocol import Decoder, FrameReader, ServerConnection, encode_event
from bridge.protocol import events as ev
from bridge.protocol.requests import StartApi
from bridge.protocol.server import ClientHello

SERVER_VERSION = 200
INSTRUMENTS = 100
CHUNK = 64 * 1024
KINDS = ("tickPrice", "tickSize", "tickString", "tickByTick")
# ibapi follows every tickPrice of these tick types (bid, ask, last, delayed ones) with a
# tickSize callback carrying the size that came in the same message.
SIZE_CARRYING_PRICE_TICKS = frozenset({1, 2, 4, 66, 67, 68})


@dataclass
class Stream:
    """The framed bytes and what they hold, by kind."""

    data: bytes
    kinds: Counter[str]
    derived_sizes: int  # tickPrice messages ibapi also reports as a tickSize

    @property
    def messages(self) -> int:
        return sum(self.kinds.values())

    def chunks(self, size: int = CHUNK) -> list[bytes]:
        """The stream cut as a socket would deliver it: fixed-size reads, frames split anywhere."""
        return [self.data[i : i + size] for i in range(0, len(self.data), size)]


def make_stream(messages: int = 1_000_000, seed: int = 1) -> Stream:
    """A market-data stream with random-walk prices on a 0.01 grid and lot-sized volumes."""
    rnd = random.Random(seed)
    prices = [round(rnd.uniform(5.0, 800.0), 2) for _ in range(INSTRUMENTS)]
    volumes = [rnd.randrange(10_000, 5_000_000) for _ in range(INSTRUMENTS)]
    clock = 1_760_000_000
    frames: list[bytes] = []
    kinds: Counter[str] = Counter()
    derived = 0
    for _ in range(messages):
        req_id = rnd.randrange(INSTRUMENTS)
        price = prices[req_id] = max(0.01, round(prices[req_id] + rnd.choice((-0.01, 0.0, 0.01, 0.02, -0.02)), 2))
        r = rnd.random()
        clock += rnd.random() < 0.01
        if r < 0.45:
            tick_type = rnd.choice((1, 1, 2, 2, 4, 4, 6, 7, 9, 14))  # bid, ask, last; high, low, close, open
            size = float(rnd.randrange(1, 50) * 100) if tick_type in (1, 2, 4) else None
            if tick_type == 4 and rnd.random() < 0.05:
                size = round(rnd.uniform(0.0001, 3.0), 4)  # fractional shares / crypto
            mask = rnd.choice((0, 0, 0, 1, 2, 3)) if tick_type in (1, 2) else 0
            event: ev.Event = ev.TickPrice(req_id, tick_type, price, size, mask)
            kinds["tickPrice"] += 1
            derived += tick_type in SIZE_CARRYING_PRICE_TICKS
        elif r < 0.85:
            tick_type = rnd.choice((0, 3, 5, 8, 8))  # bid size, ask size, last size, volume
            if tick_type == 8:
                volumes[req_id] += rnd.randrange(1, 20) * 100
                size = float(volumes[req_id])
            else:
                size = float(rnd.randrange(1, 50) * 100)
            event = ev.TickSize(req_id, tick_type, size)
            kinds["tickSize"] += 1
        elif r < 0.95:
            if rnd.random() < 0.5:
                value = str(clock)  # LAST_TIMESTAMP
                event = ev.TickString(req_id, 45, value)
            else:  # RT_VOLUME: price;size;time ms;total volume;vwap;single trade
                value = f"{price};{rnd.randrange(1, 50) * 100};{clock}{rnd.randrange(1000):03d};{volumes[req_id]};"
                value += f"{price - 0.0137:.4f};{rnd.choice(('true', 'false'))}"
                event = ev.TickString(req_id, 48, value)
            kinds["tickString"] += 1
        else:
            kind = rnd.choice((1, 2, 3, 3, 4))
            if kind in (1, 2):
                size = float(rnd.randrange(1, 50) * 100)
                event = ev.TickByTickLast(req_id, kind, clock, price, size, rnd.choice((0, 0, 1, 2)), "NASDAQ", "")
            elif kind == 3:
                bid_size, ask_size = float(rnd.randrange(1, 50) * 100), float(rnd.randrange(1, 50) * 100)
                event = ev.TickByTickBidAsk(req_id, clock, price, round(price + 0.01, 2), bid_size, ask_size, 0)
            else:
                event = ev.TickByTickMidPoint(req_id, clock, round(price + 0.005, 3))
            kinds["tickByTick"] += 1
        frames.append(encode_event(event, SERVER_VERSION))
    return Stream(b"".join(frames), kinds, derived)


@dataclass
class Result:
    name: str
    seconds: float
    kinds: Counter[str]  # messages delivered, by kind (callbacks mapped back to messages)


# --- 1. ours ---------------------------------------------------------------------------------

_OUR_KINDS: dict[type, str] = {
    ev.TickPrice: "tickPrice",
    ev.TickSize: "tickSize",
    ev.TickString: "tickString",
    ev.TickByTickLast: "tickByTick",
    ev.TickByTickBidAsk: "tickByTick",
    ev.TickByTickMidPoint: "tickByTick",
}


def run_ours(chunks: Sequence[bytes], stream: Stream) -> Result:
    """Frames and events as `ClientConnection.events()` makes them; the consumer counts event types."""
    reader = FrameReader()
    decoder = Decoder(SERVER_VERSION)
    out: list[ev.Event] = []
    by_type: Counter[type] = Counter()
    start = time.perf_counter()
    for chunk in chunks:
        reader.feed(chunk)
        decoder.decode_all(reader.frames(), out)
        by_type.update(map(type, out))
        out.clear()
    seconds = time.perf_counter() - start
    kinds: Counter[str] = Counter()
    for kind, n in by_type.items():
        kinds[_OUR_KINDS.get(kind, kind.__name__)] += n
    return Result("ours (FrameReader + Decoder)", seconds, kinds)


# --- 2./3. the official client ------------------------------------------------------------------


def _ibapi_wrapper_class() -> type:
    from ibapi.wrapper import EWrapper

    class CountingWrapper(EWrapper):
        """Counts the callbacks of a tick stream; anything else is recorded as unexpected."""

        def __init__(self) -> None:
            super().__init__()
            self.tick_price = self.tick_size = self.tick_string = self.tick_by_tick = 0
            self.other: list[tuple[Any, ...]] = []
            self.finished_at = 0.0

        def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
            self.tick_price += 1

        def tickSize(self, reqId: int, tickType: int, size: Decimal) -> None:
            self.tick_size += 1

        def tickString(self, reqId: int, tickType: int, value: str) -> None:
            self.tick_string += 1

        def tickByTickAllLast(self, *args: Any) -> None:
            self.tick_by_tick += 1

        def tickByTickBidAsk(self, *args: Any) -> None:
            self.tick_by_tick += 1

        def tickByTickMidPoint(self, *args: Any) -> None:
            self.tick_by_tick += 1

        def currentTime(self, time_: int) -> None:  # the end-of-stream marker of the threaded run
            self.finished_at = time.perf_counter()

        def error(self, *args: Any) -> None:
            self.other.append(("error", *args))

        def connectAck(self) -> None:
            pass

        def connectionClosed(self) -> None:
            pass

        def kinds(self, stream: Stream) -> Counter[str]:
            if self.other:
                raise AssertionError(f"official client reported {self.other[:3]}")
            return Counter(
                tickPrice=self.tick_price,
                tickSize=self.tick_size - stream.derived_sizes,
                tickString=self.tick_string,
                tickByTick=self.tick_by_tick,
            )

    return CountingWrapper


def run_official_inline(chunks: Sequence[bytes], stream: Stream) -> Result:
    """ibapi's receive path without its thread: EReader's framing loop, then EClient.run's body."""
    from ibapi import comm
    from ibapi.decoder import Decoder as IbDecoder

    wrapper = _ibapi_wrapper_class()()
    decoder = IbDecoder(wrapper, SERVER_VERSION)
    read_msg, read_fields, interpret = comm.read_msg, comm.read_fields, decoder.interpret
    start = time.perf_counter()
    buf = b""
    for data in chunks:
        buf += data
        while buf:  # EReader.run
            _, msg, buf = read_msg(buf)
            if not msg:
                break
            # EClient.run, server version < 201: text message id up to the first NUL
            end = msg.index(b"\0")
            msg_id = int(msg[:end])
            interpret(read_fields(msg[end + 1 :]), msg_id)
    seconds = time.perf_counter() - start
    return Result("official client, decoder inline", seconds, wrapper.kinds(stream))


class _Progress:
    """How many messages the client has finished with; EClient.run reports each one."""

    consumed = 0


def _pieces(stream: Stream, size: int) -> tuple[list[bytes], list[int]]:
    """The stream cut into `size`-byte writes, and how many whole messages precede each write."""
    pieces = stream.chunks(size)
    reader = FrameReader()
    before, seen = [], 0
    for piece in pieces:
        before.append(seen)
        reader.feed(piece)
        seen += len(reader.frames())
    return pieces, before


def _wait_for(progress: _Progress, messages: int, stall: float = 0.02) -> None:
    """Until the client consumed `messages`, or made no progress for `stall` seconds.

    The stall limit matters: ibapi's reader keeps calling recv while reads come back full
    (4096 bytes), so a write it drained exactly sits in its local buffer, unqueued, until
    more bytes arrive or its 1 s socket timeout fires, and on that timeout it drops them.
    Waiting for those messages would stall us into exactly that loss.
    """
    last, since = progress.consumed, time.perf_counter()
    while progress.consumed < messages:
        time.sleep(0.0002)
        if progress.consumed != last:
            last, since = progress.consumed, time.perf_counter()
        elif time.perf_counter() - since > stall:
            return


def _serve(
    listener: socket.socket,
    pieces: list[bytes],
    before: list[int],
    window: int,
    progress: _Progress,
    started: list[float],
) -> None:
    """A TWS stand-in: handshake through our ServerConnection, then the stream, then close.

    With `window` > 0 it stays at most `window` writes ahead of what the client has consumed,
    as a market streams: a client that keeps up never sits on a backlog. With 0 it writes
    everything at once (a burst; ibapi's EReader is quadratic in the size of one).
    """
    conn, _ = listener.accept()
    with conn:
        server = ServerConnection()
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for item in server.receive_data(data):
                if isinstance(item, ClientHello):
                    hello = server.accept(item, SERVER_VERSION, "20251120 10:00:00 UTC")
                    assert hello is not None
                    conn.sendall(hello)
                elif isinstance(item, StartApi):
                    # The client has read our hello and started its reader thread: stream now.
                    started.append(time.perf_counter())
                    if not window:
                        conn.sendall(b"".join(pieces))
                    else:
                        for i, piece in enumerate(pieces):
                            _wait_for(progress, before[i - window] if i >= window else 0)
                            conn.sendall(piece)
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(65536):
                        pass
                    return


def run_official_threaded(stream: Stream, chunk: int = 65521, window: int = 4) -> Result:
    """A real EClient over loopback TCP: EReader thread -> queue -> EClient.run in this thread.

    The stream is followed by one currentTime message whose callback marks the end, so the
    time does not include EClient.run's 0.2 s queue poll after the socket closes. Writes are
    `chunk` bytes, by default not a multiple of 4096 (see `_wait_for`).
    """
    from ibapi.client import EClient

    progress = _Progress()

    class CountingClient(EClient):
        def msgLoopRec(self) -> None:  # EClient.run calls it after each message
            progress.consumed += 1

    marker = encode_event(ev.CurrentTime(1), SERVER_VERSION)
    pieces, before = _pieces(Stream(stream.data + marker, stream.kinds, stream.derived_sizes), chunk)
    listener = socket.create_server(("127.0.0.1", 0))
    started: list[float] = []
    server = threading.Thread(target=_serve, args=(listener, pieces, before, window, progress, started), daemon=True)
    server.start()
    wrapper = _ibapi_wrapper_class()()
    client = CountingClient(wrapper)
    client.connect("127.0.0.1", listener.getsockname()[1], clientId=1)
    if not client.isConnected():
        raise RuntimeError("official client did not connect to the local server")
    client.run()  # returns once the server closed and the queue is drained
    server.join(timeout=10)
    listener.close()
    if not started or not wrapper.finished_at:
        raise RuntimeError("official client run ended before the end-of-stream marker")
    name = "official client, EReader thread + EClient.run"
    return Result(name, wrapper.finished_at - started[0], wrapper.kinds(stream))


# --- 4. ib_async --------------------------------------------------------------------------------


class _IbAsyncCounter:
    """The wrapper methods ib_async's decoder calls for a tick stream, counting."""

    def __init__(self) -> None:
        self.tick_price = self.tick_size = self.tick_string = self.tick_by_tick = 0
        self.other: list[tuple[Any, ...]] = []

    def priceSizeTick(self, reqId: int, tickType: int, price: float, size: float) -> None:
        self.tick_price += 1

    def tickSize(self, reqId: int, tickType: int, size: float) -> None:
        self.tick_size += 1

    def tickString(self, reqId: int, tickType: int, value: str) -> None:
        self.tick_string += 1

    def tickByTickAllLast(self, *args: Any) -> None:
        self.tick_by_tick += 1

    def tickByTickBidAsk(self, *args: Any) -> None:
        self.tick_by_tick += 1

    def tickByTickMidPoint(self, *args: Any) -> None:
        self.tick_by_tick += 1

    def error(self, *args: Any) -> None:
        self.other.append(("error", *args))

    def kinds(self) -> Counter[str]:
        if self.other:
            raise AssertionError(f"ib_async reported {self.other[:3]}")
        return Counter(
            tickPrice=self.tick_price,
            tickSize=self.tick_size,
            tickString=self.tick_string,
            tickByTick=self.tick_by_tick,
        )


class _DecodeErrors(logging.Handler):
    """ib_async's decoder logs (and swallows) exceptions; a benchmark must not miss them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_ib_async(chunks: Sequence[bytes], stream: Stream) -> Result:
    """ib_async's own receive path: `Client._onSocketHasData` for each chunk, as its asyncio
    protocol calls it, set up as after a completed handshake at our server version."""
    from ib_async.client import Client

    wrapper = _IbAsyncCounter()
    client = Client(wrapper)
    client._serverVersion = SERVER_VERSION
    client.decoder.serverVersion = SERVER_VERSION
    client.connState = Client.CONNECTED
    client._apiReady = True
    errors = _DecodeErrors()
    log = logging.getLogger("ib_async")
    log.addHandler(errors)
    try:
        on_data = client._onSocketHasData
        start = time.perf_counter()
        for chunk in chunks:
            on_data(chunk)
        seconds = time.perf_counter() - start
    finally:
        log.removeHandler(errors)
    if errors.records:
        raise AssertionError(f"ib_async failed to decode: {errors.records[0].getMessage()[:200]}")
    return Result("ib_async (Client._onSocketHasData + Decoder)", seconds, wrapper.kinds())


# --- the run ---------------------------------------------------------------------------------------


def compare(stream: Stream, results: Sequence[Result]) -> list[str]:
    """Disagreements between what each reader delivered and what the stream holds."""
    problems = []
    for result in results:
        if +result.kinds != +stream.kinds:
            problems.append(f"{result.name}: {dict(result.kinds)} != {dict(stream.kinds)}")
    return problems


def rate(result: Result, stream: Stream) -> float:
    return stream.messages / result.seconds


def fastest(runs: int, readers: Sequence[Callable[[], Result]]) -> list[Result]:
    """Each reader's fastest of `runs` runs, interleaved: the one least disturbed by the machine."""
    best: list[Result | None] = [None] * len(readers)
    for _ in range(runs):
        for i, read in enumerate(readers):
            result = read()
            current = best[i]
            if current is None or result.seconds < current.seconds:
                best[i] = result
    return [r for r in best if r is not None]


def in_process(chunks: Sequence[bytes], stream: Stream) -> list[Callable[[], Result]]:
    """Ours, official inline and ib_async, each reading the same chunks."""
    return [
        lambda: run_ours(chunks, stream),
        lambda: run_official_inline(chunks, stream),
        lambda: run_ib_async(chunks, stream),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=CHUNK, help="bytes per socket read fed to the in-process readers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per in-process reader; the fastest counts")
    parser.add_argument(
        "--threaded-window",
        type=int,
        default=4,
        help="writes the local TWS may be ahead of the real EClient (0: the whole stream at once)",
    )
    parser.add_argument("--no-threaded", action="store_true", help="skip the real EClient over TCP")
    args = parser.parse_args(argv)

    stream = make_stream(args.messages, args.seed)
    chunks = stream.chunks(args.chunk)
    mix = ", ".join(f"{k} {100 * stream.kinds[k] / stream.messages:.1f}%" for k in KINDS)
    print(f"stream: {stream.messages} messages, {len(stream.data)} bytes at server version {SERVER_VERSION}; {mix}")
    print(
        f"python {sys.version.split()[0]}; in-process readers fed {args.chunk}-byte chunks, best of {args.repeat}; "
        f"threaded: loopback TCP, server at most {args.threaded_window or 'unlimited'} writes ahead"
    )
    ours, inline, ib_async = fastest(args.repeat, in_process(chunks, stream))
    threaded = [] if args.no_threaded else [run_official_threaded(stream, window=args.threaded_window)]
    results = [ours, inline, *threaded, ib_async]
    problems = compare(stream, results)
    for problem in problems:
        print("MISMATCH", problem)
    print(f"counts by kind agree: {'no' if problems else 'yes'} ({dict(stream.kinds)})")
    ours_rate = rate(ours, stream)
    print(f"{'reader':50} {'msgs/s':>12} {'seconds':>9} {'ours is':>9}")
    for result in results:
        r = rate(result, stream)
        print(f"{result.name:50} {r:12,.0f} {result.seconds:9.3f} {ours_rate / r:8.2f}x")
    print(f"ratio: {ours_rate / rate(inline, stream):.2f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

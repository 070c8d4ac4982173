"""The TWS connection: the I/O edge around `protocol.ClientConnection`.

Connects, performs the handshake and startApi, hands the messages of every read to the service
(undecoded, with the decoder for them: the service's hot path decodes its commonest ticks itself)
together with the time their bytes were read, and reconnects with backoff when TWS goes away
(daily restarts, a closed Gateway, a network blip). A TWS that does not finish the
handshake in time, or falls silent and does not answer a heartbeat, is given up on and
reconnected (`liveness`). Only `protocol.requests` types can be sent: the read-only guarantee
of the protocol layer carries through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import cast

from .fairness import SYSTEM, Lanes
from .liveness import Backoff, Failure, Liveness, Verdict
from .logsafe import quote
from .pacing import Pacer
from .protocol import ClientConnection, Decoder, ProtocolError
from .protocol.fields import FieldError
from .protocol.requests import ReqCurrentTime, Request, StartApi

log = logging.getLogger("tws-bridge.tws")

# The decoder of the connection, its message payloads of one read, recv wall ns, recv perf ns.
MessageSink = Callable[[Decoder, list[bytes], int, int], None]
StallSink = Callable[[bool, float], None]  # stalled (True) or talking again (False), seconds of silence
WATCH_INTERVAL = 0.25
BUFFER_POLL = 0.005  # how soon to look again when the socket has not taken the last message yet
PACING_NOTICE = 10  # log "pacing:" once this many messages wait


@dataclass(eq=False)
class Outgoing:
    """Requests that go out back to back (one lane turn), and when the last was handed to the socket."""

    requests: tuple[Request, ...]
    lane: Hashable
    submitted: float  # loop time
    written: asyncio.Future[bool] = field(repr=False)  # True once written, False if the connection went first


WrittenSink = Callable[[Request, float], None]  # a request, seconds it waited between submit and the socket


class _Link(asyncio.Protocol):
    def __init__(self, owner: TwsConnection) -> None:
        self.owner = owner
        self.conn = ClientConnection(owner.client_id)
        self.transport: asyncio.Transport | None = None
        self.ready = False  # TWS sent nextValidId: the API session is really up
        loop = asyncio.get_running_loop()
        self.became_ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.liveness: Liveness | None = None  # set once ready
        self.failure: Failure | None = None  # why we gave up on it, if we did
        self.why = ""

    def fail(self, how: Failure, why: str) -> None:
        """Give up on this connection: remember why, and drop it at once (no flushing)."""
        if self.failure is None:
            self.failure, self.why = how, why
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream transport (uvloop's is not a subclass)
        self.owner.attach(self)
        transport.write(self.conn.initiate())  # the greeting: TWS does not count it

    def data_received(self, data: bytes) -> None:
        recv_ns, recv_perf = time.time_ns(), time.perf_counter_ns()
        liveness = self.liveness
        if liveness is not None and liveness.heard(recv_perf * 1e-9):
            self.owner.on_stall(False, 0.0)
        conn = self.conn
        conn.receive_data(data)
        try:
            connected, payloads = conn.messages()
        except ProtocolError as exc:
            log.error("TWS broke the protocol: %s; dropping the connection", exc)
            self.fail(Failure.BROKEN, f"TWS broke the protocol ({exc})")
            return
        if connected is not None:
            log.info("handshake done: server version %d, TWS time %s", conn.server_version, quote(conn.connection_time))
            self.owner.send(StartApi(conn.client_id), urgent=True)
        if not self.ready and conn.api_started:
            self.ready = True
            if not self.became_ready.done():
                self.became_ready.set_result(None)
        if payloads:
            self.owner.sink(conn.decoder, payloads, recv_ns, recv_perf)  # type: ignore[arg-type]

    def write(self, request: Request) -> None:
        assert self.transport is not None
        try:
            data = self.conn.send(request)
        except FieldError as exc:  # limits.py keeps this from the bus; a bug must not stop the pacer's flush
            log.error("not sending %s to TWS: %s", type(request).__name__, exc)
            return
        self.transport.write(data)

    def unsent_bytes(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class TwsConnection:
    """Keeps one API connection to TWS up for as long as `run` runs."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        sink: MessageSink,
        on_down: Callable[[str], None],
        on_stall: StallSink = lambda stalled, silence: None,
        retry_max: float = 30.0,
        handshake_timeout: float = 5.0,
        heartbeat: float = 2.0,
        timeout: float = 10.0,
        on_written: WrittenSink = lambda request, waited: None,
    ) -> None:
        if not 0 < heartbeat < timeout / 2 or handshake_timeout <= 0:
            raise ValueError("need handshake_timeout > 0 and 0 < heartbeat < timeout / 2")
        self.host, self.port, self.client_id = host, port, client_id
        self.sink = sink
        self.on_down = on_down
        self.on_stall = on_stall
        self.retry_max = retry_max
        self.handshake_timeout = handshake_timeout
        self.heartbeat = heartbeat
        self.timeout = timeout
        self._link: _Link | None = None
        self._stopping = False
        self.on_written = on_written
        self._pacer = Pacer()
        self._queue: Lanes[Outgoing] = Lanes()
        self._writing: Outgoing | None = None  # the entry whose requests are going out
        self._left: list[Request] = []  # what of it is still to write
        self._flush_timer: asyncio.TimerHandle | None = None
        self._pacing_noted = False

    @property
    def connected(self) -> bool:
        """True between the server's handshake answer and the connection's end."""
        link = self._link
        return link is not None and link.conn.server_version > 0 and not link.closed.done()

    @property
    def server_version(self) -> int:
        return self._link.conn.server_version if self._link else 0

    def send(self, *requests: Request, lane: Hashable = SYSTEM, urgent: bool = False) -> Outgoing | None:
        """Queue requests behind TWS's message-rate limit (they go out back to back, in one turn of
        `lane`); None if there is no connection to write them to. Every write goes through here."""
        if not self.connected or not requests:
            return None
        loop = asyncio.get_running_loop()
        out = Outgoing(requests, lane, loop.time(), loop.create_future())
        self._queue.push(lane, out, urgent)
        if not self._pacing_noted and len(self._queue) >= PACING_NOTICE:
            self._pacing_noted = True
            log.info("pacing: %d requests wait their turn (TWS allows 50 messages a second)", len(self._queue))
        if self._flush_timer is None:
            self._flush()
        return out

    @property
    def queued(self) -> int:
        """Entries waiting for the pacer (not counting one being written)."""
        return len(self._queue)

    def ahead_of(self, out: Outgoing) -> int:
        """How many entries go to TWS before `out`; 0 once it is being written, -1 when gone."""
        if out is self._writing:
            return 0
        return self._queue.ahead_of(out.lane, out)

    def withdraw(self, out: Outgoing) -> bool:
        """Take a waiting entry back (its requester stopped waiting); False if it is already going."""
        if not self._queue.remove(out.lane, out):
            return False
        if not out.written.done():
            out.written.set_result(False)
        return True

    def _flush(self) -> None:
        """Write the next message if the pacer and the socket allow, else come back when they may."""
        self._flush_timer = None
        link = self._link
        if link is None or not self.connected:
            return
        loop = asyncio.get_running_loop()
        while self._left or self._queue:
            if link.unsent_bytes():
                # The socket has not taken the last message yet: what we write now would reach
                # TWS bunched with it, so it does not count as paced until the buffer is empty.
                self._flush_timer = loop.call_later(BUFFER_POLL, self._flush)
                return
            now = loop.time()
            wait = self._pacer.wait(now)
            if wait > 0:
                self._flush_timer = loop.call_later(wait, self._flush)
                return
            if not self._left:
                self._writing = self._queue.pop()
                assert self._writing is not None
                self._left = list(self._writing.requests)
            request = self._left.pop(0)
            link.write(request)
            self._pacer.sent(now)
            if not self._left and self._writing is not None:
                out, self._writing = self._writing, None
                if not out.written.done():
                    out.written.set_result(True)
                for each in out.requests:
                    self.on_written(each, now - out.submitted)
        self._pacing_noted = False

    def attach(self, link: _Link) -> None:
        """A new connection: requests queued for the last one are dropped (the service restores anew)."""
        self._abandon()
        self._link = link

    def _abandon(self) -> None:
        """The connection is gone: what waited for it is not written (the service restores anew)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        waiting = self._queue.drain()
        if self._writing is not None:
            waiting.append(self._writing)
        self._writing, self._left = None, []
        for out in waiting:
            if not out.written.done():
                out.written.set_result(False)
        self._pacer.clear()
        self._pacing_noted = False

    def silence(self) -> float:
        """Seconds since TWS last sent anything on a working session (0 when there is none)."""
        link = self._link
        if link is None or link.liveness is None or link.closed.done():
            return 0.0
        return link.liveness.silence(time.perf_counter())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(loop.time(), cap=self.retry_max)
        while not self._stopping:
            try:
                _, link = await asyncio.wait_for(
                    loop.create_connection(lambda: _Link(self), self.host, self.port), timeout=5
                )
            except (OSError, TimeoutError) as exc:
                delay = backoff.failed(loop.time(), Failure.UNREACHABLE)
                log.warning(
                    "cannot reach TWS at %s:%d (%s); is TWS/IB Gateway running with the API enabled on that port? "
                    "retrying in %.1f s",
                    self.host, self.port, exc or "timed out", delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            log.info("connected to TWS at %s:%d as client id %d", self.host, self.port, self.client_id)
            await self._session(link, backoff)
            self._abandon()
            if self._stopping:
                break
            how = link.failure or (Failure.DROPPED if link.ready else Failure.BROKEN)
            reason = link.why or (
                "TWS closed the connection" if link.ready
                else "TWS closed the connection before the API session started"  # e.g. 326, client id in use
            )  # fmt: skip
            delay = backoff.failed(loop.time(), how)
            log.warning("%s; reconnecting in %.1f s", reason, delay)
            self.on_down(reason)
            await asyncio.sleep(delay)

    async def _session(self, link: _Link, backoff: Backoff) -> None:
        """Wait for nextValidId within the handshake deadline, then watch the session until it ends."""
        await asyncio.wait((link.became_ready, link.closed), timeout=self.handshake_timeout,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if not link.ready:
            if not link.closed.done():
                link.fail(Failure.BROKEN, "TWS accepted the connection but did not finish the API handshake "
                          f"(greeting, startApi, nextValidId) within {self.handshake_timeout:g} s")  # fmt: skip
            await link.closed
            return
        backoff.up(asyncio.get_running_loop().time())
        now = time.perf_counter()
        link.liveness = Liveness(self.heartbeat, max(self.heartbeat * 1.5, self.timeout / 2), self.timeout, now)
        watcher = asyncio.get_running_loop().create_task(self._watch(link), name="tws heartbeat")
        try:
            await link.closed
        finally:
            watcher.cancel()

    async def _watch(self, link: _Link) -> None:
        """Heartbeat a quiet TWS (reqCurrentTime, which it always answers); give up on a silent one."""
        liveness = link.liveness
        assert liveness is not None
        while not link.closed.done():
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.perf_counter()
            verdict = liveness.check(now)
            if verdict is Verdict.PROBE:
                self.send(ReqCurrentTime(), urgent=True)
            elif verdict is Verdict.STALLED:
                log.warning("TWS has sent nothing for %.1f s and not answered a heartbeat: stalled",
                            liveness.silence(now))  # fmt: skip
                self.on_stall(True, liveness.silence(now))
            elif verdict is Verdict.DOWN:
                link.fail(Failure.BROKEN, f"TWS sent nothing for {liveness.silence(now):.1f} s (heartbeat unanswered)")

    async def close(self) -> None:
        """Flush what was written and close; `run` returns."""
        self._stopping = True
        link = self._link
        if link is not None and link.transport is not None and not link.closed.done():
            link.transport.close()  # asyncio flushes the write buffer before closing
            await asyncio.wait_for(asyncio.shield(link.closed), timeout=1.5)

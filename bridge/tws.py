"""The TWS connection: the I/O edge around `protocol.ClientConnection`.

Connects, performs the handshake and startApi, hands every decoded batch of events to the
service together with the time its bytes were read, and reconnects with backoff when TWS goes
away (daily restarts, a closed Gateway, a network blip). Only `protocol.requests` types can be
sent: the read-only guarantee of the protocol layer carries through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .pacing import Pacer
from .protocol import ClientConnection, ProtocolError
from .protocol import events as ev
from .protocol.requests import Request, StartApi

log = logging.getLogger("tws-bridge.tws")

EventSink = Callable[[list[ev.Event], int, int], None]  # events, recv wall ns, recv perf ns


class _Link(asyncio.Protocol):
    def __init__(self, owner: TwsConnection) -> None:
        self.owner = owner
        self.conn = ClientConnection(owner.client_id)
        self.transport: asyncio.Transport | None = None
        self.ready = False  # TWS sent nextValidId: the API session is really up
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.conn.initiate())

    def data_received(self, data: bytes) -> None:
        recv_ns, recv_perf = time.time_ns(), time.perf_counter_ns()
        conn = self.conn
        conn.receive_data(data)
        try:
            events = conn.events()
        except ProtocolError as exc:
            log.error("TWS broke the protocol: %s; dropping the connection and reconnecting", exc)
            assert self.transport is not None
            self.transport.abort()
            return
        if not self.ready:
            self.ready = any(type(e) is ev.NextValidId for e in events)
        if events and type(events[0]) is ev.Connected:
            log.info("handshake done: server version %d, TWS time %s", conn.server_version, conn.connection_time)
            self.send(StartApi(conn.client_id))
        self.owner.sink(events, recv_ns, recv_perf)

    def send(self, request: Request) -> None:
        assert self.transport is not None
        self.transport.write(self.conn.send(request))

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
        sink: EventSink,
        on_down: Callable[[str], None],
        retry_max: float = 30.0,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.sink = sink
        self.on_down = on_down
        self.retry_max = retry_max
        self._link: _Link | None = None
        self._stopping = False
        self._pacer: Pacer[Request] = Pacer()
        self._flush_timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        """True between the server's handshake answer and the connection's end."""
        link = self._link
        return link is not None and link.conn.server_version > 0 and not link.closed.done()

    @property
    def server_version(self) -> int:
        return self._link.conn.server_version if self._link else 0

    def send(self, request: Request, paced: bool = True) -> bool:
        """Write a request, or queue it behind TWS's message-rate limit; False if there is no
        connection to write it to. `paced=False` writes at once (the last words before closing)."""
        if not self.connected:
            return False
        if not paced:
            self._write([request])
            return True
        now = asyncio.get_running_loop().time()
        self._write(self._pacer.submit(request, now))
        if self._pacer.queued and self._flush_timer is None:
            log.info("pacing: %d requests wait their turn (TWS allows 50 messages a second)", self._pacer.queued)
            self._schedule_flush(now)
        return True

    def _write(self, requests: list[Request]) -> None:
        assert self._link is not None
        for request in requests:
            self._link.send(request)

    def _schedule_flush(self, now: float) -> None:
        wait = self._pacer.next_due(now)
        if wait is not None:
            self._flush_timer = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if not self.connected:
            return
        now = asyncio.get_running_loop().time()
        self._write(self._pacer.due(now))
        self._schedule_flush(now)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.5
        while not self._stopping:
            try:
                _, link = await asyncio.wait_for(
                    loop.create_connection(lambda: _Link(self), self.host, self.port), timeout=5
                )
            except (OSError, TimeoutError) as exc:
                log.warning(
                    "cannot reach TWS at %s:%d (%s); is TWS/IB Gateway running with the API enabled on that port? "
                    "retrying in %.1f s",
                    self.host, self.port, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            self._link = link
            self._pacer.clear()  # requests queued for the last connection are restored anew
            log.info("connected to TWS at %s:%d as client id %d", self.host, self.port, self.client_id)
            await link.closed
            if self._stopping:
                break
            if link.ready:
                reason, delay = "TWS closed the connection", 0.5
            else:  # refused before the session started (e.g. 326, client id in use): back off
                reason, delay = (
                    "TWS closed the connection before the API session started",
                    min(delay * 2, self.retry_max),
                )
            log.warning("%s; reconnecting in %.1f s", reason, delay)
            self.on_down(reason)
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Flush what was written and close; `run` returns."""
        self._stopping = True
        link = self._link
        if link is not None and link.transport is not None and not link.closed.done():
            link.transport.close()  # asyncio flushes the write buffer before closing
            await asyncio.wait_for(asyncio.shield(link.closed), timeout=1.5)

"""The relay's way to the bridge's request socket: one DEALER per NATS client, so each is its own peer.

The bridge queues requests fairly per request-socket peer and caps contract lookups per peer
(bridge.fairness). Were every NATS client to share the relay's one socket, one client's flood of
subscribes would queue the others behind it and use up their lookups. A NATS client is known by
its reply inbox (`_INBOX.<connection>.<request>`: everything before the last token), so requests
from one connection share a lane, and different connections do not. Lanes are bounded: beyond
`limit`, the least recently used idle one is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict

import zmq
import zmq.asyncio


class Lane:
    """One DEALER socket toward the bridge and the requests waiting for its replies."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.socket = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frames = await self.socket.recv_multipart()
            waiter = self.waiting.get(frames[0])
            if waiter is not None and not waiter.done() and len(frames) == 3:
                waiter.set_result(frames[2])

    def close(self) -> None:
        self._reader.cancel()
        self.socket.close()


class Lanes:
    """Lanes by requester key, at most `limit` of them ("" is the relay's own)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, limit: int = 64) -> None:
        self._ctx = ctx
        self._endpoint = endpoint
        self._limit = limit
        self._lanes: OrderedDict[str, Lane] = OrderedDict()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._lanes)

    def lane(self, key: str) -> Lane:
        lane = self._lanes.get(key)
        if lane is not None:
            self._lanes.move_to_end(key)
            return lane
        if len(self._lanes) >= self._limit:
            idle = next((k for k, other in self._lanes.items() if not other.waiting), None)
            if idle is None:  # every lane has a request in flight: share the oldest rather than grow
                oldest = next(iter(self._lanes))
                self._lanes.move_to_end(oldest)
                return self._lanes[oldest]
            self._lanes.pop(idle).close()
        lane = self._lanes[key] = Lane(self._ctx, self._endpoint)
        return lane

    async def ask(self, key: str, body: bytes, timeout: float) -> bytes:
        """Send `body` in `key`'s lane and wait for its reply; TimeoutError if none comes in time."""
        lane = self.lane(key)
        tag = str(next(self._ids)).encode()
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        lane.waiting[tag] = waiter
        try:
            await lane.socket.send_multipart([tag, b"", body])
            return await asyncio.wait_for(waiter, timeout)
        finally:
            lane.waiting.pop(tag, None)

    def close(self) -> None:
        for lane in self._lanes.values():
            with contextlib.suppress(Exception):
                lane.close()
        self._lanes.clear()


def requester(reply_subject: str) -> str:
    """The lane key of a NATS request: its reply inbox without the last (per-request) token."""
    return reply_subject.rsplit(".", 1)[0] if "." in reply_subject else reply_subject

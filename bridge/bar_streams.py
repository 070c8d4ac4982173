"""Keep-up-to-date requests (the `hbars` kind) through the bridge's one historical scheduler.

A reqHistoricalData with keepUpToDate is sent like any historical request (one of IB's 60 in ten
minutes, subject to the 15-second and 2-second rules) and then stays open at TWS until cancelled,
one of the 50 open historical requests IB allows. So it is a ticket of `histsched.Scheduler` that
stays `started` for the line's whole life: queued behind IB's pacing with everyone's history when
the line is made, `finished` when the line is cancelled or TWS refuses it, never cached. When the
connection to TWS goes, the scheduler puts it back in line, and sends it again once TWS is back,
under a new request id (`Stream.on_sent`), so the line comes back paced with everything else.

The data (backfill, updates) is the service's: it finds the line by request id. This module knows
only the request's life.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .hints import NOT_FATAL_FOR_A_LINE, is_notice
from .histkey import HistoryKey, Outcome, tws_outcome
from .histsched import Scheduler, Started, Ticket
from .ops import RequestError
from .protocol import events as ev
from .protocol import requests as rq
from .tws import Outgoing, TwsConnection

log = logging.getLogger("tws-bridge.history")

CANCELLED = Outcome("cancelled", None, "the line was cancelled")
_CANCEL_ANSWERS = (162, 366)  # TWS confirms a cancel with 162 "query cancelled", or 366 if it had ended


@dataclass(eq=False)
class Stream:
    """One hbars line's keep-up-to-date request, as the scheduler and TWS know it."""

    key: HistoryKey
    asker: Hashable  # the client whose subscribe made the line: its lane
    request: Callable[[int], rq.Request]  # the TWS request under a request id (lines.tws_request)
    on_sent: Callable[[int], None]  # the request is going to TWS under this id (first time, or again)
    ticket: Ticket | None = None
    started: Started | None = None
    req_id: int | None = None  # at TWS on the current connection under this id
    out: Outgoing | None = None


class Streams:
    """Every hbars line's request: opened, sent when the scheduler allows, cancelled, sent again."""

    def __init__(self, sched: Scheduler, tws: TwsConnection, next_id: Callable[[], int]) -> None:
        self.sched, self.tws, self._next_id = sched, tws, next_id
        self._by_ticket: dict[int, Stream] = {}
        self._by_req: dict[int, Stream] = {}
        self._cancelled: set[int] = set()  # our cancels' request ids: TWS's confirmation is expected

    def open(self, stream: Stream, now: float) -> None:
        """Into the scheduler's queue; `busy` if it is full."""
        ticket = self.sched.submit(stream.key, stream.asker, now)
        if ticket.state == "refused":
            raise RequestError("busy", ticket.message, extra={"refusal": ticket.refusal})
        stream.ticket = ticket
        self._by_ticket[ticket.id] = stream

    def send(self, started: Started, now: float) -> None:
        """The scheduler says the request may start: send it under a new request id."""
        stream = self._by_ticket.get(started.tickets[0].id) if started.tickets else None
        if stream is None:  # nobody waits for it any more
            self.sched.finished(started, CANCELLED, now)
            return
        req_id = self._next_id()
        out = self.tws.send(stream.request(req_id), lane=stream.asker)
        if out is None:  # the connection just went: the scheduler's lost() puts it back in line
            return
        stream.started, stream.req_id, stream.out = started, req_id, out
        self._by_req[req_id] = stream
        out.written.add_done_callback(lambda done: self._written(started, done))
        stream.on_sent(req_id)

    def _written(self, started: Started, done: asyncio.Future[bool]) -> None:
        if not done.cancelled() and done.result():
            self.sched.sent(started, asyncio.get_running_loop().time())

    def close(self, stream: Stream, now: float) -> Outgoing | None:
        """The line is gone: out of the queue, or cancelled at TWS (the Outgoing of the cancel)."""
        out = None
        if stream.req_id is not None:
            self._by_req.pop(stream.req_id, None)
            if stream.out is None or not self.tws.withdraw(stream.out):
                out = self.tws.send(rq.CancelHistoricalData(stream.req_id))
                self._cancelled.add(stream.req_id)
        if stream.ticket is not None:
            self._by_ticket.pop(stream.ticket.id, None)
            orphan = self.sched.cancel(stream.ticket, now)
            if orphan is not None:
                self.sched.finished(orphan, CANCELLED, now)  # its open slot is free again
        stream.ticket = stream.started = stream.out = stream.req_id = None
        return out

    def restart(self, stream: Stream, now: float) -> None:
        """TWS dropped its market data (1101): cancel the request at TWS and queue it again. One
        that waits in the queue (the connection went and came back) is sent anyway."""
        if stream.req_id is None:
            return
        self.close(stream, now)
        try:
            self.open(stream, now)
        except RequestError as exc:
            log.warning("could not ask TWS again for %s bars: %s", stream.key.bar_size, exc.message)

    def waiting(self, stream: Stream, now: float) -> Ticket | None:
        """The stream's ticket with its position and estimated start while it waits for IB's pacing."""
        ticket = stream.ticket
        if ticket is None or ticket.state != "queued":
            return None
        return self.sched.estimate(ticket, now)

    def on_error(self, error: ev.Error, now: float) -> bool:
        """TWS's error for a stream: taken (True), or for the service to publish on the line and,
        unless a warning, fail it (False: the stream has ended). A pacing violation puts the
        request back in line instead (the scheduler's rule)."""
        req_id = error.req_id
        if req_id in self._cancelled and error.code in _CANCEL_ANSWERS:
            self._cancelled.discard(req_id)
            return True
        stream = self._by_req.get(req_id)
        if stream is None:
            return False
        if is_notice(error.code):
            log.info("TWS %d on keep-up-to-date request %d: %s", error.code, req_id, error.message[:200])
            return True
        if error.code in NOT_FATAL_FOR_A_LINE:
            return False
        started = stream.started
        del self._by_req[req_id]
        stream.started = stream.out = stream.req_id = None
        if started is not None:
            self.sched.finished(started, tws_outcome(error.code, error.message), now)
        if stream.ticket is not None and stream.ticket.state == "queued":  # back in line (pacing)
            log.warning("TWS %d on keep-up-to-date request %d; asking again when IB's pacing allows: %s",
                        error.code, req_id, error.message[:200])  # fmt: skip
            return True
        if stream.ticket is not None:
            self._by_ticket.pop(stream.ticket.id, None)
        stream.ticket = None
        return False

    def lost(self) -> None:
        """The connection went (the scheduler has put every stream back in line)."""
        for stream in self._by_req.values():
            stream.started = stream.out = stream.req_id = None
        self._by_req.clear()
        self._cancelled.clear()

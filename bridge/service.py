"""The bridge service: one TWS connection, a PUB socket for data, a request socket for subscriptions.

The hot path is `on_tws_messages`: one read's messages, each looked up by request id, turned into
a payload, packed and published. Everything else (subscriptions, contract lookups, leases,
reconnects, TWS errors) happens off that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from . import hbars as hb
from . import history_rows as rows
from . import outages as out
from . import payload as pl
from .bar_streams import Stream
from .book import Line, LineKey, SubscriptionBook, View
from .config import Settings
from .curve import BusSecurity, CurveError, is_local
from .fairness import SYSTEM, RefusalCache
from .hints import NOT_FATAL_FOR_A_LINE, hint
from .history_desk import HISTORY_WAIT, HistoryDesk
from .history_ops import HISTORY_OPS
from .instruments import instrument_key, suggest
from .limits import MAX_FRAME_BYTES
from .lines import tws_cancel, tws_request
from .logsafe import Throttled, escape, quote
from .metrics import REP_OPS, Metrics
from .ops import (
    MARKET_DATA_TYPES,
    RequestError,
    bars_args,
    check_frames,
    parse_request,
    renew_ids,
    split_envelope,
    subscribe_args,
    view_args,
)
from .protocol import Contract, Decoder
from .protocol import events as ev
from .protocol import requests as rq
from .tws import Outgoing, TwsConnection
from .waits import wait_event

log = logging.getLogger("tws-bridge")

QUALIFY_TIMEOUT = 5.0
MAX_VIEWS = 16  # conflated views of one stream (intervals x field sets); each costs a look per interval
FIRST_ANSWER_WAIT = 1.0  # how long a new line's subscribe waits for TWS's first data or refusal
STATE_TOPIC = b"state"
INTERNAL_ERROR = "the bridge failed on this request (an internal error, logged); retry, or report it"
_HANDSHAKE_FAILURES = {zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol"}
_SNDMORE = int(zmq.SNDMORE)
# What a field builder raises on fields that do not convert (as the decoder's handlers do).
_FIELD_ERRORS = (ValueError, IndexError, OverflowError, TypeError)


@dataclass
class _Pending:
    """A request to TWS whose answer a REQ client is waiting for."""

    future: asyncio.Future[Any]
    details: list[ev.ContractDetails]


class Bridge:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.book = SubscriptionBook()
        self.tws = TwsConnection(
            settings.tws_host, settings.tws_port, settings.client_id, self.on_tws_messages, self._on_tws_down,
            self._on_tws_stall, handshake_timeout=settings.handshake_timeout, heartbeat=settings.heartbeat,
            timeout=settings.tws_timeout, on_written=self._tws_written,
        )  # fmt: skip
        self.outages = out.Outages()
        self.outages.begin(out.TWS_DOWN, "not connected to TWS yet")
        self.metrics.tws_silence.set_function(self.tws.silence)
        self.metrics.stale_topics.set_function(self._stale_topics)
        for kind in out.FARM_KINDS:
            self.metrics.tws_farm_up.labels(kind).set(1)
        self.metrics.tws_ib_connected.set(1)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # contract lookups by req_id
        self._first_answer: dict[int, asyncio.Future[ev.Error | None]] = {}  # new lines by req_id
        self._backfills: dict[Line, asyncio.Future[ev.Error | None]] = {}  # hbars lines until TWS's backfill
        self._built: list[bytes] = []  # topic, payload, ... of the current read, not sent yet
        self._views_changed = asyncio.Event()  # a new conflated view: the view publisher looks again
        self._fast_decoder: Decoder | None = None  # the connection `_fast` was made for
        self._fast: dict[bytes, tuple[type, pl.FieldBuilder]] = {}
        self._qualified: dict[Contract, Contract] = {}
        self._lookups: dict[Contract, asyncio.Future[Contract]] = {}  # in flight, shared by identical asks
        self._lookups_by_client: dict[bytes, int] = {}  # outstanding lookups per request-socket peer
        self._refused: RefusalCache[Contract] = RefusalCache(settings.unknown_instrument_ttl)
        self._mixed_types = False  # a non-live market data type was asked for on this connection
        self._state_seq = 0
        self.epoch = secrets.token_hex(8)  # this process's run: seqs start again only with a new epoch
        self._started = time.monotonic()
        # Outside input is logged quoted and clipped, and refusals at a bounded rate.
        self._junk_log = Throttled(log, logging.INFO, what="bad requests")
        self._refusal_log = Throttled(log, logging.INFO, burst=20, what="refused requests")
        self._internal_seen: set[tuple[str, str, int]] = set()
        # PUB sends never block, so the data socket is a plain one: zmq.asyncio's send builds a
        # Future per call, which cost the hot path as much as everything else together.
        self._ctx = zmq.Context()
        self._async_ctx = zmq.asyncio.Context.shadow(self._ctx)
        self.pub = self._ctx.socket(zmq.PUB)
        # Each subscriber that does not keep up holds up to this many messages in our memory.
        self.pub.setsockopt(zmq.SNDHWM, settings.pub_hwm)
        self.metrics.pub_hwm.set(settings.pub_hwm)
        self.pub.setsockopt(zmq.LINGER, 500)
        # pyzmq's Socket.send is Python over the compiled send (for the draft sockets' routing_id and
        # group, which PUB never takes); the compiled one is 0.2 us less per frame, two per message.
        self._send = super(zmq.Socket, self.pub).send
        self.router = self._async_ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 500)
        # Frames up to 1 MiB arrive and get a bad_request reply (over MAX_REQUEST_BYTES); larger
        # ones make ZeroMQ drop the peer (docs/bus.md, Limits).
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self._packer = msgpack.Packer()
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self.tws_ready = False  # nextValidId seen on the current connection
        self.security: BusSecurity | None = None
        self.last_tws_error: dict[str, object] | None = None
        self.history = HistoryDesk(self.tws, lambda: next(self._ids), self._qualify, lambda: self.tws_ready,
                                   self.metrics, settings.queue_wait_max, settings.history_time_scale)  # fmt: skip

    # --- lifecycle -----------------------------------------------------------------------------

    def bind(self) -> None:
        """Bind both sockets: CURVE when configured; a non-loopback address without it only when allowed."""
        s = self.settings
        if s.curve_secret_key:
            self.security = BusSecurity.from_files(s.curve_secret_key, s.curve_clients)
            self.security.start(self._ctx, [self.pub, self.router])
            log.info("CURVE on the bus: clients need a key from %s", escape(s.curve_clients))
        else:
            remote = [endpoint for endpoint in (s.pub, s.rep) if not is_local(endpoint)]
            if remote and not s.allow_plaintext_remote:
                raise CurveError(f"{', '.join(remote)} can be reached from other hosts: give CURVE keys "
                                 "(--curve-secret-key, --curve-clients) or --allow-plaintext-remote")  # fmt: skip
            if remote:
                log.warning("the bus binds %s without CURVE: anyone who can reach it may subscribe and cancel",
                            ", ".join(remote))  # fmt: skip
        self.pub.bind(self.settings.pub)
        self.router.bind(self.settings.rep)
        log.info("publishing data on %s, taking requests on %s (epoch %s, PUB high-water mark %d messages)",
                 self.settings.pub, self.settings.rep, self.epoch, self.settings.pub_hwm)  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then cancel every TWS request and say so on the bus."""
        self.metrics.tws_up.set(0)
        self._tasks = [
            asyncio.create_task(self.tws.run(), name="tws"),
            asyncio.create_task(self._serve_requests(), name="requests"),
            asyncio.create_task(self._expire_leases(), name="leases"),
            asyncio.create_task(self._publish_views(), name="views"),
            asyncio.create_task(self.history.run(), name="history"),
            asyncio.create_task(self._watch_bus(self.pub, "pub"), name="pub monitor"),
            asyncio.create_task(self._watch_bus(self.router, "rep"), name="rep monitor"),
        ]
        await stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        # The monitors go first, while their readers still read: libzmq emits a monitor event with a
        # blocking send, so an event (a subscriber leaving) after its reader closed would hang the
        # I/O thread with the monitor's lock held, and disable_monitor() with it, for good.
        self._close_monitor()
        for task in self._tasks:
            if task.get_name() != "tws":
                task.cancel()  # no new lines or lease cancels while the last cancels go out
        await self._cancel_all_at_tws()
        self.publish_state({"event": "connection", "state": "stopped", "server_version": self.tws.server_version,
                            "message": "bridge stopped"})  # fmt: skip
        try:
            await self.tws.close()
        except TimeoutError:
            log.warning("TWS did not close the connection in time")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.router.close()
        self.pub.close()
        if self.security is not None:
            self.security.stop()
        self._ctx.term()

    async def _cancel_all_at_tws(self) -> None:
        """Cancel every line through the pacer (TWS counts these too), within a bounded time."""
        sent = [out for line in self.book.lines() if (out := self._cancel_at_tws(line)) is not None]
        if not sent:
            log.info("stopping: no TWS requests to cancel")
            return
        bound = self.settings.shutdown_cancel_seconds
        await asyncio.wait([out.written for out in sent], timeout=bound)
        done = sum(out.written.done() and out.written.result() for out in sent)
        lost = sum(out.written.done() and not out.written.result() for out in sent)  # the connection closed
        if done == len(sent):
            log.info("stopping: cancelled %d TWS requests", done)
        else:
            late = len(sent) - done - lost
            why = [f"{lost} not sent before the connection to TWS closed"] if lost else []
            why += [f"{late} not sent within {bound:g} s"] if late else []
            log.warning("stopping: cancelled %d TWS requests; %s (TWS drops a closed client's requests anyway)",
                        done, "; ".join(why))  # fmt: skip

    # --- the hot path --------------------------------------------------------------------------

    def on_tws_messages(self, decoder: Decoder, payloads: list[bytes], recv_ns: int, recv_perf: int) -> None:
        """One read's messages: the commonest ticks go from their fields straight to a payload
        (`payload.field_builders`), everything else, and any tick those do not take, through the
        decoder as an event (`on_tws_event`)."""
        if decoder is not self._fast_decoder:  # a new connection: its layouts
            self._fast_decoder, self._fast = decoder, pl.field_builders(decoder)
        fast = self._fast
        lines = self.book.by_req_field
        pack = self._packer.pack
        received = self.metrics.hot.received
        # Built first, sent together (_send_built): a burst fills the subscribers' pipes at once, so
        # ZeroMQ's I/O thread wakes once per read rather than once per message (a wake-up is three
        # system calls). Whatever else is published meanwhile sends them first (_publish).
        append = self._built.append
        first_answer = self._first_answer  # the same dict throughout: _answered pops from it
        for payload in payloads:
            fields = payload.split(b"\0")
            entry = fast.get(fields[0])
            if entry is not None and len(fields) > 2:
                line = lines.get(fields[2])
                if line is not None:
                    if line.stale:
                        self._line_fresh(line, recv_ns)
                    try:
                        built = entry[1](fields, line, recv_ns)
                    except _FIELD_ERRORS:
                        pass  # malformed: decoded below, which says what is wrong with it
                    else:
                        received[entry[0]] += 1
                        append(line.topic)
                        append(pack(built))
                        if first_answer:
                            self._answered(line.req_id, None)
                        continue
            self.on_tws_event(decoder.decode(payload), recv_ns)
        if self._built:  # latency: the read's last message, the longest any message of that read waited
            self._send_built()
            self.metrics.hot.observe_latency((time.perf_counter_ns() - recv_perf) * 1e-9)

    def on_tws_event(self, event: ev.Event, recv_ns: int) -> None:
        """One decoded message: data for a line is built into this read's batch, the rest handled."""
        cls = type(event)
        self.metrics.hot.received[cls] += 1
        build = pl.BUILDERS.get(cls)
        if build is None:
            self._on_control_event(event, recv_ns)
            return
        line = self.book.by_req_id.get(event[0])  # type: ignore[index]
        if line is None:
            return  # answers still in flight for a request we cancelled
        if line.stale:
            self._line_fresh(line, recv_ns)
        self._built.append(line.topic)
        self._built.append(self._packer.pack(build(event, line, recv_ns)))
        if self._first_answer:
            self._answered(line.req_id, None)

    def _send_built(self) -> None:
        out, send, more = self._built, self._send, _SNDMORE
        for i in range(0, len(out), 2):
            send(out[i], more)
            send(out[i + 1])
        self.metrics.hot.published += len(out) // 2
        out.clear()

    # --- everything else TWS says ----------------------------------------------------------------

    def _on_control_event(self, event: ev.Event, recv_ns: int) -> None:
        if type(event) in _BAR_EVENTS and self._on_bars(event, recv_ns):  # type: ignore[arg-type]
            return
        if self.history.on_event(event):
            return
        if isinstance(event, ev.Error):
            self._on_tws_error(event, recv_ns)
        elif isinstance(event, ev.ContractDetails):
            pending = self._pending.get(event.req_id)
            if pending is not None:
                pending.details.append(event)
        elif isinstance(event, ev.ContractDetailsEnd):
            pending = self._pending.pop(event.req_id, None)
            if pending is not None and not pending.future.done():
                pending.future.set_result(pending.details)
        elif isinstance(event, ev.NextValidId):
            self._on_tws_ready()
        elif isinstance(event, ev.ManagedAccounts):
            log.info("TWS accounts: %s", quote(", ".join(event.accounts)))
        elif isinstance(event, ev.MalformedMessage):
            log.warning("TWS sent a malformed message (id %d): %s; skipped it", event.msg_id, escape(event.reason))

    def _on_tws_ready(self) -> None:
        if self.tws_ready:
            return  # a later nextValidId (answer to reqIds)
        self.tws_ready = True
        self.metrics.tws_up.set(1)
        self.metrics.tws_connects.inc()
        self._mixed_types = False
        log.info("TWS ready (server version %d)", self.tws.server_version)
        self.publish_state({"event": "connection", "state": "connected", "server_version": self.tws.server_version,
                            "message": "connected to TWS"})  # fmt: skip
        self._restore_lines("TWS connection is back")
        self.history.wake()
        self.metrics.tws_ib_connected.set(1)
        for kind in out.FARM_KINDS:
            self.metrics.tws_farm_up.labels(kind).set(1)
        if self.outages.end_all():  # each stream's window closes with its first data
            self._await_data(out.TWS_DOWN, "TWS connection is back and the stream flows again", None)

    def _restore_lines(self, why: str) -> None:
        lines = self.book.lines()
        for line in lines:
            if line.stream is not None:  # the historical scheduler sends it (again), paced, under a new id
                self.history.restart_stream(line.stream)  # type: ignore[arg-type]
            else:
                self.book.reassign(line, next(self._ids))
                self._send_line_request(line)
            self.publish_state(self._line_state(line, "restored", message=why))
        if lines:
            log.info("re-requested %d subscriptions (%s)", len(lines), why)

    def _on_tws_down(self, reason: str) -> None:
        self.tws_ready = False
        self.metrics.tws_up.set(0)
        if self.outages.begin(out.TWS_DOWN, reason):
            self._mark_all("stale", out.TWS_DOWN, reason)
        self.outages.end(out.TWS_STALLED)  # after: a stall that ends in a disconnect is one outage
        self._qualified.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(RequestError("not_connected", f"{reason} before it answered; retry"))
        self._pending.clear()
        self.history.lost()
        self.publish_state({"event": "connection", "state": "disconnected", "server_version": 0, "message": reason})

    def _on_tws_stall(self, stalled: bool, silence: float) -> None:
        """TWS stopped answering (stalled), or talks again before we gave up on it."""
        if stalled:
            self.metrics.tws_stalls.inc()
            self.metrics.tws_up.set(0)
            why = f"TWS has sent nothing for {silence:.1f} s and not answered a heartbeat"
            self.publish_state({"event": "connection", "state": "stalled", "server_version": self.tws.server_version,
                                "message": why})  # fmt: skip
            if self.outages.begin(out.TWS_STALLED, why):
                self._mark_all("stale", out.TWS_STALLED, why)
            return
        if not self.tws_ready:
            return
        self.metrics.tws_up.set(1)
        log.info("TWS answers again")
        self.publish_state({"event": "connection", "state": "connected", "server_version": self.tws.server_version,
                            "message": "TWS answers again after a stall"})  # fmt: skip
        if self.outages.end(out.TWS_STALLED):
            self._mark_all("resumed", out.TWS_STALLED, "TWS answers again after a stall")

    def _on_connection_notice(self, error: ev.Error) -> None:
        """1100/1101/1102 and the farm notices: state on the bus, gauges, stale/resumed markers."""
        code = error.code
        if code == 1100:
            self.metrics.tws_ib_connected.set(0)
            self.publish_state({"event": "ib_connection", "state": "lost", "data_lost": None, "code": code,
                                "message": error.message})  # fmt: skip
            if self.outages.begin(out.IB_CONNECTIVITY, error.message):
                self._mark_all("stale", out.IB_CONNECTIVITY, error.message, code)
        elif code in (1101, 1102):
            self.metrics.tws_ib_connected.set(1)
            data_lost = code == 1101
            if data_lost:
                self._restore_lines("TWS lost its market data (1101)")
            self.publish_state({"event": "ib_connection", "state": "restored", "data_lost": data_lost, "code": code,
                                "message": error.message})  # fmt: skip
            if self.outages.end(out.IB_CONNECTIVITY):
                if data_lost:  # requested again: each stream's window closes with its first data
                    self._await_data(out.IB_CONNECTIVITY, error.message, code)
                else:
                    self._mark_all("resumed", out.IB_CONNECTIVITY, error.message, code)
            return
        change = out.farm_change(code, error.message)
        if change is None:
            return
        went_stale, came_back = self.outages.farm(change)
        self.metrics.tws_farm_up.labels(change.kind).set(1 if self.outages.farm_up(change.kind) else 0)
        self.publish_state({"event": "farm", "farm": change.kind, "name": change.name, "state": change.state,
                            "code": code, "message": error.message})  # fmt: skip
        if went_stale:
            self._mark_all("stale", out.MARKET_FARM, error.message, code)
        elif came_back:
            self._mark_all("resumed", out.MARKET_FARM, error.message, code)

    def _mark_all(self, event: str, reason: str, message: str, code: int | None = None) -> None:
        """A stale or resumed marker on every data topic (those TWS singled out keep their own)."""
        now = time.time_ns()
        for line in self.book.lines():
            if not line.stale:
                self._publish_line(line, pl.marker_payload(line, event, reason, message, code, now))

    def _await_data(self, reason: str, message: str, code: int | None) -> None:
        """Every stream was requested again: each says `resumed` when its data flows, not before."""
        for line in self.book.lines():
            line.stale = (reason, message, code)

    def _line_fresh(self, line: Line, recv_ns: int) -> None:
        """Data on a stream in a window of its own (10197, requested again): it flows again."""
        reason, message, code = line.stale  # type: ignore[misc]
        line.stale = None
        if not self.outages.stale:
            self._publish_line(line, pl.marker_payload(line, "resumed", reason, message, code, recv_ns))

    def _stale_topics(self) -> float:
        lines = self.book.lines()
        return float(len(lines) if self.outages.stale else sum(line.stale is not None for line in lines))

    def _on_tws_error(self, error: ev.Error, recv_ns: int) -> None:
        self.metrics.tws_error(error.code)
        if not 2100 <= error.code < 2200:  # farm-status notices are not problems
            self.last_tws_error = {"code": error.code, "message": error.message, "hint": hint(error.code),
                                   "req_id": error.req_id, "time_ns": recv_ns}  # fmt: skip
        pending = self._pending.pop(error.req_id, None)
        if pending is not None:
            if not pending.future.done():
                pending.future.set_exception(_tws_refusal(error))
            return
        if self.history.on_error(error):
            return
        line = self.book.by_req_id.get(error.req_id)
        if line is None:
            level = logging.INFO if 2100 <= error.code < 2200 else logging.WARNING
            log.log(level, "TWS %d: %s", error.code, escape(error.message))
            self._on_connection_notice(error)
            if error.req_id == -1:
                self.publish_state({"event": "notice", "code": error.code, "message": error.message,
                                    "hint": hint(error.code)})  # fmt: skip
            return
        log.warning("TWS %d on %s: %s", error.code, escape(line.key.topic), escape(error.message))
        self._publish_line(line, pl.error_payload(line, error.code, error.message, hint(error.code), recv_ns))
        if error.code == 10197 and not line.stale:
            if not self.outages.stale:
                marker = pl.marker_payload(line, "stale", out.COMPETING_SESSION, error.message, error.code, recv_ns)
                self._publish_line(line, marker)
            line.stale = (out.COMPETING_SESSION, "data flows again: the competing session ended", None)
        if error.code in NOT_FATAL_FOR_A_LINE:
            return
        self._answered(line.req_id, error)
        self._backfilled(line, error)
        ids = self.book.remove_line(line)
        self._update_gauges()
        self.publish_state(self._line_state(line, "failed", code=error.code, message=error.message, consumers=len(ids)))

    def _answered(self, req_id: int, error: ev.Error | None) -> None:
        waiter = self._first_answer.pop(req_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(error)

    # --- keep-up-to-date bars (hbars lines) ----------------------------------------------------------

    def _on_bars(self, event: ev.HistoricalData | ev.HistoricalDataEnd | ev.HistoricalDataUpdate, recv_ns: int) -> bool:
        """An answer to an hbars line's request (False: not a line's): the backfill, then the forming
        bar; published as complete bars and updates of the forming one (hbars.BarSeries)."""
        line = self.book.by_req_id.get(event.req_id)
        series = line.series if line is not None else None
        if series is None:
            return False
        assert line is not None
        ended = False
        if isinstance(event, ev.HistoricalDataUpdate):
            bars = [b for row in rows.bar_rows((event.bar,)) for b in series.update(row)]
        else:
            if isinstance(event, ev.HistoricalData):
                series.receive(rows.bar_rows(event.bars))
            ended = isinstance(event, ev.HistoricalDataEnd) or event.ends
            bars = series.backfill_end() if ended else []
        if line.stale and (bars or ended):
            self._line_fresh(line, recv_ns)
        for complete, row in bars:
            self._publish(line.topic, pl.history_bar_payload(line, complete, row, recv_ns))
        if ended:
            self._backfilled(line, None)
        return True

    def _backfilled(self, line: Line, error: ev.Error | None) -> None:
        """An hbars line's backfill came (or TWS refused the line): subscribes waiting for it reply."""
        waiter = self._backfills.pop(line, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(error)

    def _room_for_bars(self) -> None:
        """At most MAX_LINES hbars lines: each holds one of IB's 50 open historical requests."""
        if sum(line.stream is not None for line in self.book.lines()) >= hb.MAX_LINES:
            why = (f"{hb.MAX_LINES} hbars lines are open, the most the bridge keeps (each is one of the 50 historical "
                   "requests IB allows open at once; the rest is kept for history requests)")  # fmt: skip
            raise RequestError("busy", f"{why}: share one of those, or unsubscribe one", extra={"limit": hb.MAX_LINES})

    def _stream_sent(self, line: Line, req_id: int) -> None:
        """The scheduler sends an hbars line's request (first, or again after an outage) under `req_id`."""
        if self.book.line(line.key) is line:
            self.book.reassign(line, req_id)

    async def _bars_subscribed(
        self, line: Line, sub_id: str, is_new: bool, client: bytes, deadline: float, backfill: int
    ) -> dict[str, Any]:
        """An hbars subscribe: a new line's request queued in the historical scheduler (IB's pacing, for
        everyone), then the reply waits for TWS's backfill until `deadline`; what it carries besides
        the usual subscribe reply: the complete bars, and where the request stands if still queued."""
        loop = asyncio.get_running_loop()
        series, spec = line.series, line.key.bars
        if is_new:
            assert spec is not None
            series = line.series = hb.BarSeries()
            self._backfills[line] = loop.create_future()
            try:
                line.stream = self.history.open_stream(line.contract, spec, client,
                                                       lambda req_id: tws_request(line, req_id),
                                                       lambda req_id: self._stream_sent(line, req_id))  # fmt: skip
            except RequestError:
                self._backfills.pop(line, None)
                self.book.unsubscribe(sub_id)
                self._update_gauges()
                raise
            self.publish_state(self._line_state(line, "active"))
        assert series is not None
        stream: Stream = line.stream  # type: ignore[assignment]
        waiter, waiting = self._backfills.get(line), self.history.stream_wait(stream)
        if waiter is not None and (waiting is None or waiting.eta <= deadline):  # else say so at once
            with contextlib.suppress(TimeoutError):
                error = await asyncio.wait_for(asyncio.shield(waiter), max(0.0, deadline - loop.time()))
                if error is not None:
                    raise _tws_refusal(error)
        extra: dict[str, Any] = {"columns": list(rows.BAR_COLUMNS), "backfill": series.last(backfill),
                                 "backfilled": series.backfilled}  # fmt: skip
        waiting = self.history.stream_wait(stream)
        if waiting is not None:
            extra |= {"queued_behind": waiting.position, "eta_s": round(max(0.0, waiting.eta - loop.time()), 3)}
        return extra

    # --- publishing off the hot path -----------------------------------------------------------

    def _publish(self, topic: bytes, payload: dict[str, object]) -> None:
        if self._built:  # what the current read built goes first: every topic keeps its order
            self._send_built()
        self._send(topic, _SNDMORE)
        self._send(self._packer.pack(payload))
        self.metrics.hot.published += 1

    def _publish_line(self, line: Line, payload: dict[str, object]) -> None:
        """A marker or error of a stream: on its topic and on every conflated view of it, so a view's
        consumer hears of outages and refusals as soon as everyone else."""
        self._publish(line.topic, payload)
        for view in line.views.values():
            view.seq += 1
            self._publish(view.topic, {**payload, "seq": view.seq})

    async def _publish_views(self) -> None:
        """Every conflated view: its values at most once an interval, and only when they changed."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            wake = now + 1.0
            for view, line in self.book.views():
                if not view.due:  # new: its first look is one interval after the subscribe's picture
                    view.due = now + view.key.interval_ms / 1000
                elif view.due <= now:  # from now, not from when it was due: never two closer than the interval
                    self._publish_view(line, view)
                    view.due = now + view.key.interval_ms / 1000
                wake = min(wake, view.due)
            self._views_changed.clear()
            await wait_event(self._views_changed, max(0.0, wake - loop.time()))

    def _publish_view(self, line: Line, view: View) -> None:
        if line.seq == view.line_seq:
            return  # nothing new on the stream
        folded = line.seq - view.line_seq
        view.line_seq = line.seq
        values = view.values(line.latest)
        if values == view.sent:
            return  # only fields this view leaves out changed
        view.sent = values
        view.seq += 1
        self._publish(view.topic, pl.view_payload(line, view.seq, values, folded, time.time_ns()))

    def publish_state(self, fields: dict[str, object]) -> None:
        self._state_seq += 1
        body = {"v": pl.SCHEMA, "kind": "state", "instrument": fields.get("instrument"), "seq": self._state_seq,
                "recv_ns": time.time_ns(), "tws_time": None, "epoch": self.epoch, **fields}  # fmt: skip
        self._publish(STATE_TOPIC, body)

    @staticmethod
    def _line_state(line: Line, state: str, **extra: object) -> dict[str, object]:
        return {"event": "subscription", "instrument": line.key.instrument, "data_kind": line.key.kind,
                "topic": line.key.topic, "state": state, "consumers": len(line.leases), **extra}  # fmt: skip

    def _update_gauges(self) -> None:
        self.metrics.subscriptions.set(self.book.subscription_count())
        self.metrics.lines.set(len(self.book.lines()))

    # --- the request socket ----------------------------------------------------------------------

    async def _serve_requests(self) -> None:
        while True:
            frames = await self.router.recv_multipart()
            envelope, body, enveloped = split_envelope(frames)
            task = asyncio.create_task(self._answer(envelope, body, enveloped))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, envelope: list[bytes], body: list[bytes], enveloped: bool) -> None:
        """One reply for every request, whatever came: an answer, a refusal, or `internal`."""
        op = "invalid"
        try:
            request = parse_request(check_frames(body, enveloped))
            op = request["op"]
            reply = await self.handle(request, envelope[0])
            outcome = "ok"
        except RequestError as exc:
            reply = {"ok": False, "code": exc.code, "error": exc.message}
            if exc.tws_code is not None:
                reply["tws_code"] = exc.tws_code
            reply.update(exc.extra)
            outcome = exc.code
            if exc.code == "bad_request":
                self.metrics.bad_request(exc.reason)
                self._junk_log.log("refused a bad request (op %s): %s", _op_name(op), escape(exc.message))
            else:
                self._refusal_log.log("refused %s request: %s", _op_name(op), escape(exc.message))
        except Exception as exc:  # a bug of ours: the client still gets a reply, the log a traceback once
            reply = {"ok": False, "code": "internal", "error": INTERNAL_ERROR}
            outcome = "internal"
            self._log_internal(op, exc)
        self.metrics.request(op, outcome)
        await self.router.send_multipart([*envelope, self._packer.pack(reply)])

    def _log_internal(self, op: str, exc: Exception) -> None:
        """A traceback the first time an exception type is raised at a place; a line after that."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = (type(exc).__name__, tb.tb_frame.f_code.co_filename if tb else "", tb.tb_lineno if tb else 0)
        if where not in self._internal_seen and len(self._internal_seen) < 100:
            self._internal_seen.add(where)
            log.error("internal error on a %s request; replied 'internal'", _op_name(op), exc_info=exc)
        else:
            self._refusal_log.log("internal error on a %s request again: %s", _op_name(op), escape(repr(exc)))

    async def handle(self, request: dict[str, Any], client: bytes = b"") -> dict[str, Any]:
        """Answer one request; `client` is the peer's identity on the request socket (its fair-queue lane)."""
        op = request["op"]
        if op == "subscribe":
            return await self._subscribe(request, client)
        if op == "renew":
            ids = renew_ids(request)
            renewed, unknown = self.book.renew(ids, time.monotonic())
            return {"ok": True, "renewed": renewed, "unknown": unknown}
        if op == "unsubscribe":
            sub_id = request.get("id")
            if not isinstance(sub_id, str):
                raise RequestError("bad_request", "unsubscribe needs 'id': the subscription id string")
            known, unused = self.book.unsubscribe(sub_id)
            if not known:
                raise RequestError("not_found", f"no subscription {sub_id[:40]!r} (already gone, or its lease lapsed)")
            if unused is not None:
                self._cancel_line(unused, "last consumer left")
            self._update_gauges()
            return {"ok": True}
        if op == "list":
            return {"ok": True, "subscriptions": [
                {"topic": line.key.topic, "instrument": line.key.instrument, "kind": line.key.kind,
                 "consumers": len(line.leases), "req_id": line.req_id}
                for line in self.book.lines()
            ]}  # fmt: skip
        if op == "status":
            return {"ok": True, "tws": {"connected": self.tws_ready, "state": self._connection_state(),
                                        "server_version": self.tws.server_version,
                                        "host": self.tws.host, "port": self.tws.port, "client_id": self.tws.client_id,
                                        "last_error": self.last_tws_error,
                                        "ib_connected": out.IB_CONNECTIVITY not in self.outages.causes,
                                        "farms": {k: dict(v) for k, v in self.outages.farms.items()},
                                        "silence_s": round(self.tws.silence(), 3)}, "epoch": self.epoch,
                    "stale": self.outages.causes, "stale_topics": int(self._stale_topics()),
                    "lines_in_use": len(self.book.lines()), "subscriptions": self.book.subscription_count(),
                    "uptime_s": round(time.monotonic() - self._started, 3)}  # fmt: skip
        if op == "ping":
            return {"ok": True, "pong": time.time_ns()}
        if op in HISTORY_OPS:
            return await self.history.handle(op, request, client)
        raise RequestError("bad_request", f"unknown op {str(op)[:40]!r}; ops: subscribe, renew, unsubscribe, list, "
                           f"status, ping, {', '.join(HISTORY_OPS)}", reason="unknown_op")  # fmt: skip

    def _connection_state(self) -> str:
        causes = self.outages.causes
        if out.TWS_DOWN in causes or not self.tws_ready:
            return "disconnected"
        return "stalled" if out.TWS_STALLED in causes else "connected"

    async def _subscribe(self, request: dict[str, Any], client: bytes = b"") -> dict[str, Any]:
        wanted, kind, md_type, generic, lease = subscribe_args(request, self.settings.lease_default)
        spec, backfill = bars_args(request) if kind == hb.KIND else (None, 0)
        view = view_args(request)
        if not self.tws_ready:
            raise RequestError("not_connected", "TWS is not connected right now; the bridge is reconnecting, retry")
        # One budget for the time this subscribe may wait in our own queue (lookup and new line together).
        arrival = asyncio.get_running_loop().time()
        deadline = arrival + self.settings.queue_wait_max
        try:
            contract = await self._qualify(wanted, client, deadline)
        except RequestError as exc:
            better = suggest(request["instrument"]) if isinstance(request.get("instrument"), str) else None
            if exc.code != "unknown_instrument" or not better:
                raise
            # BTC, EUR, ES typed as users do: name what works (a new error: askers of one lookup share `exc`).
            extra = {**exc.extra, "suggestion": better.split(" ", 1)[0].rstrip(":")}
            raise RequestError(exc.code, f"{exc.message}; try {better}", exc.tws_code, extra) from None
        key = LineKey(instrument_key(contract), kind, md_type, generic, spec)
        known = self.book.line(key)
        if spec is not None and known is None:
            self._room_for_bars()
        if view is not None and known is not None and view not in known.views and len(known.views) >= MAX_VIEWS:
            raise RequestError("bad_request", f"{key.topic} has {MAX_VIEWS} conflated views already (intervals and "
                               "field sets): ask for one of those", reason="too_many_views")  # fmt: skip
        line, sub_id, is_new = self.book.subscribe(key, contract, next(self._ids), lease, time.monotonic(), view)
        self._update_gauges()
        queued_behind: int | None = None
        bars: dict[str, Any] = {}
        if spec is not None:
            bars = await self._bars_subscribed(line, sub_id, is_new, client, arrival + HISTORY_WAIT, backfill)
        elif is_new:
            waiter: asyncio.Future[ev.Error | None] = asyncio.get_running_loop().create_future()
            self._first_answer[line.req_id] = waiter
            out = self._send_line_request(line, lane=client)
            self.publish_state(self._line_state(line, "active"))
            error = None
            try:
                written = await self._until_written(out, deadline) if out is not None else False
                if written is None:  # still in our queue: say so rather than hold the reply
                    queued_behind = max(self.tws.ahead_of(out), 0) if out is not None else 0
                elif written:
                    error = await asyncio.wait_for(waiter, FIRST_ANSWER_WAIT)
            except TimeoutError:
                error = None  # quiet instrument: no refusal either
            finally:
                self._first_answer.pop(line.req_id, None)
            if error is not None:
                raise _tws_refusal(error)
        reply = {"ok": True, "id": sub_id, "topic": key.topic, "instrument": key.instrument, "lease": lease,
                 "latest": dict(line.latest), "seq": line.seq, "epoch": self.epoch, **bars}  # fmt: skip
        shared = self.book.view_of(sub_id)
        if shared is not None:  # the view's own topic and picture; its updates start at the next interval
            self._views_changed.set()
            reply |= {"topic": shared.topic.decode(), "latest": shared.values(line.latest), "seq": shared.seq}
        if queued_behind is not None:
            reply["queued_behind"] = queued_behind
        return reply

    async def _until_written(self, out: Outgoing, deadline: float) -> bool | None:
        """True once `out` is on the socket, False if the connection went first, None if it still
        waits in our queue at `deadline`."""
        if not out.written.done():
            timeout = max(0.0, deadline - asyncio.get_running_loop().time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(out.written), timeout)
        return out.written.result() if out.written.done() else None

    def _tws_written(self, request: rq.Request, waited: float) -> None:
        self.metrics.tws_request_waited(type(request), waited)

    def _send_line_request(self, line: Line, lane: bytes | None = SYSTEM) -> Outgoing | None:
        requests: list[rq.Request] = []
        if line.key.kind == "quote":
            wanted = MARKET_DATA_TYPES[line.key.market_data_type]
            # reqMarketDataType is connection-wide in TWS and applies to later reqMktData. Lanes can
            # reorder lines, so once types are mixed each quote line carries its own, back to back.
            self._mixed_types = self._mixed_types or wanted != 1
            if self._mixed_types:
                requests.append(rq.ReqMarketDataType(wanted))
        requests.append(tws_request(line, line.req_id))
        line.queued = self.tws.send(*requests, lane=lane)
        return line.queued

    def _cancel_at_tws(self, line: Line) -> Outgoing | None:
        """Cancel the line at TWS, or take its request back if TWS has not seen it yet (None then)."""
        if line.stream is not None:
            self._backfilled(line, None)
            return self.history.close_stream(line.stream)  # type: ignore[arg-type]
        if isinstance(line.queued, Outgoing) and self.tws.withdraw(line.queued):
            return None
        return self.tws.send(tws_cancel(line))

    def _cancel_line(self, line: Line, why: str) -> None:
        self._cancel_at_tws(line)
        log.info("cancelled %s at TWS (%s)", escape(line.key.topic), why)
        self.publish_state(self._line_state(line, "cancelled", message=why))

    async def _qualify(self, wanted: Contract, client: bytes, deadline: float) -> Contract:
        """What the instrument is, from memory or from TWS (reqContractDetails, shared by identical asks)."""
        known = self._qualified.get(wanted)
        if known is not None:
            return known
        now = asyncio.get_running_loop().time()
        refusal = self._refused.get(wanted, now)
        if refusal is not None:
            self.metrics.unknown_instrument_cache_hits.inc()
            age, ttl = now - refusal.at, self._refused.ttl
            raise RequestError("unknown_instrument", f"{refusal.message}; remembered from TWS's answer {age:.0f} s ago "
                               f"(TWS is asked again after {ttl:g} s)", refusal.code, {"remembered": True})  # fmt: skip
        cap = self.settings.lookups_per_client
        held = self._lookups_by_client.get(client, 0)
        if held >= cap:
            why = f"this client has {held} contract lookups outstanding, the limit (lookups_per_client) is {cap}"
            raise RequestError("busy", f"{why}; wait for their replies", extra={"limit": cap})
        self._lookups_by_client[client] = held + 1
        try:
            lookup = self._lookups.get(wanted)
            if lookup is None:
                lookup = self._lookups[wanted] = asyncio.ensure_future(self._look_up(wanted, client, deadline))
                lookup.add_done_callback(lambda task: self._lookup_done(wanted, task))
            return await asyncio.shield(lookup)
        finally:
            left = self._lookups_by_client[client] - 1
            if left:
                self._lookups_by_client[client] = left
            else:
                del self._lookups_by_client[client]

    def _lookup_done(self, wanted: Contract, task: asyncio.Future[Contract]) -> None:
        if self._lookups.get(wanted) is task:
            del self._lookups[wanted]
        if not task.cancelled():
            task.exception()  # retrieved: every asker got it through its shield

    async def _look_up(self, wanted: Contract, client: bytes, deadline: float) -> Contract:
        """One reqContractDetails in `client`'s lane; TWS's 5 s count from when it was written."""
        req_id = next(self._ids)
        pending = _Pending(asyncio.get_running_loop().create_future(), [])
        self._pending[req_id] = pending
        try:
            out = self.tws.send(rq.ReqContractDetails(req_id, wanted), lane=client)
            written = await self._until_written(out, deadline) if out is not None else False
            if written is None and out is not None:
                behind = self.tws.ahead_of(out)
                if self.tws.withdraw(out):
                    raise RequestError("busy", f"this lookup waited {self.settings.queue_wait_max:g} s in the "
                                       f"bridge's own queue to TWS behind {behind} requests and TWS has not seen it "
                                       "yet (TWS takes 50 messages a second from all clients); retry in a moment",
                                       extra={"queued_behind": behind})  # fmt: skip
                written = out.written.result() if out.written.done() else False
            if not written:
                raise RequestError("not_connected", "the TWS connection went away before the lookup was sent; retry")
            try:
                details: list[ev.ContractDetails] = await asyncio.wait_for(pending.future, QUALIFY_TIMEOUT)
            except TimeoutError:
                raise RequestError(
                    "timeout", f"TWS did not describe the instrument within {QUALIFY_TIMEOUT:.0f} s of being asked"
                ) from None
        except RequestError as exc:
            if exc.tws_code == 200:
                self._refused.remember(wanted, 200, exc.message, asyncio.get_running_loop().time())
            raise
        finally:
            self._pending.pop(req_id, None)
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # e.g. not_connected set while it still waited in our queue
        if not details:
            raise RequestError("unknown_instrument", "TWS returned no contract for this instrument")
        if len(details) > 1:
            choices = ", ".join(sorted({instrument_key(d.contract) for d in details})[:10])
            raise RequestError("bad_request", f"{len(details)} contracts match; name one of: {choices}")
        contract = details[0].contract._replace(exchange=wanted.exchange or details[0].contract.exchange)
        self._qualified[wanted] = contract
        return contract

    async def _expire_leases(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            dropped, emptied = self.book.expire(time.monotonic())
            if dropped:
                self.metrics.lease_expiries.inc(len(dropped))
                log.info("%d subscriptions lapsed (no renewal)", len(dropped))
            for line in emptied:
                self._cancel_line(line, "lease expired")
            if dropped:
                self._update_gauges()
            self._junk_log.flush()  # a flood that stopped still gets its count logged
            self._refusal_log.flush()

    # --- subscribers on the PUB socket -------------------------------------------------------------

    async def _watch_bus(self, sock: zmq.Socket, name: str) -> None:
        """Monitor events of a bus socket: connections to PUB (twsbridge_pub_connections; ZeroMQ tells
        nobody which subscriber is slow, docs/bus.md, Slow subscribers) and refused handshakes."""
        events = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        events |= zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        if sock is self.pub:
            events |= zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
        endpoint = f"inproc://{name}-monitor"  # inproc names are per context; each Bridge has its own
        sock.monitor(endpoint, events)
        monitor = self._async_ctx.socket(zmq.PAIR)
        monitor.setsockopt(zmq.LINGER, 0)
        monitor.connect(endpoint)
        connections = 0
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())["event"]
                if event in (zmq.EVENT_ACCEPTED, zmq.EVENT_DISCONNECTED):
                    connections = connections + 1 if event == zmq.EVENT_ACCEPTED else max(0, connections - 1)
                    self.metrics.pub_connections.set(connections)
                else:
                    reason = _HANDSHAKE_FAILURES.get(event, "other")
                    self.metrics.bus_handshake_failures.labels(name, reason).inc()
                    self._refusal_log.log("refused a connection to the %s socket in the handshake (%s)", name, reason)
        finally:
            monitor.close()

    def _close_monitor(self) -> None:
        for sock in (self.pub, self.router):
            with contextlib.suppress(zmq.ZMQError):
                sock.disable_monitor()


_BAR_EVENTS = (ev.HistoricalData, ev.HistoricalDataEnd, ev.HistoricalDataUpdate)  # an hbars line's answers


def _op_name(op: str) -> str:
    """An op for the log: ours as is, anything a client made up quoted and clipped."""
    return op if op in REP_OPS else quote(op, 40)


def _tws_refusal(error: ev.Error) -> RequestError:
    code = "unknown_instrument" if error.code == 200 else "tws_error"
    words = f"TWS error {error.code}: {error.message}"
    extra = hint(error.code)
    return RequestError(code, f"{words} ({extra})" if extra else words, error.code)

"""One client connection: its handshake, its requests, its subscriptions.

Everything goes out through the connection's `ServerConnection`, so each client gets the
layouts of the version it negotiated (min(its max, the simulator's)), whatever the others use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.protocol import (
    ClientHello,
    In,
    MalformedRequest,
    OtherRequest,
    ProtocolError,
    ServerConnection,
    TickType,
    encode_raw,
)
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.fields import integer
from bridge.protocol.versions import MIN_SERVER_VER_CURRENT_TIME_IN_MILLIS

from . import generic, notices, ticks
from .catalogue import Instrument, details, lookup, matching_symbols
from .hmds import HistoryService
from .limits import MessageRate, rate_error_text
from .market import Quote

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger("bridge.simulator")

# With --stamp, each market-data step ends with a tickString of this type holding time.time_ns()
# as the step is written: lastRegTime, a string tick that IB clients store as it comes.
STAMP_TICK = TickType.LAST_REG_TIME

# A client that stops reading gets cut off rather than growing our buffer without bound.
MAX_WRITE_BUFFER = 32 * 1024 * 1024

# Requests that are not ours arrive as OtherRequest; the official client's names for them.
OTHER_REQUESTS = {
    3: "PlaceOrder", 4: "CancelOrder", 5: "ReqOpenOrders", 6: "ReqAccountUpdates", 7: "ReqExecutions",
    15: "ReqAutoOpenOrders", 16: "ReqAllOpenOrders", 17: "ReqManagedAccts",
    21: "ExerciseOptions", 58: "ReqGlobalCancel", 61: "ReqPositions", 62: "ReqAccountSummary",
    63: "CancelAccountSummary", 64: "CancelPositions", 74: "ReqPositionsMulti", 75: "CancelPositionsMulti",
    76: "ReqAccountUpdatesMulti", 77: "CancelAccountUpdatesMulti", 99: "ReqCompletedOrders",
    105: "ReqCurrentTimeInMillis",
}  # fmt: skip


def request_name(request: object) -> str:
    """The name a journal line gives a request: ours by type, others by the official client's name."""
    if isinstance(request, OtherRequest):
        return OTHER_REQUESTS.get(request.msg_id, f"Request{request.msg_id}")
    if isinstance(request, MalformedRequest):
        return "MalformedRequest"
    return type(request).__name__


def connection_time() -> str:
    """TWS's connection time, e.g. '20260105 14:03:59 UTC'."""
    return time.strftime("%Y%m%d %H:%M:%S %Z")


@dataclass
class Subscription:
    """A stream this client asked for; `kind` is mkt, tbt, bars, depth or hist (keepUpToDate)."""

    kind: str
    req_id: int
    inst: Instrument
    counts_as_line: bool = False
    task: asyncio.Task[None] | None = None


class Session:
    def __init__(
        self, sim: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int = 0
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.number = number  # the how-many-th connection since the simulator started (journal "conn")
        self.conn = ServerConnection()
        limit = sim.max_messages_per_second
        self.rate = MessageRate(limit) if limit > 0 else None
        self.muted = False  # fault: the greeting is never answered, nothing read is handled
        self.silent = False  # fault: nothing more is sent on this connection
        self._drop_countdown = 0  # fault: hang up after this many more messages (0: not armed)
        self._corked: list[bytes] | None = None  # messages held for one write (a sample clock's sample)
        self._drop_reset = False
        self.client_id: int | None = None
        self.registered = False
        self.market_data_type = 1
        self.subs: dict[tuple[str, int], Subscription] = {}
        self.closed = False
        self.hmds = HistoryService(self)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._handlers: dict[type, Callable[[Any], None]] = {
            rq.StartApi: self._start_api,
            rq.ReqIds: lambda r: self.send(ev.NextValidId(self.sim.next_order_id())),
            rq.ReqCurrentTime: lambda r: self.send(ev.CurrentTime(int(time.time()))),
            rq.ReqMarketDataType: self._market_data_type,
            rq.ReqMktData: self._req_mkt_data,
            rq.CancelMktData: self._cancel_mkt_data,
            rq.ReqTickByTickData: self._req_tick_by_tick,
            rq.CancelTickByTickData: lambda r: self._cancel("tbt", r.req_id),
            rq.ReqRealTimeBars: self._req_real_time_bars,
            rq.CancelRealTimeBars: lambda r: self._cancel("bars", r.req_id),
            rq.ReqMktDepth: self._req_mkt_depth,
            rq.CancelMktDepth: lambda r: self._cancel("depth", r.req_id),
            rq.ReqContractDetails: self._req_contract_details,
            rq.ReqMatchingSymbols: self._matching_symbols,
            rq.ReqHistoricalData: self.hmds.req_historical_data,
            rq.CancelHistoricalData: self.hmds.cancel_historical_data,
            rq.ReqHeadTimestamp: self.hmds.req_head_timestamp,
            rq.CancelHeadTimestamp: lambda r: None,  # answered at once: nothing left to cancel
            rq.ReqHistoricalTicks: self.hmds.req_historical_ticks,
            rq.ReqSecDefOptParams: self.hmds.req_sec_def_opt_params,
            OtherRequest: self._other,
            MalformedRequest: self._malformed,
        }

    def __repr__(self) -> str:
        return f"client {self.client_id if self.client_id is not None else '?'} ({self.peer})"

    # --- I/O ----------------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("connection from %s", self.peer)
        try:
            faults = self.sim.faults
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                if faults.stalled:  # a stalled TWS reads nothing: what came waits for the stall to end
                    await faults.resumed()
                self._receive(data, time.time())
        except (ConnectionError, OSError) as exc:
            log.info("%r: connection lost: %s", self, exc)
        finally:
            self.close("client disconnected")
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    def _receive(self, data: bytes, received: float) -> None:
        if self.muted:
            return
        try:
            items = self.conn.receive_data(data)
        except ProtocolError as exc:
            log.warning("refusing %s: %s", self.peer, exc)
            self.close("bad greeting")
            return
        for item in items:
            if self.closed:
                return
            if isinstance(item, ClientHello):
                if self.sim.faults.mute_handshake:
                    log.warning("%s greets; fault: never answering", self.peer)
                    self.muted = True
                    return
                self._hello(item, received)
            elif self._within_rate(received):
                self._handle(item, received)

    def _within_rate(self, received: float) -> bool:
        """Count a request against TWS's message rate; False once the connection is closed for it."""
        if self.rate is None:
            return True
        violation = self.rate.arrived(received)
        if violation is None:
            return True
        limit = self.rate.limit
        log.warning("%r exceeds %d messages per second (%d in the last second)", self, limit, violation.received)
        self.error(notices.NO_VALID_ID, (notices.RATE_EXCEEDED, rate_error_text(limit, violation)))
        if violation.disconnect:
            self.close(f"message rate exceeded {violation.number} times")
            return False
        return True

    def _hello(self, hello: ClientHello, received: float) -> None:
        answer = self.conn.accept(hello, self.sim.server_version, connection_time())
        if answer is None:
            log.warning(
                "refusing %s: it speaks v%d..%d, we speak up to v%d",
                self.peer, hello.min_version, hello.max_version, self.sim.server_version,
            )  # fmt: skip
            self.close("no common version")
            return
        log.info("%s greets with v%d..%d; speaking v%d", self.peer, hello.min_version, hello.max_version,
                 self.conn.server_version)  # fmt: skip
        self._write(answer)
        # Requests sent right behind the greeting are held until accept(); an empty feed
        # releases them now instead of waiting for the client's next bytes.
        for item in self.conn.receive_data(b""):
            if self.closed or not self._within_rate(received):
                return
            self._handle(item, received)

    def _write(self, data: bytes) -> None:
        if self.closed or self.silent or self.sim.faults.stalled:
            return
        if self._corked is not None:
            self._corked.append(data)
            return
        self._put(data, 1)

    def cork(self) -> None:
        """Hold what is sent until uncork(), then send it in one write: a sample's ticks arrive together."""
        self._corked = []

    def uncork(self) -> None:
        held, self._corked = self._corked, None
        if held and not self.closed:
            self._put(b"".join(held), len(held))

    def _put(self, data: bytes, messages: int) -> None:
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("%r reads too slowly (%d bytes queued); disconnecting", self,
                        self.writer.transport.get_write_buffer_size())  # fmt: skip
            self.close("slow consumer")
        elif self._drop_countdown:  # a corked write counts its messages; the hang-up follows the write
            self._drop_countdown = max(0, self._drop_countdown - messages)
            if not self._drop_countdown:
                self.hang_up(self._drop_reset, "fault: drop after messages")

    def send(self, event: ev.Event) -> None:
        if not self.closed:
            self._write(self.conn.send(event))

    def send_raw(self, msg_id: int, fields: list[object]) -> None:
        if not self.closed:
            self._write(encode_raw(msg_id, fields, self.conn.server_version))

    def error(self, req_id: int, code_and_text: tuple[int, str]) -> None:
        self.send(notices.error(req_id, code_and_text))

    # --- what faults do to a connection --------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        """Raw bytes, framed or not: protocol faults."""
        self._write(data)

    def go_silent(self, why: str) -> None:
        log.warning("%r: sending nothing more (%s)", self, why)
        self.silent = True

    def drop_after(self, messages: int, reset: bool) -> None:
        self._drop_countdown = messages
        self._drop_reset = reset

    def hang_up(self, reset: bool, why: str) -> None:
        """Close the connection; `reset` sends a TCP RST (SO_LINGER 0) instead of a FIN."""
        if reset and not self.closed:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        self.close(why)

    def drop_streams(self) -> None:
        """1101: TWS forgot this client's subscriptions; it must ask again."""
        for sub in list(self.subs.values()):
            self._drop(sub)

    def stream_req_ids(self, kind: str | None = None) -> list[int]:
        return [req_id for (k, req_id) in self.subs if kind is None or k == kind]

    def answer(self, request: Any) -> None:
        """Answer a request that waited for its data farm."""
        self._dispatch(request)

    def close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        for sub in list(self.subs.values()):
            self._drop(sub)
        if self.registered and self.client_id is not None and self.sim.clients.get(self.client_id) is self:
            del self.sim.clients[self.client_id]
        log.info("%r closed: %s", self, why)
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self.writer.close()

    # --- requests -----------------------------------------------------------------------------

    def _handle(self, request: Any, received: float) -> None:
        client_id = request.client_id if isinstance(request, rq.StartApi) else self.client_id
        self.sim.record(client_id, request, received, self.number)
        log.info("%r: %s", self, _describe(request))
        farm = notices.farm_of(request)
        if farm is not None and farm in self.sim.faults.broken_farms:
            self.sim.faults.held.append((self, request))  # answered when the farm is back
            return
        self._dispatch(request)

    def _dispatch(self, request: Any) -> None:
        try:
            self._handlers[type(request)](request)
        except Exception:  # a request we mishandle must not take the connection down
            log.exception("%r: failed to answer %s", self, request_name(request))

    def _start_api(self, r: rq.StartApi) -> None:
        if self.registered:
            log.warning("%r sent startApi twice; ignoring the second", self)
            return
        if r.client_id in self.sim.clients:
            # TWS answers a taken client id with 326 and drops the connection.
            self.client_id = r.client_id
            self.error(notices.NO_VALID_ID, notices.CLIENT_ID_IN_USE)
            self.close(f"client id {r.client_id} is already in use")
            return
        self.client_id = r.client_id
        self.registered = True
        self.sim.clients[r.client_id] = self
        if self.sim.faults.withhold_ready:
            log.warning("%r started; fault: withholding managedAccounts and nextValidId", self)
            return
        # The connect sequence TWS sends: accounts, the next order id, then farm status.
        self.send(ev.ManagedAccounts((self.sim.account,)))
        self.send(ev.NextValidId(self.sim.next_order_id()))
        for code_and_text in notices.FARMS_OK:
            self.error(notices.NO_VALID_ID, code_and_text)

    def _market_data_type(self, r: rq.ReqMarketDataType) -> None:
        if r.market_data_type in (1, 2, 3, 4):
            self.market_data_type = r.market_data_type

    def _resolve(self, req_id: int, contract: ev.Contract) -> Instrument | None:
        """The one instrument a streaming request names, or None after telling the client why."""
        found = lookup(contract)
        if len(found) == 1:
            return found[0]
        if not found:
            self.error(req_id, notices.NO_SECURITY_DEFINITION)
        else:
            self.error(req_id, notices.ambiguous(contract.symbol))
        return None

    def _duplicate(self, kind: str, req_id: int) -> bool:
        if (kind, req_id) in self.subs:
            self.error(req_id, notices.DUPLICATE_TICKER)
            return True
        return False

    def new_subscription(self, kind: str, req_id: int, inst: Instrument) -> Subscription:
        return Subscription(kind, req_id, inst)

    def _subscribe(self, sub: Subscription, listener: Callable[[Quote, Quote], None] | None) -> None:
        self.subs[(sub.kind, sub.req_id)] = sub
        if listener is not None:
            self.sim.feed(sub.inst).add((self, sub.kind, sub.req_id), listener)

    def _drop(self, sub: Subscription) -> None:
        self.subs.pop((sub.kind, sub.req_id), None)
        self.sim.feed(sub.inst).remove((self, sub.kind, sub.req_id))
        if sub.task is not None:
            sub.task.cancel()

    def _cancel(self, kind: str, req_id: int) -> bool:
        sub = self.subs.get((kind, req_id))
        if sub is None:
            return False
        self._drop(sub)
        return True

    def lines_in_use(self) -> int:
        return sum(1 for s in self.subs.values() if s.counts_as_line)

    def streams_in_use(self, kind: str) -> int:
        return sum(1 for k, _ in self.subs if k == kind)

    # --- market data --------------------------------------------------------------------------

    def _req_mkt_data(self, r: rq.ReqMktData) -> None:
        snapshot = r.snapshot or r.regulatory_snapshot
        if not snapshot and self._duplicate("mkt", r.req_id):
            return
        inst = self._resolve(r.req_id, r.contract)
        if inst is None:
            return
        ids, refused = generic.validate(r.generic_ticks, inst.contract.sec_type)
        if refused is None and ids and snapshot:
            refused = generic.SNAPSHOT_REFUSED
        if refused is not None:
            self.error(r.req_id, refused)
            return
        extras = generic.wanted(ids, inst)
        has_extras = bool(extras) or inst.contract.sec_type == "OPT"  # options always get their greeks
        if not snapshot and self.sim.lines_in_use() >= self.sim.max_lines:
            self.error(r.req_id, notices.MAX_TICKERS)
            return
        kind = self.market_data_type
        delayed = kind in (3, 4)
        faults = self.sim.faults
        if faults.competing:
            self.error(r.req_id, notices.COMPETING_SESSION)
        # TWS opens every market-data answer with the request's parameters and data type.
        self.send(ev.TickReqParams(r.req_id, inst.min_tick, inst.bbo_exchange, 3))
        self.send(ev.MarketDataTypeChanged(r.req_id, kind))
        # While data is paused (a fault) the picture waits for the first step after it.
        picture_due = faults.data_paused
        if not picture_due:
            q = self.sim.market.quote(inst)
            for event in ticks.picture(r.req_id, inst, q, delayed):
                self.send(event)
            if has_extras:
                for event in generic.picture(r.req_id, inst, q, extras, delayed):
                    self.send(event)
        if snapshot:
            self.send(ev.TickSnapshotEnd(r.req_id))
            return
        # Frozen data (2, 4) is the last picture and does not move; it still holds a line.
        live = kind in (1, 3)
        stamp = self.sim.stamp
        listener = None
        if live:

            def listener(old: Quote, new: Quote, req_id: int = r.req_id) -> None:
                nonlocal picture_due
                if picture_due:
                    picture_due = False
                    events = ticks.picture(req_id, inst, new, delayed)
                    if has_extras:
                        events += generic.picture(req_id, inst, new, extras, delayed)
                else:
                    events = ticks.changes(req_id, inst, old, new, delayed)
                    if has_extras:
                        events += generic.changes(req_id, inst, old, new, extras, delayed)
                for event in events:
                    self.send(event)
                if stamp:  # --stamp: when this step left us, for a benchmark's latency (not a TWS tick)
                    self.send(ev.TickString(req_id, STAMP_TICK, str(time.time_ns())))

        self._subscribe(Subscription("mkt", r.req_id, inst, counts_as_line=True), listener)

    def _cancel_mkt_data(self, r: rq.CancelMktData) -> None:
        if not self._cancel("mkt", r.req_id):
            self.error(r.req_id, (notices.CANT_FIND_TICKER, f"Can't find EId with tickerId:{r.req_id}"))

    def _req_tick_by_tick(self, r: rq.ReqTickByTickData) -> None:
        if self._duplicate("tbt", r.req_id):
            return
        if r.tick_type not in ticks.TICK_BY_TICK_KINDS:
            self.error(r.req_id, (10189, f"Failed to request tick-by-tick data: invalid tick type {r.tick_type}"))
            return
        inst = self._resolve(r.req_id, r.contract)
        if inst is None:
            return
        if self.sim.tick_by_tick_in_use() >= self.sim.max_tick_by_tick:
            self.error(r.req_id, notices.MAX_TICK_BY_TICK)
            return
        exchange = inst.contract.exchange if inst.contract.sec_type != "STK" else "NASDAQ"
        if inst.trades or r.tick_type not in ("Last", "AllLast"):  # forex and indices print no trades
            for event in ticks.tick_by_tick(r.req_id, r.tick_type, None, self.sim.market.quote(inst), exchange):
                self.send(event)

        def listener(old: Quote, new: Quote) -> None:
            for event in ticks.tick_by_tick(r.req_id, r.tick_type, old, new, exchange):
                self.send(event)

        self._subscribe(Subscription("tbt", r.req_id, inst), listener)

    def _req_real_time_bars(self, r: rq.ReqRealTimeBars) -> None:
        if self._duplicate("bars", r.req_id):
            return
        inst = self._resolve(r.req_id, r.contract)
        if inst is None:
            return
        builder = ticks.BarBuilder(r.what_to_show, self.sim.market.quote(inst))
        sub = Subscription("bars", r.req_id, inst)
        sub.task = asyncio.get_running_loop().create_task(self._emit_bars(r.req_id, builder))
        self._subscribe(sub, lambda old, new: builder.add(new))

    async def _emit_bars(self, req_id: int, builder: ticks.BarBuilder) -> None:
        """Close a bar at every multiple of the bar period, as TWS's 5-second bars are aligned."""
        period = self.sim.bar_seconds
        while not self.closed:
            now = time.time()
            boundary = (math.floor(now / period) + 1) * period
            await asyncio.sleep(boundary - now)
            if not self.sim.faults.data_paused:
                self.send(builder.finish(req_id, int(boundary - period)))

    def _req_mkt_depth(self, r: rq.ReqMktDepth) -> None:
        if self._duplicate("depth", r.req_id):
            return
        inst = self._resolve(r.req_id, r.contract)
        if inst is None:
            return
        if self.sim.depth_books_in_use() >= self.sim.max_depth_books:
            n = self.sim.max_depth_books
            self.error(r.req_id, (notices.MAX_DEPTH, f"Max number ({n}) of market depth requests has been reached"))
            return
        rows = max(1, min(r.num_rows, 10))
        for event in ticks.depth_events(r.req_id, inst, self.sim.market.quote(inst), rows, 0, r.is_smart_depth):
            self.send(event)

        def listener(old: Quote, new: Quote) -> None:
            for event in ticks.depth_events(r.req_id, inst, new, rows, 1, r.is_smart_depth):
                self.send(event)

        self._subscribe(Subscription("depth", r.req_id, inst), listener)

    # --- reference data and the rest -----------------------------------------------------------

    def _req_contract_details(self, r: rq.ReqContractDetails) -> None:
        found = lookup(r.contract)
        if not found:
            self.error(r.req_id, notices.NO_SECURITY_DEFINITION)
            return
        for inst in found:
            self.send(details(inst, r.req_id, r.contract.exchange))
        self.send(ev.ContractDetailsEnd(r.req_id))

    def _other(self, r: OtherRequest) -> None:
        """Account, order and other requests: empty answers with their End message, or a refusal."""
        f = r.fields
        account = self.sim.account
        match r.msg_id:
            case 5 | 16:  # reqOpenOrders, reqAllOpenOrders
                self.send_raw(In.OPEN_ORDER_END, [1])
            case 6:  # reqAccountUpdates: version, subscribe, account
                if len(f) > 1 and integer(f[1]):
                    acct = f[2].decode() if len(f) > 2 and f[2] else account
                    self.send_raw(In.ACCOUNT_UPDATE_TIME, [1, time.strftime("%H:%M")])
                    self.send_raw(In.ACCOUNT_DOWNLOAD_END, [1, acct])
            case 7:  # reqExecutions: version, reqId, filter...
                self.send_raw(In.EXECUTION_DATA_END, [1, _field_int(f, 1)])
            case 17:  # reqManagedAccts
                self.send(ev.ManagedAccounts((account,)))
            case 61:  # reqPositions
                self.send_raw(In.POSITION_END, [1])
            case 62:  # reqAccountSummary: version, reqId, group, tags
                self.send_raw(In.ACCOUNT_SUMMARY_END, [1, _field_int(f, 1)])
            case 74:  # reqPositionsMulti: version, reqId, account, modelCode
                self.send_raw(In.POSITION_MULTI_END, [1, _field_int(f, 1)])
            case 76:  # reqAccountUpdatesMulti: version, reqId, account, modelCode, ledgerAndNLV
                self.send_raw(In.ACCOUNT_UPDATE_MULTI_END, [1, _field_int(f, 1)])
            case 99:  # reqCompletedOrders: apiOnly; the answer has no version field
                self.send_raw(In.COMPLETED_ORDERS_END, [])
            case 105:  # reqCurrentTimeInMillis exists from server 197
                if self.conn.server_version >= MIN_SERVER_VER_CURRENT_TIME_IN_MILLIS:
                    self.send(ev.CurrentTimeInMillis(int(time.time() * 1000)))
            case 3:  # placeOrder: the order id is the first field (no version since server 145)
                self.error(_field_int(f, 0), notices.READ_ONLY)
            case 4:  # cancelOrder: version then id until server 192, the id alone from 192
                self.error(_field_int(f, 0 if self.conn.server_version >= 192 else 1), notices.READ_ONLY)
            case 21:  # exerciseOptions: version, reqId, ...
                self.error(_field_int(f, 1), notices.READ_ONLY)
            case 58:  # reqGlobalCancel
                self.error(notices.NO_VALID_ID, notices.READ_ONLY)
            case 15 | 63 | 64 | 75 | 77:  # auto-bind and cancels: TWS sends nothing back
                pass
            case _:
                log.warning("%r: %s is not simulated; no answer", self, request_name(r))

    def _matching_symbols(self, r: rq.ReqMatchingSymbols) -> None:
        """symbolSamples: each match with the derivative types listed on it (description from server 176)."""
        rows = []
        for inst, derived in matching_symbols(r.pattern):
            c = inst.contract
            contract = ev.Contract(c.symbol, c.sec_type, "", c.currency, c.con_id, c.primary_exchange or c.exchange)
            rows.append(ev.ContractDescription(contract, derived, inst.long_name))
        self.send(ev.SymbolSamples(r.req_id, tuple(rows)))

    def _malformed(self, r: MalformedRequest) -> None:
        log.warning("%r: malformed request %d: %s", self, r.msg_id, r.reason)
        self.error(notices.NO_VALID_ID, notices.reading_request(r.msg_id, r.reason))


def _field_int(fields: tuple[bytes, ...], index: int) -> int:
    try:
        return integer(fields[index])
    except (IndexError, ValueError):
        return -1


def _describe(request: object) -> str:
    name = request_name(request)
    parts = [name]
    req_id = getattr(request, "req_id", None)
    if req_id is not None:
        parts.append(f"reqId={req_id}")
    contract = getattr(request, "contract", None)
    if contract is not None:
        names = (contract.symbol or str(contract.con_id), contract.sec_type, contract.exchange)
        parts.append(" ".join(x for x in names if x))
    if isinstance(request, rq.StartApi):
        parts.append(f"clientId={request.client_id}")
    return " ".join(parts)

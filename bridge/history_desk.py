"""The history desk: the service's side of history and reference data (docs/bus.md, History and
reference data), with a narrow door to the rest of the bridge.

Every historical request of every client goes through the one `histsched.Scheduler` (IB's pacing
kept for all processes together, identical requests made once, answers cached): the desk submits a
ticket per TWS request with the asking client as the asker, sends what the scheduler says may start
through the bridge's paced TWS link in that client's lane, and reports each answer back. A REQ
client never waits long: a reply carries the answer if it is there within HISTORY_WAIT of the
request, else a ticket (its place in line and an estimated start) to fetch it with later. Contract
details, option chains and symbol search are not paced by IB's historical rules: reference_desk
asks them directly. Large answers are paged (PAGE_ROWS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import history_ops as hops
from . import history_rows as rows
from .bar_streams import Stream, Streams
from .fairness import SYSTEM
from .hbars import BarSpec
from .hints import NOT_FATAL_FOR_A_LINE, hint, is_notice
from .histkey import LOST, OK, HistoryKey, Outcome, tws_outcome
from .histpacing import Limits
from .histrules import BAR_SIZES, BadRequest
from .histsched import Scheduler, Started, Ticket
from .instruments import instrument_key
from .metrics import Metrics
from .ops import RequestError
from .protocol import Contract
from .protocol import events as ev
from .protocol import requests as rq
from .reference_desk import ReferenceDesk
from .tws import Outgoing, TwsConnection
from .waits import wait_event

log = logging.getLogger("tws-bridge.history")

HISTORY_WAIT = 5.0  # seconds from a request's arrival to its reply at most (docs/bus.md: within 7 s)
TICKET_IDLE = 120.0  # a ticket nobody asked about for this long is dropped, and its requests leave the queue
ANSWER_TIMEOUT = 120.0  # TWS must answer a historical request within this of its sending
PAGE_ROWS = {"bars": 5000, "ticks": 1000, "details": 100}  # rows per reply (docs/bus.md, Limits)
MAX_TICKETS = 10_000  # answers held for fetching, all clients together
STATS_EVERY = 0.5  # seconds between the scheduler figures metrics read

# What an outcome means for the asker, in our words next to TWS's (histkey.tws_outcome's kinds).
OUTCOME_HINTS = {
    "pacing": "IB's historical pacing was broken although the bridge keeps its rules (does another program use "
    "this account's historical data?); the bridge paused and retried, then gave up: retry in a few minutes",
    "cancelled": "TWS cancelled the request itself; retry",
    "not_found": "TWS no longer knows the request (it ended or was cancelled); retry",
    "refused": "TWS refused the historical request: often no market-data permission for this instrument's "
    "history, or data it does not keep; its words say which",
    "invalid": "TWS refused the request as invalid; its words say which field",
}

Qualify = Callable[[Contract, bytes, float], Awaitable[Contract]]
Finish = Callable[[list[Ticket]], tuple[dict[str, Any], str, list[Any]]]


def outcome_error(outcome: Outcome) -> RequestError:
    """A failed historical request as a reply: TWS's words (and code) plus what they mean."""
    if outcome.kind == "lost":
        return RequestError("not_connected", "the connection to TWS went away before it answered, more than once; "
                            "retry when it is back")  # fmt: skip
    if outcome.code is None:
        return RequestError("timeout", f"{outcome.message}; retry")
    ours = OUTCOME_HINTS.get(outcome.kind) or hint(outcome.code)
    words = f"TWS error {outcome.code}: {outcome.message}"
    code = "unknown_instrument" if outcome.code == 200 else "tws_error"
    return RequestError(code, f"{words} ({ours})" if ours else words, outcome.code, {"outcome": outcome.kind})


@dataclass(eq=False)
class Fetch:
    """One client request answered over one or more scheduler tickets; what a `ticket` names."""

    id: str
    op: str
    parts: list[Ticket]
    finish: Finish
    asked_at: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ticketed: bool = False  # the client was given the id: keep the answer until it lapses
    head: dict[str, Any] = field(default_factory=dict)
    rows_key: str = ""
    rows: list[Any] = field(default_factory=list)
    error: RequestError | None = None

    def complete(self) -> None:
        try:
            self.head, self.rows_key, self.rows = self.finish(self.parts)
        except RequestError as exc:
            self.error = exc
        self.done.set()

    def pages(self) -> int:
        return max(1, math.ceil(len(self.rows) / PAGE_ROWS.get(self.rows_key, 1)))

    def page(self, number: int) -> dict[str, Any]:
        if not self.rows_key:
            return dict(self.head)
        size, pages = PAGE_ROWS[self.rows_key], self.pages()
        if number >= pages:
            raise RequestError("bad_request", f"page {number} is past the last page of this answer ({pages} pages)")
        reply = {**self.head, self.rows_key: self.rows[number * size : (number + 1) * size], "total": len(self.rows),
                 "page": number, "pages": pages}  # fmt: skip
        if number + 1 < pages:
            reply["next"] = {"op": self.op, "ticket": self.id, "page": number + 1}
        return reply


@dataclass(eq=False)
class _Flight:
    """A historical request at TWS: what has come of it so far."""

    started: Started
    sent_at: float
    items: list[Any] = field(default_factory=list)


class HistoryDesk:
    """History and reference ops through the bridge's one TWS connection and one historical scheduler."""

    def __init__(
        self,
        tws: TwsConnection,
        next_id: Callable[[], int],
        qualify: Qualify,
        connected: Callable[[], bool],
        metrics: Metrics,
        queue_wait_max: float,
        time_scale: float = 1.0,
    ) -> None:
        self.tws, self._next_id, self._qualify, self._connected = tws, next_id, qualify, connected
        self.metrics = metrics
        self.queue_wait_max = queue_wait_max
        self.sched = Scheduler(Limits().scaled(time_scale) if time_scale != 1.0 else Limits())
        self._contracts: dict[tuple[Any, str], Contract] = {}  # a key's contract, to send it
        self._flights: dict[int, _Flight] = {}
        self.reference = ReferenceDesk(tws, next_id, qualify, queue_wait_max)
        self.streams = Streams(self.sched, tws, next_id)
        self._fetches: dict[str, Fetch] = {}
        self._by_ticket: dict[int, Fetch] = {}
        self._kick: asyncio.Event | None = None
        self._stats_at = -math.inf

    # --- the door to the service ---------------------------------------------------------------

    async def handle(self, op: str, request: dict[str, Any], client: bytes) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HISTORY_WAIT
        if op in hops.TICKET_OPS:  # a ticket or page of an earlier answer
            again = hops.ticket_args(request)
            if again is not None:
                return await self._fetch_again(op, again, deadline)
        wall = time.time()
        if op == "history":
            args = hops.history_args(request, wall)
        elif op == "ticks":
            ticks = hops.ticks_args(request, wall)
        elif op == "head_timestamp":
            head = hops.head_args(request)
        elif op == "details":
            wanted = hops.instrument_arg(request, "details")
        elif op == "option_chain":
            wanted, exchange = hops.instrument_arg(request, "option_chain"), hops.exchange_arg(request)
        else:
            pattern = hops.search_args(request)
        if not self._connected():
            raise RequestError("not_connected", "TWS is not connected right now; the bridge is reconnecting, retry")
        if op == "details":
            return await self._details(wanted, client)
        if op == "search":
            return await self.reference.search(pattern, client)
        if op == "option_chain":
            return await self.reference.option_chain(wanted, exchange, client)
        if op == "history":
            return await self._history(args, client, deadline)
        if op == "ticks":
            return await self._ticks(ticks, client, deadline)
        return await self._head(head, client, deadline)

    def on_event(self, event: ev.Event) -> bool:
        """An answer to one of the desk's requests: taken (True), or not the desk's (False)."""
        cls = type(event)
        if cls is ev.HistoricalData:
            flight = self._flights.get(event.req_id)  # type: ignore[union-attr]
            if flight is not None:
                flight.items.extend(event.bars)  # type: ignore[union-attr]
                if event.ends:  # type: ignore[union-attr]  # before server 196 this message ends the answer
                    self._landed(event.req_id, OK)  # type: ignore[union-attr]
            return True
        if cls is ev.HistoricalDataEnd:
            self._landed(event.req_id, OK)  # type: ignore[union-attr]
            return True
        if cls in (ev.HistoricalTicks, ev.HistoricalTicksBidAsk, ev.HistoricalTicksLast):
            flight = self._flights.get(event.req_id)  # type: ignore[union-attr]
            if flight is not None:
                flight.items.extend(event.ticks)  # type: ignore[union-attr]
                if event.done:  # type: ignore[union-attr]
                    self._landed(event.req_id, OK)  # type: ignore[union-attr]
            return True
        if cls is ev.HeadTimestamp:
            flight = self._flights.get(event.req_id)  # type: ignore[union-attr]
            if flight is not None:
                flight.items.append(event.head_timestamp)  # type: ignore[union-attr]
                self._landed(event.req_id, OK)  # type: ignore[union-attr]
            return True
        if cls is ev.HistoricalDataUpdate:
            return True  # an hbars line's (the service looks those up first) that was just cancelled
        return self.reference.on_event(event)

    def on_error(self, error: ev.Error) -> bool:
        """TWS's error for one of the desk's requests (True), or not the desk's (False)."""
        if self.streams.on_error(error, asyncio.get_running_loop().time()):
            return True
        flight = self._flights.get(error.req_id)
        if flight is None:
            return self.reference.on_error(error)
        if not (is_notice(error.code) or error.code in NOT_FATAL_FOR_A_LINE):  # else a warning, not its end
            log.info("TWS %d on history request %d: %s", error.code, error.req_id, error.message[:200])
            self._landed(error.req_id, tws_outcome(error.code, error.message))
        return True

    def lost(self) -> None:
        """TWS went away: requests at TWS go again when it is back (the scheduler's rule)."""
        self.sched.lost(asyncio.get_running_loop().time())
        self._flights.clear()
        self.streams.lost()
        self.reference.lost()
        self.wake()

    def wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    async def run(self) -> None:
        """Send what the scheduler allows when it allows it; drop lapsed tickets; time out silent requests."""
        loop = asyncio.get_running_loop()
        self._kick = kick = asyncio.Event()
        while True:
            now = loop.time()
            if self._connected():
                for started in self.sched.ready(now):
                    self._send(started, now)
            self._housekeeping(now)
            wake = self.sched.next_wakeup(now) if self._connected() else None
            timeout = 1.0 if wake is None else min(1.0, max(0.0, wake - now))
            kick.clear()
            await wait_event(kick, timeout)

    # --- keep-up-to-date bars (hbars lines): requests that stay open --------------------------------

    def open_stream(
        self,
        contract: Contract,
        spec: BarSpec,
        client: bytes,
        request: Callable[[int], rq.Request],
        on_sent: Callable[[int], None],
    ) -> Stream:
        """An hbars line's keepUpToDate request, queued behind IB's pacing with everyone's history."""
        try:
            key = HistoryKey.bars(self._remember(contract), contract.exchange, spec.what, spec.bar, spec.duration,
                                  None, spec.rth, keep_up_to_date=True)  # fmt: skip
        except BadRequest as exc:
            raise RequestError("bad_request", str(exc)) from None
        stream = Stream(key, client, request, on_sent)
        self.streams.open(stream, asyncio.get_running_loop().time())
        self.wake()
        return stream

    def close_stream(self, stream: Stream) -> Outgoing | None:
        out = self.streams.close(stream, asyncio.get_running_loop().time())
        self.wake()
        return out

    def restart_stream(self, stream: Stream) -> None:
        self.streams.restart(stream, asyncio.get_running_loop().time())
        self.wake()

    def stream_wait(self, stream: Stream) -> Ticket | None:
        """Where the stream's request stands in the queue, while it waits for IB's pacing."""
        return self.streams.waiting(stream, asyncio.get_running_loop().time())

    # --- historical requests through the scheduler -----------------------------------------------

    async def _history(self, args: hops.HistoryArgs, client: bytes, deadline: float) -> dict[str, Any]:
        contract = await self._qualify(args.contract, client, self._lookup_deadline())
        con = self._remember(contract)
        try:
            keys = [HistoryKey.bars(con, contract.exchange, args.what, args.bar, p.duration, p.end, args.rth)
                    for p in args.parts]  # fmt: skip
        except BadRequest as exc:
            raise RequestError("bad_request", str(exc)) from None
        head = {"ok": True, "instrument": instrument_key(contract), "bar": args.bar, "what": args.what,
                "rth": args.rth, "columns": list(rows.BAR_COLUMNS)}  # fmt: skip
        span = BAR_SIZES[args.bar]

        def finish(parts: list[Ticket]) -> tuple[dict[str, Any], str, list[Any]]:
            outcomes = [t.outcome or LOST for t in parts]
            failed = next((o for o in outcomes if o.kind not in ("ok", "no_data")), None)
            if failed is not None:
                raise outcome_error(failed)
            merged = rows.merge_bars([t.answer for t in parts if t.outcome == OK], args.start, args.end, span)
            done = {**head, "requests": len(parts), "cached": sum(t.cached for t in parts)}
            empty = next((o for o in outcomes if o.kind == "no_data"), None)
            if not merged and empty is not None:
                done["no_data"] = f"TWS error {empty.code}: {empty.message}"
            return done, "bars", merged

        return await self._answer(self._open("history", keys, client, finish), 0, deadline)

    async def _ticks(self, args: hops.TicksArgs, client: bytes, deadline: float) -> dict[str, Any]:
        contract = await self._qualify(args.contract, client, self._lookup_deadline())
        con = self._remember(contract)
        key = HistoryKey.ticks(con, contract.exchange, args.what, args.start, None if args.start else args.end,
                               args.count, args.rth)  # fmt: skip
        instrument = instrument_key(contract)
        head = {"ok": True, "instrument": instrument, "what": args.what, "rth": args.rth,
                "columns": list(rows.TICK_COLUMNS[args.what])}  # fmt: skip

        def finish(parts: list[Ticket]) -> tuple[dict[str, Any], str, list[Any]]:
            outcome = parts[0].outcome or LOST
            if outcome.kind not in ("ok", "no_data"):
                raise outcome_error(outcome)
            got: list[list[Any]] = parts[0].answer if outcome == OK else []
            shown = got
            if args.start is not None:
                at_start = sum(1 for r in got if r[0] == args.start)
                shown = [r for i, r in enumerate(got) if not (i < min(args.skip, at_start) and r[0] == args.start)]
            if args.end is not None and args.start is not None:
                shown = [r for r in shown if r[0] < args.end]
            done = {**head, "cached": parts[0].cached}
            if outcome.kind == "no_data":
                done["no_data"] = f"TWS error {outcome.code}: {outcome.message}"
            if args.start is not None and len(got) == args.count and (args.end is None or got[-1][0] < args.end):
                last = got[-1][0]
                same = sum(1 for r in got if r[0] == last)
                cursor = {"start": last, "skip": same} if same < args.count else {"start": last + 1}
                done["next"] = {"op": "ticks", "instrument": instrument, "what": args.what, "rth": args.rth,
                                "count": args.count, **cursor}  # fmt: skip
                if args.end is not None:
                    done["next"]["end"] = args.end
            return done, "ticks", shown

        return await self._answer(self._open("ticks", [key], client, finish), 0, deadline)

    async def _head(self, args: hops.HeadArgs, client: bytes, deadline: float) -> dict[str, Any]:
        contract = await self._qualify(args.contract, client, self._lookup_deadline())
        key = HistoryKey.head_timestamp(self._remember(contract), contract.exchange, args.what, args.rth)

        def finish(parts: list[Ticket]) -> tuple[dict[str, Any], str, list[Any]]:
            outcome = parts[0].outcome or LOST
            if outcome.kind != "ok":
                raise outcome_error(outcome)
            return {"ok": True, "instrument": instrument_key(contract), "what": args.what, "rth": args.rth,
                    "head_timestamp": parts[0].answer, "cached": parts[0].cached}, "", []  # fmt: skip

        return await self._answer(self._open("head_timestamp", [key], client, finish), 0, deadline)

    def _open(self, op: str, keys: list[HistoryKey], client: bytes, finish: Finish) -> Fetch:
        """Submit every part; a refusal of any takes back the others and says why."""
        if len(self._fetches) >= MAX_TICKETS:
            raise RequestError("busy", f"the bridge holds {MAX_TICKETS} history answers for fetching (MAX_TICKETS); "
                               "retry in a minute", extra={"limit": MAX_TICKETS})  # fmt: skip
        now = asyncio.get_running_loop().time()
        parts: list[Ticket] = []
        for key in keys:
            ticket = self.sched.submit(key, client, now)
            if ticket.state == "refused":
                for earlier in parts:
                    self.sched.cancel(earlier, now)
                raise RequestError("busy", f"{ticket.message} ({len(keys)} TWS requests asked)",
                                   extra={"refusal": ticket.refusal})  # fmt: skip
            parts.append(ticket)
        fetch = Fetch(secrets.token_hex(8), op, parts, finish, now)
        self._fetches[fetch.id] = fetch
        waiting = [t for t in parts if t.state != "answered"]
        for ticket in waiting:
            self._by_ticket[ticket.id] = fetch
        if not waiting:
            fetch.complete()
        self.wake()
        return fetch

    async def _fetch_again(self, op: str, again: hops.TicketArgs, deadline: float) -> dict[str, Any]:
        fetch = self._fetches.get(again.ticket)
        if fetch is None or fetch.op != op:
            raise RequestError("not_found", f"no {op} ticket {again.ticket[:40]!r}: an answer is kept "
                               f"{TICKET_IDLE:.0f} s after it was last asked about; ask again")  # fmt: skip
        return await self._answer(fetch, again.page, deadline)

    async def _answer(self, fetch: Fetch, page: int, deadline: float) -> dict[str, Any]:
        """The answer if it is there by `deadline` (and it may be), else where it stands."""
        loop = asyncio.get_running_loop()
        now = fetch.asked_at = loop.time()
        if not fetch.done.is_set() and self._eta(fetch, now) <= deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fetch.done.wait(), max(0.0, deadline - now))
        if not fetch.done.is_set():
            fetch.ticketed = True
            return self._progress(fetch, loop.time())
        if fetch.error is not None:
            if not fetch.ticketed:
                self._drop(fetch, loop.time())
            raise fetch.error
        reply = fetch.page(page)
        if fetch.pages() > 1:
            fetch.ticketed = True
        elif not fetch.ticketed:
            self._drop(fetch, loop.time())
        return reply

    def _eta(self, fetch: Fetch, now: float) -> float:
        """When the last part still waiting is expected to start (loop clock)."""
        etas = [self.sched.estimate(t, now).eta for t in fetch.parts if t.state in ("queued", "started")]
        return max(etas, default=now)

    def _progress(self, fetch: Fetch, now: float) -> dict[str, Any]:
        waiting = [self.sched.estimate(t, now) for t in fetch.parts if t.state in ("queued", "started")]
        queued = [t for t in waiting if t.state == "queued"]
        eta = max(0.0, max((t.eta for t in waiting), default=now) - now)
        position = min((t.position for t in queued), default=0)
        state = "queued" if queued else "started"
        if queued:
            message = (f"{position} requests to TWS are ahead of yours; IB's historical pacing (60 requests in any "
                       f"10 minutes, for everyone on this TWS) starts the last of your {len(fetch.parts)} in about "
                       f"{_span(eta)}")  # fmt: skip
        else:
            message = "sent to TWS; waiting for its answer"
        return {"ok": True, "pending": True, "ticket": fetch.id, "state": state, "position": position,
                "eta_s": round(eta, 3), "parts": len(fetch.parts),
                "parts_done": sum(t.state == "answered" for t in fetch.parts),
                "retry_after_s": round(min(60.0, max(0.5, eta / 2)), 3),
                "message": f"{message}; fetch it with op {fetch.op} and this ticket"}  # fmt: skip

    def _drop(self, fetch: Fetch, now: float) -> None:
        """Forget a fetch; its parts still waiting leave the queue (in flight ones still fill the cache)."""
        self._fetches.pop(fetch.id, None)
        for ticket in fetch.parts:
            self._by_ticket.pop(ticket.id, None)
            if ticket.state in ("queued", "started"):
                self.sched.cancel(ticket, now)

    def _send(self, started: Started, now: float) -> None:
        if started.key.keep_up_to_date:
            self.streams.send(started, now)
            return
        req_id = self._next_id()
        started.req_id = req_id
        lane = started.tickets[0].asker if started.tickets else SYSTEM
        out = self.tws.send(self._request(started.key, req_id), lane=lane)
        if out is None:  # the connection just went: lost() puts it back in line
            return
        self._flights[req_id] = _Flight(started, now)
        out.written.add_done_callback(lambda done: self._written(started, out, done))

    def _written(self, started: Started, out: Outgoing, done: asyncio.Future[bool]) -> None:
        if not done.cancelled() and done.result():
            self.sched.sent(started, asyncio.get_running_loop().time())

    def _request(self, key: HistoryKey, req_id: int) -> rq.Request:
        contract = self._contracts[(key.contract, key.exchange)]
        if key.kind == "bars":
            end = rows.tws_text(key.end) if key.end is not None else ""
            return rq.ReqHistoricalData(req_id, contract, end, key.duration, key.bar_size, key.what_to_show,
                                        key.use_rth, 2)  # fmt: skip
        if key.kind == "ticks":
            start = rows.tws_text(key.start) if key.start is not None else ""
            end = rows.tws_text(key.end) if key.end is not None else ""
            return rq.ReqHistoricalTicks(req_id, contract, start, end, key.count, key.what_to_show, key.use_rth)
        return rq.ReqHeadTimestamp(req_id, contract, key.what_to_show, key.use_rth, 2)

    def _landed(self, req_id: int, outcome: Outcome) -> None:
        """A historical request ended at TWS: tell the scheduler; complete the fetches it finished."""
        flight = self._flights.pop(req_id, None)
        if flight is None:
            return
        key = flight.started.key
        answer: Any = None
        size = 0
        if outcome == OK:
            if key.kind == "bars":
                answer = rows.bar_rows(flight.items)
                size = len(answer) * rows.BAR_ROW_BYTES
            elif key.kind == "ticks":
                answer = rows.tick_rows(key.what_to_show, flight.items)
                size = len(answer) * rows.TICK_ROW_BYTES
            else:
                try:
                    answer = rows.tws_time(flight.items[0])
                except (ValueError, IndexError):
                    outcome = Outcome("error", None, f"TWS sent a head timestamp the bridge cannot read: "
                                      f"{flight.items[:1]!r}")  # fmt: skip
        now = asyncio.get_running_loop().time()
        for ticket in self.sched.finished(flight.started, outcome, now, answer, size, wall=time.time()):
            fetch = self._by_ticket.pop(ticket.id, None)
            if fetch is not None and all(t.state in ("answered", "refused", "cancelled") for t in fetch.parts):
                fetch.complete()
        self.wake()

    def _housekeeping(self, now: float) -> None:
        for req_id, flight in list(self._flights.items()):
            if now - flight.sent_at > ANSWER_TIMEOUT:
                log.warning("TWS did not answer history request %d within %.0f s", req_id, ANSWER_TIMEOUT)
                self._landed(req_id, Outcome("error", None, f"TWS did not answer within {ANSWER_TIMEOUT:.0f} s"))
        for fetch in list(self._fetches.values()):
            if now - fetch.asked_at > TICKET_IDLE:
                self._drop(fetch, now)
        if now - self._stats_at >= STATS_EVERY:
            self._stats_at = now
            self.metrics.history.stats = self.sched.stats(now)

    def _remember(self, contract: Contract) -> Any:
        """The contract's part of a HistoryKey (its conId), and the contract to send for it."""
        con: Any = contract.con_id or instrument_key(contract)
        self._contracts[(con, contract.exchange.upper())] = contract
        return con

    def _lookup_deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.queue_wait_max

    # --- reference data, asked directly (reference_desk) ---------------------------------------------

    async def _details(self, wanted: Contract, client: bytes) -> dict[str, Any]:
        """All matches; past PAGE_ROWS['details'] of them, in pages fetched by ticket."""
        matches = await self.reference.details(wanted, client)
        if len(matches) <= PAGE_ROWS["details"]:
            return {"ok": True, "details": matches, "total": len(matches), "page": 0, "pages": 1}
        fetch = Fetch(secrets.token_hex(8), "details", [], lambda parts: ({"ok": True}, "details", matches),
                      asyncio.get_running_loop().time(), ticketed=True)  # fmt: skip
        fetch.complete()
        self._fetches[fetch.id] = fetch
        return fetch.page(0)


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"

"""The simulator's TCP server: accepts TWS API clients, shares one market among them.

    sim = Simulator(port=0, rate=20, seed=1)
    await sim.start()          # sim.port is now bound
    ...                        # clients connect; sim.requests records what they asked
    await sim.stop()

What is account-wide in TWS is simulator-wide here: client ids, market-data lines, depth
books, order ids. Everything per connection (version, market-data type, subscriptions)
lives in `session.Session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from bridge.protocol import MAX_SUPPORTED, MIN_SUPPORTED

from . import limits
from .catalogue import Instrument
from .faults import Faults, load_script
from .history import History
from .history_pacing import HistoryLimits, HistoryPacing
from .market import Market, Quote
from .session import Session, request_name

log = logging.getLogger("bridge.simulator")

Listener = Callable[[Quote, Quote], None]


class Feed:
    """Steps one instrument at the configured rate while anyone listens, and fans each step out.

    One feed per instrument, so every subscriber, on every connection, sees the same path. With a
    `SampleClock` the feed has no schedule of its own: the clock steps it with all the others.
    """

    def __init__(
        self, market: Market, inst: Instrument, rate: float, faults: Faults, clock: SampleClock | None = None
    ) -> None:
        self.market = market
        self.faults = faults
        self.inst = inst
        self.interval = 1.0 / rate
        self.clock = clock
        self.listeners: dict[object, Listener] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, key: object, listener: Listener) -> None:
        self.listeners[key] = listener
        if self.clock is not None:
            self.clock.join(self)
        elif self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"feed {self.inst.label()}")

    def remove(self, key: object) -> None:
        self.listeners.pop(key, None)
        if self.listeners:
            return
        if self.clock is not None:
            self.clock.leave(self)
        elif self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        async for _ in _schedule(self.interval, self.faults, lambda: bool(self.listeners)):
            self.step()

    def step(self) -> None:
        old = self.market.quote(self.inst)
        new = self.market.step(self.inst)
        for key, listener in list(self.listeners.items()):
            try:
                listener(old, new)
            except Exception:  # one subscriber's bug must not stop the others' stream
                log.exception("listener %r failed; dropping it", key)
                self.listeners.pop(key, None)


class SampleClock:
    """One schedule for every instrument, as TWS sends watchlist data: snapshots sampled every
    250 ms for stocks and futures (100 ms US options, 5 ms FX), so the ticks of all instruments
    that changed arrive together. Each connection gets a sample's messages in one write."""

    def __init__(self, rate: float, faults: Faults, sessions: set[Session]) -> None:
        self.interval = 1.0 / rate
        self.faults = faults
        self.sessions = sessions
        self.feeds: dict[int, Feed] = {}  # by con_id, in the order they joined
        self._task: asyncio.Task[None] | None = None

    def join(self, feed: Feed) -> None:
        self.feeds[feed.inst.con_id] = feed
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sample clock")

    def leave(self, feed: Feed) -> None:
        self.feeds.pop(feed.inst.con_id, None)
        if not self.feeds and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        async for _ in _schedule(self.interval, self.faults, lambda: bool(self.feeds)):
            sessions = list(self.sessions)
            for session in sessions:
                session.cork()
            try:
                for feed in list(self.feeds.values()):
                    feed.step()
            finally:
                for session in sessions:
                    session.uncork()


async def _schedule(interval: float, faults: Faults, running: Callable[[], bool]) -> AsyncIterator[None]:
    """Yield every `interval` seconds on a fixed schedule while `running()`, except while data is paused.

    The rate holds even when fanning out takes time; after a stall (a paused process, a busy loop)
    the pace resumes instead of bursting."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while running():
        due = max(due + interval, loop.time() - interval)
        await asyncio.sleep(max(0.0, due - loop.time()))
        if faults.data_paused:  # a stall, 1100, a broken market farm, 10197: the market waits
            continue
        if running():
            yield


class Simulator:
    """A TWS look-alike on a TCP port: handshake, connect sequence, market and reference data."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: int = MAX_SUPPORTED,
        rate: float = 4.0,
        seed: int = 0,
        max_lines: int = 100,
        bar_seconds: float = 5.0,
        journal: str | Path | None = None,
        account: str = "DU1234567",
        max_depth_books: int = limits.MAX_DEPTH_BOOKS,
        max_tick_by_tick: int = limits.MAX_TICK_BY_TICK,
        max_messages_per_second: int = limits.MAX_MESSAGES_PER_SECOND,
        control_port: int | None = None,
        faults: str | Path | list[Any] | None = None,
        history_limits: HistoryLimits | None = None,
        stamp: bool = False,
        shared_clock: bool = False,
    ) -> None:
        if not MIN_SUPPORTED <= server_version <= MAX_SUPPORTED:
            raise ValueError(f"server version {server_version} is outside {MIN_SUPPORTED}..{MAX_SUPPORTED}")
        if rate <= 0 or bar_seconds <= 0:
            raise ValueError("rate and bar_seconds must be positive")
        self.host = host
        self.port = port
        self.server_version = server_version
        self.rate = rate
        self.stamp = stamp  # a benchmark's latency probe: see Session._req_mkt_data
        self.seed = seed
        self.max_lines = max_lines
        self.bar_seconds = bar_seconds
        self.account = account
        self.max_depth_books = max_depth_books
        self.max_tick_by_tick = max_tick_by_tick
        self.max_messages_per_second = max_messages_per_second  # 0: no limit
        self.control_port = control_port
        self.faults = Faults(self, seed)
        self._script = load_script(faults) if faults is not None else []
        self._connections = 0
        self.market = Market(seed)
        self.history = History(self.market)
        self.history_pacing = HistoryPacing(history_limits)
        self.requests: list[tuple[int | None, Any]] = []
        self.clients: dict[int, Session] = {}  # by client id, once startApi named it
        self.sessions: set[Session] = set()
        self._feeds: dict[int, Feed] = {}
        self.clock = SampleClock(rate, self.faults, self.sessions) if shared_clock else None
        self._next_order_id = 1
        self._journal_path = Path(journal) if journal else None
        self._journal: IO[str] | None = None
        self._server: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._listening = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._journal_path is not None:
            self._journal = self._journal_path.open("a", encoding="utf-8")
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self._listening = True
        self.port = self._server.sockets[0].getsockname()[1]
        if self.control_port is not None:
            from .control import serve_control  # here, so `python -m bridge.simulator.control` runs warning-free

            self._control = await serve_control(self, self.control_port)
            self.control_port = self._control.sockets[0].getsockname()[1]
            log.info("fault control on 127.0.0.1:%d", self.control_port)
        if self._script:
            self.faults.play(self._script)
        log.info(
            "TWS simulator listening on %s:%d (server version %d, %g ticks/s, seed %d, %d market-data lines)",
            self.host, self.port, self.server_version, self.rate, self.seed, self.max_lines,
        )  # fmt: skip

    async def stop(self) -> None:
        self.faults.stop()
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close("simulator stopping")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for feed in self._feeds.values():
            for key in list(feed.listeners):
                feed.remove(key)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        log.info("TWS simulator stopped")

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI's main loop)."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # --- faults -----------------------------------------------------------------------------

    def inject(self, name: str, **args: Any) -> None:
        """Start fault `name` now (faults.FAULTS lists them); FaultError if it cannot be done."""
        self.faults.inject(name, **args)

    def close_listener(self) -> None:
        """Stop listening: connects are refused (RST) while connections already open carry on."""
        if self._server is not None and self._listening:
            self._server.close()
            self._listening = False
            log.warning("listening socket closed: connects to port %d are refused", self.port)

    def open_listener(self) -> None:
        if not self._listening and self._server is not None:
            self._listening = True  # at once, so a second call does not start a second server
            task = asyncio.get_running_loop().create_task(self._listen_again(), name="listen again")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _listen_again(self) -> None:
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
            log.warning("listening again on %s:%d", self.host, self.port)
        except OSError as exc:
            self._listening = False
            log.error("cannot listen on %s:%d again: %s", self.host, self.port, exc)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        session = Session(self, reader, writer, self._connections)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    # --- what sessions share ----------------------------------------------------------------

    def feed(self, inst: Instrument) -> Feed:
        feed = self._feeds.get(inst.con_id)
        if feed is None:
            feed = self._feeds[inst.con_id] = Feed(self.market, inst, self.rate, self.faults, self.clock)
        return feed

    def next_order_id(self) -> int:
        return self._next_order_id

    def lines_in_use(self) -> int:
        """Market-data lines are the account's, so every connection's streams count."""
        return sum(s.lines_in_use() for s in self.sessions)

    def depth_books_in_use(self) -> int:
        return sum(s.streams_in_use("depth") for s in self.sessions)

    def tick_by_tick_in_use(self) -> int:
        return sum(s.streams_in_use("tbt") for s in self.sessions)

    def history_streams(self) -> int:
        """keepUpToDate streams open: the historical requests still open (answers go out at once)."""
        return sum(s.streams_in_use("hist") for s in self.sessions)

    def counters(self) -> dict[str, int]:
        """What tests and operators count: history requests accepted and pacing violations, by rule."""
        pacing = self.history_pacing
        out = {"history_requests": pacing.accepted, "history_pacing_violations": pacing.violation_count}
        out.update({f"history_pacing_violations_{rule}": n for rule, n in sorted(pacing.violations.items())})
        out["history_streams"] = self.history_streams()
        return out

    def record(self, client_id: int | None, request: Any, received: float, connection: int) -> None:
        """Keep the request for tests, and journal it with the time it was read off the socket."""
        self.requests.append((client_id, request))
        if self._journal is None:
            return
        contract = getattr(request, "contract", None)
        self._journal_line({
            "t": round(received, 6),
            "conn": connection,
            "client_id": client_id,
            "request": request_name(request),
            "req_id": getattr(request, "req_id", None),
            "symbol": contract.symbol if contract is not None else None,
            "sec_type": contract.sec_type if contract is not None else None,
        })  # fmt: skip

    def journal_event(self, row: dict[str, Any]) -> None:
        """Anything else worth lining up with requests (a pacing violation), stamped now."""
        if self._journal is not None:
            self._journal_line({"t": round(time.time(), 6), **row})

    def journal_fault(self, name: str, args: dict[str, Any]) -> None:
        """Faults go in the journal too, so a test or a soak can line them up with what clients did."""
        if self._journal is not None:
            self._journal_line({"t": round(time.time(), 6), "fault": name, "args": args})

    def _journal_line(self, row: dict[str, Any]) -> None:
        assert self._journal is not None
        self._journal.write(json.dumps(row) + "\n")
        self._journal.flush()

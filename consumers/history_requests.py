"""History and reference data from the bridge (docs/bus.md, History and reference data), as BusClient methods.

    bars = bus.history("AAPL", bar="1 min", start=time.time() - 5 * 86400)   # every bar, however many pages
    for bar in bars:
        print(bar.time, bar.close)

IB lets an account make 60 historical requests in any 10 minutes, for every program on it together, so
an answer may take minutes: the bridge then replies at once with a ticket, a place in line and an
estimated start. These helpers do the patient client's part: wait the reply's hint and ask again with
the ticket, follow `next` pages, and join the rows. While waiting they read no market data (it stays
queued for the next recv()), renew the client's leases, and end at a stop signal (Stopped).
"""

from __future__ import annotations

import contextlib
import select
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consumers.errors import BridgeError, BridgeTimeout, Stopped

if TYPE_CHECKING:
    import socket

ASK_AT_LEAST_EVERY_S = 60.0  # the bridge drops a ticket not asked about for 120 s
PAUSE_SLICE_S = 0.5  # without a signal wake-up socket, how often a pause looks at the stop flag
MAX_TICKS = 1000  # IB's most per request, the bridge's most per reply

Instrument = str | dict[str, Any]
When = int | float | datetime
OnWait = Callable[[dict[str, Any]], None]

_row_types: dict[tuple[str, ...], type] = {}


def _row_type(columns: tuple[str, ...]) -> type:
    """One NamedTuple class per column set (bars, each kind of tick), made once."""
    kind = _row_types.get(columns)
    if kind is None:
        kind = _row_types[columns] = namedtuple("Row", columns, rename=True)  # type: ignore[misc]
    return kind


@dataclass
class Table:
    """Bars or ticks as the bridge sends them: `columns` names the fields, `rows` holds one list each.

    Iterating gives each row as a NamedTuple (`row.time`, `row.close`; times are UTC epoch seconds,
    absent values None); `rows` stays the compact lists, ready for csv.writer or a DataFrame."""

    instrument: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    requests: int = 0  # TWS requests the answer took (history: as the bridge counts them; ticks: pages)
    cached: int = 0  # of those, answered from the bridge's memory
    no_data: str | None = None  # TWS's words when it has nothing for the span (not an error)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        kind = _row_type(tuple(self.columns))
        return (kind(*row) for row in self.rows)

    def column(self, name: str) -> list[Any]:
        """One column's values, in row order."""
        at = self.columns.index(name)
        return [row[at] for row in self.rows]


def epoch(when: When) -> int:
    """UTC epoch seconds of a number or a datetime (one without a zone is taken as UTC, as the bus is)."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp())
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"a time is epoch seconds or a datetime, not {when!r}")
    return int(when)


class HistoryRequests:
    """The history and reference ops, for BusClient (and so for NatsBusClient: every ask goes through
    `request()`, every wait through `_pause()`)."""

    if TYPE_CHECKING:  # BusClient's, used here
        timeout: float
        _stop_flag: bool
        _next_renew: float
        _wake_r: socket.socket | None

        def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...
        def _renew_if_due(self, deadline: float | None = None) -> None: ...
        def _drain_wake(self) -> None: ...

    def history(
        self,
        instrument: Instrument,
        bar: str = "1 min",
        duration: str | None = None,
        start: When | None = None,
        end: When | None = None,
        what: str = "TRADES",
        rth: bool = True,
        timeout: float | None = None,
        on_wait: OnWait | None = None,
    ) -> Table:
        """Every bar of a span: `duration` ("5 D", one TWS request, ending at `end` or now) or `start`
        (to `end` or now; the bridge cuts it into TWS-sized requests). Without either, the last day.

        `timeout` bounds the whole fetch, waits for IB's pacing included (None: as long as it takes).
        `on_wait` is called with each pending reply (position, eta_s, message), e.g. to show progress."""
        request: dict[str, Any] = {"op": "history", "instrument": instrument, "bar": bar, "what": what, "rth": rth}
        if start is not None:
            request["start"] = epoch(start)
        elif duration is None:
            duration = "1 D"
        if duration is not None:
            request["duration"] = duration
        if end is not None:
            request["end"] = epoch(end)
        return self._table(request, "bars", timeout, on_wait)

    def ticks(
        self,
        instrument: Instrument,
        start: When | None = None,
        end: When | None = None,
        what: str = "TRADES",
        count: int = MAX_TICKS,
        rth: bool = True,
        timeout: float | None = None,
        on_wait: OnWait | None = None,
    ) -> Table:
        """Historical ticks (`what`: TRADES, BID_ASK or MIDPOINT): every tick from `start` (to `end`, or
        up to now), `count` per TWS request; or with `end` alone the last `count` before it."""
        request: dict[str, Any] = {"op": "ticks", "instrument": instrument, "what": what, "count": count, "rth": rth}
        if start is not None:
            request["start"] = epoch(start)
        if end is not None:
            request["end"] = epoch(end)
        return self._table(request, "ticks", timeout, on_wait)

    def head_timestamp(
        self, instrument: Instrument, what: str = "TRADES", rth: bool = True, timeout: float | None = None
    ) -> int:
        """The earliest time TWS has data of this kind for, UTC epoch seconds."""
        request = {"op": "head_timestamp", "instrument": instrument, "what": what, "rth": rth}
        return int(self._answer(request, _deadline(timeout), None)["head_timestamp"])

    def details(self, instrument: Instrument, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every contract TWS matches, each `{instrument, contract, details, sessions, liquid_sessions, ...}`."""
        return [d for reply in self._pages({"op": "details", "instrument": instrument}, timeout, None)
                for d in reply.get("details") or []]  # fmt: skip

    def option_chain(
        self, instrument: Instrument, exchange: str | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The underlying's option chains, one per exchange and trading class:
        `{exchange, trading_class, multiplier, underlying_con_id, expirations, strikes}`."""
        request: dict[str, Any] = {"op": "option_chain", "instrument": instrument}
        if exchange is not None:
            request["exchange"] = exchange
        return list(self._answer(request, _deadline(timeout), None).get("chains") or [])

    def search(self, pattern: str, timeout: float | None = None) -> list[dict[str, Any]]:
        """Contracts whose symbol or name matches `pattern` (TWS's symbol search)."""
        return list(self._answer({"op": "search", "pattern": pattern}, _deadline(timeout), None).get("matches") or [])

    # -- the patient client's part ----------------------------------------------------------

    def _table(self, request: dict[str, Any], key: str, timeout: float | None, on_wait: OnWait | None) -> Table:
        table: Table | None = None
        for reply in self._pages(request, timeout, on_wait):
            if table is None:
                table = Table(str(reply.get("instrument", "")), list(reply.get("columns") or []))
                table.requests = int(reply.get("requests", 0))
                table.no_data = reply.get("no_data")
            if key == "ticks":  # each page is a request of its own
                table.requests += 1
                table.cached += int(reply.get("cached", 0))
            elif reply.get("page", 0) == 0:
                table.cached = int(reply.get("cached", 0))
            table.rows += reply.get(key) or []
        assert table is not None  # _pages yields at least once
        return table

    def _pages(self, request: dict[str, Any], timeout: float | None, on_wait: OnWait | None) -> Iterator[dict]:
        """Each reply of an answer: the first, then every `next` (sent back as it is) until none."""
        deadline = _deadline(timeout)
        reply = self._answer(request, deadline, on_wait)
        yield reply
        while isinstance(reply.get("next"), dict):
            if self._stop_flag:
                raise Stopped("stopped", f"stopped while fetching the pages of a {request['op']} answer")
            self._renew_if_due()  # a long answer is many round trips: leases must not lapse meanwhile
            reply = self._answer(reply["next"], deadline, on_wait)
            yield reply

    def _answer(self, request: dict[str, Any], deadline: float | None, on_wait: OnWait | None) -> dict[str, Any]:
        """The reply to `request`, asking again with its ticket for as long as it says `pending`."""
        reply = self.request(request)
        while reply.get("pending"):
            ticket = reply.get("ticket")
            if not isinstance(ticket, str):
                raise BridgeError("bad_reply", f"a pending reply without a ticket: {reply!r}", reply)
            if on_wait is not None:
                on_wait(reply)
            hint = reply.get("retry_after_s")
            wait = min(float(hint) if isinstance(hint, int | float) and hint > 0 else 1.0, ASK_AT_LEAST_EVERY_S)
            if deadline is not None and time.monotonic() + wait > deadline:
                raise BridgeTimeout("timeout", f"no {request['op']} answer within the time given: "
                                    f"{reply.get('message', 'still pending')}", reply)  # fmt: skip
            self._pause(wait)
            reply = self.request({"op": request["op"], "ticket": ticket})  # the bridge may hold this up to 5 s
        return reply

    def _pause(self, seconds: float) -> None:
        """Wait without reading data: leases renewed on time, a stop (signal or stop()) ends it with Stopped."""
        end = time.monotonic() + seconds
        while True:
            if self._stop_flag:
                raise Stopped("stopped", "stopped while waiting for a history answer")
            self._renew_if_due()
            now = time.monotonic()
            if now >= end:
                return
            wait = min(end - now, max(0.0, self._next_renew - now))
            if self._wake_r is None:
                time.sleep(min(wait, PAUSE_SLICE_S))
                continue
            with contextlib.suppress(InterruptedError):
                ready, _, _ = select.select([self._wake_r], [], [], wait)
                if ready:
                    self._drain_wake()


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout

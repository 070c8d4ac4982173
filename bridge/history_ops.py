"""The history and reference ops of the request socket (docs/bus.md, History and reference data):
parsing and checking what REQ clients send, and planning a span into requests TWS takes.

Outside input, as in ops.py: every refusal is a `RequestError` naming what was wrong, nothing else
is raised (tests/test_history_ops.py tries arbitrary input). A bar request's duration and bar size
are checked against IB's step sizes (histrules) here, before anything is sent, so a mistake costs
no request of IB's 60 in 10 minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .histkey import BAR_DATA, MAX_TICKS, TICK_DATA
from .histrules import DAY, BadRequest, bar_size, check_bars, longest_duration
from .limits import LimitError, check_text
from .ops import RequestError, instrument_arg
from .protocol import Contract

HISTORY_OPS = ("history", "ticks", "head_timestamp", "details", "option_chain", "search")
TICKET_OPS = ("history", "ticks", "head_timestamp", "details")  # ops whose answers a ticket (and page) fetches
MAX_PARTS = 500  # TWS requests one history request may be split into: about 1.5 hours of IB's pacing
MAX_TICKET_CHARS = 64
MAX_PAGE = 1_000_000
MAX_PATTERN_CHARS = 64
LATEST_EPOCH = 4_102_444_800  # 2100-01-01: anything later is a mistake, not a time
CLOCK_SKEW = 60  # an end this far past the bridge's clock is taken as now; further is refused


@dataclass(frozen=True)
class TicketArgs:
    """A fetch of an answer by its ticket (and page)."""

    ticket: str
    page: int


@dataclass(frozen=True)
class Part:
    """One TWS request of a bars answer: its duration and end (None: up to now)."""

    duration: str
    end: int | None


@dataclass(frozen=True)
class HistoryArgs:
    contract: Contract
    bar: str  # IB's spelling
    what: str
    rth: bool
    parts: tuple[Part, ...]
    start: int | None  # the span asked, when asked by start: the answer is clipped to it
    end: int | None


@dataclass(frozen=True)
class TicksArgs:
    contract: Contract
    what: str
    start: int | None
    end: int | None
    count: int
    rth: bool
    skip: int  # ticks at `start` already delivered by the previous page


@dataclass(frozen=True)
class HeadArgs:
    contract: Contract
    what: str
    rth: bool


def ticket_args(request: dict[str, Any]) -> TicketArgs | None:
    """The ticket (and page) a request fetches, or None for a new request."""
    if "ticket" not in request:
        if "page" in request:
            raise RequestError("bad_request", "page goes with ticket: send back the reply's 'next' as it is")
        return None
    ticket, page = request["ticket"], request.get("page", 0)
    if not isinstance(ticket, str) or not 0 < len(ticket) <= MAX_TICKET_CHARS:
        raise RequestError("bad_request", "ticket is the string a pending reply gave ('ticket')")
    if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page <= MAX_PAGE:
        raise RequestError("bad_request", "page is a whole number from 0, as the reply's 'next' gives it")
    return TicketArgs(ticket, page)


def _flag(request: dict[str, Any], name: str, default: bool) -> bool:
    value = request.get(name, default)
    if not isinstance(value, bool):
        raise RequestError("bad_request", f"{name} is true or false")
    return value


def _what(request: dict[str, Any], allowed: frozenset[str]) -> str:
    what = request.get("what", "TRADES")
    if not isinstance(what, str) or what.upper() not in allowed:
        raise RequestError("bad_request", f"what {str(what)[:40]!r} is not one of {', '.join(sorted(allowed))}")
    return what.upper()


def _epoch(request: dict[str, Any], name: str, now: float) -> int | None:
    """A UTC epoch in seconds, or None when absent; a little past now is now, further is refused."""
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError("bad_request", f"{name} is a UTC time in epoch seconds (a number)")
    if not 0 <= value <= LATEST_EPOCH:
        raise RequestError("bad_request", f"{name} {value!r} is not a UTC epoch in seconds between 1970 and 2100")
    if value > now + CLOCK_SKEW:
        raise RequestError("bad_request", f"{name} {value:.0f} is in the future (the bridge's clock says {now:.0f})")
    return int(min(value, now))


def history_args(request: dict[str, Any], now: float) -> HistoryArgs:
    """A `history` request: bars by `duration` (one TWS request, IB's step sizes checked) or by
    `start` (a span the bridge splits into TWS-sized requests), up to `end` or now."""
    contract = instrument_arg(request, "history")
    bar = request.get("bar")
    if not isinstance(bar, str):
        raise RequestError("bad_request", "history needs 'bar': a bar size like '1 min', '5 mins', '1 hour', '1 day'")
    what, rth = _what(request, BAR_DATA), _flag(request, "rth", False)
    start, end = _epoch(request, "start", now), _epoch(request, "end", now)
    span = request.get("duration")
    if (span is None) == (start is None):
        raise RequestError("bad_request", "history takes either 'duration' (like '1 D', one TWS request) or "
                           "'start' (UTC epoch seconds: a span the bridge splits into requests), not both")  # fmt: skip
    try:
        if span is not None:
            if not isinstance(span, str):
                raise BadRequest("duration is text like '3600 S', '1 D', '2 W', '1 M', '1 Y'")
            span, size = check_bars(span, bar)
            parts: tuple[Part, ...] = (Part(span, end),)
        else:
            assert start is not None
            size = bar_size(bar)
            if start >= (end if end is not None else now):
                raise BadRequest(f"start {start} is not before the end of the span ({end if end is not None else now})")
            parts = plan(size, start, end, now)
    except BadRequest as exc:
        more = "; or give 'start' for a longer span: the bridge splits it" if span is not None else ""
        raise RequestError("bad_request", f"{exc}{more}") from None
    if len(parts) > MAX_PARTS:
        why = f"this span takes {len(parts)} TWS requests of {size} bars; the limit is {MAX_PARTS} per history request"
        raise RequestError("bad_request", f"{why} (MAX_PARTS): ask a shorter span or larger bars")
    return HistoryArgs(contract, size, what, rth, parts, start, end)


# Bars of a day or longer: the least duration IB's step sizes take them in (a week's bars need 1 W's row).
_LEAST_DAYS = {"1 day": 1, "1 week": 3, "1 month": 8}


def plan(bar: str, start: int, end: int | None, now: float) -> tuple[Part, ...]:
    """The TWS requests that cover [start, end or now] with `bar` bars.

    Intraday bars: pieces of the longest duration IB allows for the bar (histrules), on a UTC grid
    of that length, so that two askers of overlapping spans share pieces and each complete piece is
    cached for good; the last piece ends at `end` (or is open, up to now) and may overlap the one
    before. Daily and longer bars: one request of whole days (years past 365 days).
    """
    stop = end if end is not None else int(now)
    longest = longest_duration(bar)
    if longest is None:
        days = max(math.ceil((stop - start) / DAY), _LEAST_DAYS.get(bar, 1))
        span = f"{days} D" if days <= 365 else f"{math.ceil(days / 365)} Y"
        return (Part(check_bars(span, bar)[0], end),)
    count, unit = longest.split()
    if unit == "M":  # a month's length depends on the calendar: 30 days is one on every calendar
        longest, length = "30 D", 30 * DAY
    else:
        length = int(count) * {"S": 1, "D": DAY, "W": 7 * DAY}[unit]
    check_bars(longest, bar)
    parts = []
    piece = start // length * length
    while piece < stop:
        if piece + length <= stop:
            parts.append(Part(longest, piece + length))
        else:
            parts.append(Part(longest, end))
        piece += length
        if len(parts) > MAX_PARTS:
            break  # refused by the caller, naming the count
    return tuple(parts)


def ticks_args(request: dict[str, Any], now: float) -> TicksArgs:
    """A `ticks` request: from `start` forward (paged by `next` up to `end`), or the last before `end`."""
    contract = instrument_arg(request, "ticks")
    what, rth = _what(request, TICK_DATA), _flag(request, "rth", False)
    start, end = _epoch(request, "start", now), _epoch(request, "end", now)
    if start is None and end is None:
        raise RequestError("bad_request", "ticks needs 'start' (forward from it) or 'end' (the last ticks before it)")
    if start is not None and end is not None and start >= end:
        raise RequestError("bad_request", f"start {start} is not before end {end}")
    count = request.get("count", MAX_TICKS)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TICKS:
        raise RequestError("bad_request", f"count is 1 to {MAX_TICKS} ticks per reply (IB's most per request)")
    skip = request.get("skip", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip < MAX_TICKS or (skip and start is None):
        raise RequestError("bad_request", "skip is a whole number below 1000 that goes with start, as 'next' gives it")
    return TicksArgs(contract, what, start, end, count, rth, skip)


def head_args(request: dict[str, Any]) -> HeadArgs:
    return HeadArgs(instrument_arg(request, "head_timestamp"), _what(request, BAR_DATA), _flag(request, "rth", False))


def exchange_arg(request: dict[str, Any]) -> str:
    """An option_chain's optional exchange filter ('' for every exchange)."""
    exchange = request.get("exchange", "")
    if not isinstance(exchange, str):
        raise RequestError("bad_request", "exchange is text like 'CBOE', or left out for every exchange")
    try:
        check_text("exchange", exchange.upper(), 32)
    except LimitError as exc:
        raise RequestError("bad_request", str(exc), reason="bad_text") from None
    return exchange.upper()


def search_args(request: dict[str, Any]) -> str:
    """reqMatchingSymbols' pattern: the start of a symbol or a company name."""
    pattern = request.get("pattern")
    if not isinstance(pattern, str) or not pattern.strip():
        raise RequestError("bad_request", "search needs 'pattern': the start of a symbol or company name, like 'APP'")
    try:
        check_text("pattern", pattern, MAX_PATTERN_CHARS)
    except LimitError as exc:
        raise RequestError("bad_request", str(exc), reason="bad_text") from None
    return pattern.strip()

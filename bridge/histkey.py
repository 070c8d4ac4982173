"""What a historical request is (to pace it, share it and cache it) and what came of it.

A `HistoryKey` is the whole of what the bridge sends TWS for one request, normalised, so that two
askers who mean the same thing get one TWS request and one cache entry: IB's spelling of bar size
and duration, whatToShow upper-cased, times as UTC epoch seconds. An open end (`end=None`, TWS's
empty endDateTime: up to now, the forming bar included) is never the same as a fixed end, even one
equal to now: the first keeps moving, the second does not.

`fresh_until` is the cache's freshness rule; `tws_outcome` maps TWS's errors for a request to an
`Outcome` the bridge turns into a reply. No protocol import: the bridge builds keys from requests.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

from .histrules import BAR_SIZES, STEP_SIZES, BadRequest, check_bars

BAR_DATA = frozenset(
    {
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
    }
)
TICK_DATA = frozenset({"TRADES", "MIDPOINT", "BID_ASK"})  # reqHistoricalTicks' whatToShow
MAX_TICKS = 1000  # IB: up to 1000 ticks per reqHistoricalTicks


@dataclass(frozen=True, slots=True)
class HistoryKey:
    """One historical request as TWS would see it; equal keys are identical requests to IB."""

    kind: str  # "bars", "ticks" or "head_timestamp"
    contract: Hashable  # conId, or (symbol, secType, exchange, currency, ...) as the bridge chooses
    exchange: str
    what_to_show: str
    bar_size: str = ""
    duration: str = ""
    end: int | None = None  # UTC epoch seconds; None: up to now (TWS's empty endDateTime)
    start: int | None = None  # ticks only
    use_rth: bool = True
    count: int = 0  # ticks per request
    keep_up_to_date: bool = False
    options: tuple[Hashable, ...] = ()  # anything else sent to TWS (formatDate, ignoreSize, ...)

    @property
    def group(self) -> tuple[Hashable, str, str]:
        """IB's "same contract, exchange and tick type" for the 6-in-2-seconds rule."""
        return (self.contract, self.exchange, self.what_to_show)

    @property
    def bid_ask(self) -> bool:
        return self.what_to_show == "BID_ASK"

    @property
    def bar_seconds(self) -> int:
        return BAR_SIZES.get(self.bar_size, 0)

    @classmethod
    def bars(
        cls,
        contract: Hashable,
        exchange: str,
        what_to_show: str,
        bar_size: str,
        duration: str,
        end: float | None = None,
        use_rth: bool = True,
        keep_up_to_date: bool = False,
        options: tuple[Hashable, ...] = (),
        table: tuple[tuple[str, str, str], ...] = STEP_SIZES,
    ) -> HistoryKey:
        """reqHistoricalData, checked against IB's rules (BadRequest says what is allowed)."""
        span, size = check_bars(duration, bar_size, table)
        what = _what(what_to_show, BAR_DATA)
        if keep_up_to_date and end is not None:
            raise BadRequest("keep_up_to_date takes no end: its bars run up to now and go on")
        return cls("bars", contract, exchange.upper(), what, size, span, _epoch(end), None, use_rth, 0,
                   keep_up_to_date, options)  # fmt: skip

    @classmethod
    def ticks(
        cls,
        contract: Hashable,
        exchange: str,
        what_to_show: str,
        start: float | None = None,
        end: float | None = None,
        count: int = MAX_TICKS,
        use_rth: bool = True,
        options: tuple[Hashable, ...] = (),
    ) -> HistoryKey:
        """reqHistoricalTicks: exactly one of start and end (IB), at most 1000 ticks."""
        if (start is None) == (end is None):
            raise BadRequest("historical ticks take exactly one of start and end (IB)")
        if not 1 <= count <= MAX_TICKS:
            raise BadRequest(f"historical ticks: count must be 1 to {MAX_TICKS} per request (IB); page for more")
        what = _what(what_to_show, TICK_DATA)
        return cls("ticks", contract, exchange.upper(), what, "", "", _epoch(end), _epoch(start), use_rth, count,
                   False, options)  # fmt: skip

    @classmethod
    def head_timestamp(
        cls, contract: Hashable, exchange: str, what_to_show: str, use_rth: bool = True, options: tuple = ()
    ) -> HistoryKey:
        """reqHeadTimeStamp: the earliest data point IB has."""
        return cls("head_timestamp", contract, exchange.upper(), _what(what_to_show, BAR_DATA), use_rth=use_rth,
                   options=options)  # fmt: skip


def _what(text: str, allowed: frozenset[str]) -> str:
    what = text.upper() if isinstance(text, str) else ""
    if what not in allowed:
        raise BadRequest(f"what_to_show {text!r} is not one of {', '.join(sorted(allowed))}")
    return what


def _epoch(at: float | None) -> int | None:
    """Whole UTC seconds: TWS's resolution, so 12:00:00.2 and 12:00:00.7 are one request."""
    if at is None:
        return None
    if not math.isfinite(at) or at < 0:
        raise BadRequest(f"time {at!r} is not a UTC epoch in seconds")
    return int(at)


@dataclass(frozen=True)
class Freshness:
    """How long an answer is served from memory (module docstring of histsched, The cache)."""

    open_ttl: float = 15.0  # an answer up to now: TWS would not take the same request sooner anyway
    settle: float = 60.0  # a fixed end this long past its last bar's close: every bar in it is complete
    head_ttl: float = 3600.0  # the earliest data point moves only as IB ages data out


def fresh_until(key: HistoryKey, answered_at: float, kind: str, rule: Freshness) -> float:
    """Until when an answer may be served again; `answered_at` or earlier: not at all.

    - keep_up_to_date: never (it is a subscription, not an answer);
    - a fixed end whose last bar closed `settle` seconds before the answer: complete bars never
      change, so until evicted (inf);
    - anything reaching now (open end, a recent end, no data): `open_ttl`, and for bars no longer
      than one bar, since the forming bar is in it;
    - head timestamp: `head_ttl`.
    Errors are never cached; "no data" only briefly (a farm may have been down).
    """
    if key.keep_up_to_date or kind not in ("ok", "no_data"):
        return answered_at
    if key.kind == "head_timestamp":
        return answered_at + rule.head_ttl
    if kind == "ok" and key.end is not None and answered_at >= key.end + key.bar_seconds + rule.settle:
        return math.inf
    ttl = min(rule.open_ttl, key.bar_seconds) if key.bar_seconds else rule.open_ttl
    return answered_at + ttl


@dataclass(frozen=True)
class Outcome:
    """How a request ended, in words a reply can carry: `kind` from a fixed set, TWS's code and text."""

    kind: str  # ok, no_data, pacing, cancelled, not_found, invalid, refused, lost, error
    code: int | None = None
    message: str = ""

    @property
    def retried(self) -> bool:
        """The scheduler sends it again (after a pause for pacing) instead of answering."""
        return self.kind in ("pacing", "lost")


OK = Outcome("ok")
LOST = Outcome("lost", None, "the connection to TWS was lost before the answer")


def tws_outcome(code: int, message: str) -> Outcome:
    """TWS's error for a historical request, as an Outcome.

    162 is Historical Market Data Service's code for several things, told apart by text: "pacing
    violation" (QuantConnect/Lean#607), "HMDS query returned no data" (swigibpy#11), "API historical
    data query cancelled" (ib_insync#268), else a refusal ("invalid step", no permissions, ...).
    366: "No historical data query found for ticker id" (TWS no longer knows the request).
    321: "Error validating request" (a field TWS will not take, e.g. the bar size).
    """
    text = message.lower()
    if code == 162:
        if "pacing violation" in text:
            return Outcome("pacing", code, message)
        if "returned no data" in text:
            return Outcome("no_data", code, message)
        if "query cancelled" in text:
            return Outcome("cancelled", code, message)
        return Outcome("refused", code, message)
    if code == 366:
        return Outcome("not_found", code, message)
    if code in (321, 200):
        return Outcome("invalid", code, message)
    return Outcome("error", code, message)

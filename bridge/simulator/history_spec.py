"""What a history request means: bar sizes, durations, dates, as TWS reads and checks them.

Sources: the bar sizes and the 321 'bK' / 'bH' wordings are TWS's own, as users logged them
(e.g. rust-ibapi PR 245, ib_async issue 229); the duration/bar-size table is IB's "step sizes"
(TWS API documentation, historical bars). What IB does not publish (the wording for a bad
combination or a bad date) is ours, in the same form.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .instrument import Instrument

BAR_SIZES: dict[str, int] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30, "1 min": 60, "2 mins": 120,
    "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900, "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800, "1 day": 86400,
    "1 week": 7 * 86400, "1W": 7 * 86400, "1 month": 30 * 86400, "1M": 30 * 86400,
}  # fmt: skip
DAY = 86400
WEEK = 7 * DAY
MONTH = 30 * DAY

BAD_BAR_SIZE = (
    321,
    "Error validating request.-'bK' : cause - Historical data bar size setting is invalid. Legal ones are: "
    "1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, "
    "30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M",
)
LONG_IN_DAYS = (
    321,
    "Error validating request.-'bH' : cause - Historical data requests for durations longer than 365 days "
    "must be made in years.",
)
DURATION_UNITS = {"S": 1, "D": DAY, "W": WEEK, "M": MONTH, "Y": 365 * DAY}

# IB's step sizes: (longest duration, smallest bar, largest bar) in seconds, shortest first.
STEP_SIZES = (
    (60, 1, 60), (120, 1, 120), (1800, 1, 1800), (3600, 5, 3600), (14400, 10, 10800), (28800, 30, 28800),
    (DAY, 60, DAY), (2 * DAY, 120, DAY), (WEEK, 180, WEEK), (MONTH, 1800, MONTH), (365 * DAY, DAY, MONTH),
)  # fmt: skip

WHAT_TO_SHOW = frozenset({
    "TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY",
    "OPTION_IMPLIED_VOLATILITY",
})  # fmt: skip
TICK_KINDS = frozenset({"TRADES", "BID_ASK", "MIDPOINT"})
# TWS's own names for a data type in "HMDS query returned no data: AAPL@SMART Trades".
KIND_WORDS = {
    "TRADES": "Trades", "ADJUSTED_LAST": "Adjusted_last", "MIDPOINT": "Midpoint", "BID": "Bid", "ASK": "Ask",
    "BID_ASK": "Bid_Ask", "HISTORICAL_VOLATILITY": "Historical_volatility",
    "OPTION_IMPLIED_VOLATILITY": "Option_implied_volatility",
}  # fmt: skip

# Without tz data on the machine, fixed standard offsets of the zones the catalogue uses.
_FALLBACK_OFFSETS = {"US/Eastern": -5, "US/Central": -6, "UTC": 0, "GMT": 0}


class BadRequest(Exception):
    """A request TWS refuses; carries (code, text)."""

    def __init__(self, code_and_text: tuple[int, str]) -> None:
        super().__init__(code_and_text[1])
        self.code_and_text = code_and_text


def invalid(cause: str) -> BadRequest:
    return BadRequest((321, f"Error validating request.-'bH' : cause - {cause}"))


def zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone(dt.timedelta(hours=_FALLBACK_OFFSETS.get(name, 0)))


def bar_seconds(bar_size: str) -> int:
    seconds = BAR_SIZES.get(bar_size.strip())
    if seconds is None:
        raise BadRequest(BAD_BAR_SIZE)
    return seconds


def duration_seconds(duration: str) -> int:
    """'3600 S', '2 D', '1 W', '1 M', '1 Y' in seconds (a month is 30 days, a year 365)."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*([SDWMY])\s*", duration.upper())
    if m is None or int(m.group(1)) == 0:
        raise invalid(f"Historical data query duration '{duration}' is invalid: an integer then S, D, W, M or Y.")
    count, unit = int(m.group(1)), m.group(2)
    if unit == "D" and count > 365:
        raise BadRequest(LONG_IN_DAYS)
    return count * DURATION_UNITS[unit]


MAX_BARS = 20_000  # ours: TWS answers '5 D' of 1-minute bars (7200) but cancels far longer minute requests


def check_step(duration: int, bar: int, duration_text: str, bar_text: str) -> None:
    """IB's step sizes: each duration allows bars up to a largest size, and bars under a minute
    from a smallest one (TWS refuses '1 D' of '1 secs'). Minute bars and longer are allowed up to
    MAX_BARS per request: users fetch '5 D' of '1 min', which the table alone would refuse."""
    for longest, smallest, largest in STEP_SIZES:
        if duration <= longest or longest == STEP_SIZES[-1][0]:
            too_fine = bar < smallest and (bar < 60 or duration // bar > MAX_BARS)
            if too_fine or bar > largest:
                raise invalid(
                    f"Bar size '{bar_text}' is not allowed for a duration of '{duration_text}': "
                    f"use bars from {_size_text(smallest)} to {_size_text(largest)}."
                )
            return


def _size_text(seconds: int) -> str:
    for text, value in BAR_SIZES.items():
        if value == seconds and " " in text:
            return text
    return f"{seconds} secs"


def parse_time(text: str, now: float) -> float:
    """An end or start time as TWS takes it: '' is now; 'YYYYMMDD HH:MM:SS[ TZ]', 'YYYYMMDD-HH:MM:SS'
    (UTC) or 'YYYYMMDD' (midnight). Without a zone the simulator reads UTC."""
    text = text.strip()
    if not text:
        return now
    m = re.fullmatch(r"(\d{8})(?:[ -](\d{1,2}):(\d{2}):(\d{2}))?(?:\s+(\S+))?", text)
    if m is None:
        raise invalid(f"End date/time '{text}' is invalid: use 'YYYYMMDD HH:MM:SS TZ' or 'YYYYMMDD-HH:MM:SS' (UTC).")
    day, hh, mm, ss, tz = m.groups()
    try:
        when = dt.datetime.strptime(day, "%Y%m%d").replace(
            hour=int(hh or 0), minute=int(mm or 0), second=int(ss or 0), tzinfo=zone(tz) if tz else dt.UTC
        )
    except ValueError as exc:
        raise invalid(f"Date/time '{text}' is invalid: {exc}.") from None
    return when.timestamp()


class BarRequest(NamedTuple):
    """A checked reqHistoricalData: the span [start, end), the bar length, what to show."""

    start: float
    end: float
    bar: int
    what: str
    use_rth: bool
    format_date: int
    keep_up_to_date: bool


def check_bar_request(
    end_text: str, duration: str, bar_size: str, what: str, use_rth: bool, format_date: int, keep: bool, now: float
) -> BarRequest:
    bar = bar_seconds(bar_size)
    length = duration_seconds(duration)
    check_step(length, bar, duration, bar_size)
    what = what.strip().upper()
    if what not in WHAT_TO_SHOW:
        raise invalid(f"whatToShow '{what}' is not one of {', '.join(sorted(WHAT_TO_SHOW))}.")
    if keep and end_text.strip():
        raise invalid("End date/time must be empty when keepUpToDate is set.")
    if format_date not in (1, 2):
        raise invalid(f"formatDate {format_date} is invalid: 1 (text) or 2 (epoch seconds).")
    end = min(parse_time(end_text, now), now)
    return BarRequest(end - length, end, bar, what, use_rth, format_date, keep)


def format_bar_time(start: int, bar: int, format_date: int, inst: Instrument) -> str:
    """A bar's date as TWS writes it: 'YYYYMMDD' for daily and longer bars whatever formatDate;
    'YYYYMMDD HH:MM:SS TZ' (formatDate 1) or epoch seconds (2) for intraday bars."""
    local = dt.datetime.fromtimestamp(start, zone(inst.time_zone_id))
    if bar >= DAY:
        return local.strftime("%Y%m%d")
    if format_date == 2:
        return str(start)
    return f"{local:%Y%m%d %H:%M:%S} {inst.time_zone_id}"


def format_span_time(when: float, inst: Instrument) -> str:
    """historicalDataEnd's start and end: 'YYYYMMDD HH:MM:SS TZ' in the instrument's zone."""
    return f"{dt.datetime.fromtimestamp(int(when), zone(inst.time_zone_id)):%Y%m%d %H:%M:%S} {inst.time_zone_id}"


def format_head(when: int, format_date: int) -> str:
    """headTimestamp: 'YYYYMMDD-HH:MM:SS' in UTC (formatDate 1), as ib_async parses it, or epoch seconds."""
    if format_date == 2:
        return str(when)
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y%m%d-%H:%M:%S")

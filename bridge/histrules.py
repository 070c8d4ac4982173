"""IB's rules for the shape of a historical bars request, checked before anything goes to TWS.

A bar size TWS does not know, or a duration too long for its bar size, costs one request of the
60 in 10 minutes and comes back as error 321 ("Historical data bar size setting is invalid. Legal
ones are: 1 secs, 5 secs, ...") or 162 ("invalid step"); checked here, the asker gets a
`bad_request` at once that names what is allowed.

Sources:
- Bar sizes: IB's "Valid Bar Sizes" (interactivebrokers.github.io/tws-api/historical_bars.html;
  IBKR Campus, twsapi-doc #hist-bar-size) and TWS's own 321 text, quoted in
  wboayue/rust-ibapi#245 and dshe/InterReact#16 (it spells week and month "1W", "1M").
- Durations: "<integer> <unit>", unit S, D, W, M or Y (reqHistoricalData, durationStr).
- Step sizes: the table in "Historical Data Limitations"
  (interactivebrokers.github.io/tws-api/historical_limitations.html, and IBKR Campus): for each
  listed duration the smallest and largest bar size allowed. IB calls it a guide ("exemplifies");
  we read a duration between two listed ones by the next longer listed one (5 D as 1 W), and one
  beyond the last (1 Y) by the last. In practice TWS has answered a little beyond it (5 D of
  1 min bars, erdewit/ib_insync#268); pass `table=` to loosen it.

Pure functions, no state.
"""

from __future__ import annotations

import re

DAY = 86_400

# IB's bar sizes, in IB's spelling, with their length in seconds.
BAR_SIZES: dict[str, int] = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10_800,
    "4 hours": 14_400,
    "8 hours": 28_800,
    "1 day": DAY,
    "1 week": 7 * DAY,
    "1 month": 31 * DAY,
}

# Duration units; a month and a year are taken at their longest, to order durations only.
DURATION_UNITS: dict[str, int] = {"S": 1, "D": DAY, "W": 7 * DAY, "M": 31 * DAY, "Y": 366 * DAY}

# IB's step-size table: duration, smallest bar size, largest bar size.
STEP_SIZES: tuple[tuple[str, str, str], ...] = (
    ("60 S", "1 secs", "1 min"),
    ("120 S", "1 secs", "2 mins"),
    ("1800 S", "1 secs", "30 mins"),
    ("3600 S", "5 secs", "1 hour"),
    ("14400 S", "10 secs", "3 hours"),
    ("28800 S", "30 secs", "8 hours"),
    ("1 D", "1 min", "1 day"),
    ("2 D", "2 mins", "1 day"),
    ("1 W", "3 mins", "1 week"),
    ("1 M", "30 mins", "1 month"),
    ("1 Y", "1 day", "1 month"),
)

_UNIT_WORDS = {
    "sec": "secs",
    "secs": "secs",
    "second": "secs",
    "seconds": "secs",
    "s": "secs",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "d": "day",
    "week": "week",
    "weeks": "week",
    "w": "week",
    "month": "month",
    "months": "month",
}
_AMOUNT = re.compile(r"\s*(\d{1,7})\s*([A-Za-z]+)\s*")


class BadRequest(ValueError):
    """A request TWS would refuse; the message says what is allowed."""


def bar_size(text: str) -> str:
    """IB's spelling of a bar size ('5 min' -> '5 mins', '1W' -> '1 week'); BadRequest if IB has none."""
    match = _AMOUNT.fullmatch(text) if isinstance(text, str) else None
    word = match.group(2) if match else ""
    unit = "month" if word == "M" else _UNIT_WORDS.get(word.lower())  # TWS's own 321 text names "1M"
    if match is None or unit is None:
        raise BadRequest(f"bar size {text!r} is not one IB takes: {', '.join(BAR_SIZES)}")
    count = int(match.group(1))
    if unit == "secs":
        name = f"{count} secs"
    elif unit in ("min", "hour"):
        name = f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    else:
        name = f"{count} {unit}"
    if name not in BAR_SIZES:
        raise BadRequest(f"bar size {text!r} is not one IB takes: {', '.join(BAR_SIZES)}")
    return name


def duration(text: str) -> str:
    """IB's spelling of a duration ('5d' -> '5 D'); BadRequest unless a positive count of S, D, W, M or Y."""
    match = _AMOUNT.fullmatch(text) if isinstance(text, str) else None
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in DURATION_UNITS or int(match.group(1)) < 1:
        raise BadRequest(f"duration {text!r} is not '<count> <unit>' with unit S, D, W, M or Y (e.g. '5 D')")
    return f"{int(match.group(1))} {unit}"


def duration_seconds(text: str) -> int:
    """A duration's length, months and years at their longest: for ordering, not for calendars."""
    count, unit = duration(text).split()
    return int(count) * DURATION_UNITS[unit]


def bar_seconds(text: str) -> int:
    return BAR_SIZES[bar_size(text)]


def step_range(duration_text: str, table: tuple[tuple[str, str, str], ...] = STEP_SIZES) -> tuple[str, str]:
    """The smallest and largest bar size IB allows for a duration: the next listed duration at or above it."""
    length = duration_seconds(duration_text)
    row = next((r for r in table if duration_seconds(r[0]) >= length), table[-1])
    return row[1], row[2]


def longest_duration(bar: str, table: tuple[tuple[str, str, str], ...] = STEP_SIZES) -> str | None:
    """The longest listed duration one request of these bars may cover; None when the table sets no end."""
    seconds = bar_seconds(bar)
    fits = [r[0] for r in table if BAR_SIZES[r[1]] <= seconds <= BAR_SIZES[r[2]]]
    if not fits:
        return None
    if fits[-1] == table[-1][0]:
        return None  # the last row also covers every longer duration
    return fits[-1]


def check_bars(duration_text: str, bar: str, table: tuple[tuple[str, str, str], ...] = STEP_SIZES) -> tuple[str, str]:
    """(duration, bar size) in IB's spelling if IB's step sizes allow them; else BadRequest naming the range."""
    span, size = duration(duration_text), bar_size(bar)
    smallest, largest = step_range(span, table)
    if BAR_SIZES[smallest] <= BAR_SIZES[size] <= BAR_SIZES[largest]:
        return span, size
    if BAR_SIZES[size] < BAR_SIZES[smallest]:
        longest = longest_duration(size, table)
        hint = f"{size} bars cover at most {longest} per request: page a longer span, or take larger bars"
    else:
        shortest = next(r[0] for r in table if BAR_SIZES[size] <= BAR_SIZES[r[2]])
        hint = f"{size} bars need a duration of at least {shortest}, or take smaller bars"
    raise BadRequest(f"duration {span} takes bar sizes from {smallest} to {largest} (IB's step sizes); {hint}")

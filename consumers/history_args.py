"""Bar sizes and times as people type them, read into what the bus takes (IB's bar spelling, epoch seconds).

Typed on a command line, so every refusal is a ValueError whose words say what is accepted.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# IB's bar sizes (reqHistoricalData barSizeSetting), with their length in seconds; a month has none.
BAR_SECONDS: dict[str, int | None] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900, "20 mins": 1200,
    "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
    "1 day": 86400, "1 week": 604800, "1 month": None,
}  # fmt: skip

_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "secs"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "min"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hour"),
    **dict.fromkeys(("d", "day", "days"), "day"),
    **dict.fromkeys(("w", "wk", "week", "weeks"), "week"),
    **dict.fromkeys(("mo", "mon", "month", "months"), "month"),
}
_BAR = re.compile(r"(\d{1,4}) ?([a-z]{1,7})", re.ASCII)
SHORT_BARS = "1s 5s 10s 15s 30s, 1min 2min 3min 5min 10min 15min 20min 30min, 1h 2h 3h 4h 8h, 1d, 1w, 1mo"
LATEST_EPOCH = 253402300799  # 9999-12-31 23:59:59 UTC, the last second datetime can write


def bar_size(text: str) -> str:
    """IB's spelling of a bar size typed as IB writes it ("1 min", "5 mins") or short ("1min", "5m", "1h")."""
    found = _BAR.fullmatch(text.strip().lower())
    unit = _UNITS.get(found.group(2)) if found else None
    if found is None or unit is None:
        raise ValueError(f"{text!r} is not a bar size: give a number and a unit, e.g. 1min, 5mins, 1h, 1d "
                         f"or IB's '1 min'")  # fmt: skip
    count = int(found.group(1))
    plural = "s" if count > 1 and unit in ("min", "hour") else ""
    ib = f"{count} {unit}{plural}"
    if ib not in BAR_SECONDS:
        raise ValueError(f"IB has no {ib} bars; it has {SHORT_BARS}")
    return ib


def bar_for_seconds(seconds: int) -> str | None:
    """IB's bar size of exactly this many seconds, None when IB has none (7 s bars, 45 min bars)."""
    return next((name for name, length in BAR_SECONDS.items() if length == seconds), None)


def when(text: str) -> int:
    """UTC epoch seconds from epoch seconds ("1764547200") or an ISO date or time ("2026-12-01",
    "2026-12-01T14:30", "2026-12-01 14:30:00+01:00"); a date or time without a zone is UTC."""
    text = text.strip()
    if re.fullmatch(r"\d{1,12}(\.\d*)?", text, re.ASCII):
        seconds = int(float(text))
        if seconds > LATEST_EPOCH:
            raise ValueError(f"{text!r} is past the year 9999 as epoch seconds")
        return seconds
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII):
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give epoch seconds or an ISO date or time, "
                         "e.g. 2026-12-01 or 2026-12-01T14:30 (UTC unless it names a zone)") from None  # fmt: skip
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())

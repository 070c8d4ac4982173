"""Contract months and last trading days of futures and options, from the exchanges' rules.

Pure functions of a date, so the catalogue's front contracts roll as the calendar does and a
test can ask "which ES is the front on 2027-03-20?". Business days skip weekends only; no
exchange holiday calendar is kept (a holiday can move a real last day by a day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

MONTH_CODES = "FGHJKMNQUVXZ"  # January .. December, as every US futures exchange names them
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
QUARTERLY = "HMUZ"
MONTHLY = MONTH_CODES


def _business_days_back(day: dt.date, n: int) -> dt.date:
    """`n` business days before `day` (0: `day` itself, moved back to a weekday)."""
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    while n:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _last_business_day(year: int, month: int) -> dt.date:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return _business_days_back(first_next - dt.timedelta(days=1), 0)


def weekday_of_month(year: int, month: int, weekday: int, nth: int) -> dt.date:
    """The `nth` (1-based) `weekday` (Monday 0) of the month: third Friday is (4, 3)."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


def third_friday(year: int, month: int) -> dt.date:
    return weekday_of_month(year, month, 4, 3)


def _crude(year: int, month: int) -> dt.date:
    # NYMEX CL: 3 business days before the 25th of the month before delivery (the 25th itself
    # moved back to a business day first).
    y, m = (year, month - 1) if month > 1 else (year - 1, 12)
    return _business_days_back(_business_days_back(dt.date(y, m, 25), 0), 3)


def _natural_gas(year: int, month: int) -> dt.date:
    # NYMEX NG: 3 business days before the first calendar day of the delivery month.
    return _business_days_back(dt.date(year, month, 1), 3)


def _metals(year: int, month: int) -> dt.date:
    # COMEX GC/SI/HG: the third last business day of the delivery month.
    return _business_days_back(_last_business_day(year, month), 2)


def _treasuries(year: int, month: int) -> dt.date:
    # CBOT ZB/ZN/ZF: the seventh business day before the last business day of the month.
    return _business_days_back(_last_business_day(year, month), 7)


def _grains(year: int, month: int) -> dt.date:
    # CBOT ZC/ZS: the business day before the 15th.
    return _business_days_back(dt.date(year, month, 15), 1)


def _currencies(year: int, month: int) -> dt.date:
    # CME 6E/6J/6B: two business days before the third Wednesday.
    return _business_days_back(weekday_of_month(year, month, 2, 3), 2)


# Each rule names the day trading ends for a contract month.
LAST_DAY: dict[str, Callable[[int, int], dt.date]] = {
    "equity": third_friday,
    "crude": _crude,
    "gas": _natural_gas,
    "metals": _metals,
    "treasuries": _treasuries,
    "grains": _grains,
    "currencies": _currencies,
}


def _months_from(year: int, month: int) -> Iterator[tuple[int, int]]:
    while True:
        yield year, month
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)


def contract_months(rule: str, months: str, today: dt.date, count: int) -> list[tuple[str, dt.date]]:
    """The next `count` listed contracts still trading on `today`: ('YYYYMM', last trading day).

    The first is the front: the nearest listed month whose last trading day is today or later
    (TWS lists a contract until it expires, so this is also what it answers first).
    """
    last_day = LAST_DAY[rule]
    out: list[tuple[str, dt.date]] = []
    # The energy contracts stop trading the month before their delivery month: start a month back.
    start = today.replace(day=1) - dt.timedelta(days=1)
    for year, month in _months_from(start.year, start.month):
        if MONTH_CODES[month - 1] not in months:
            continue
        day = last_day(year, month)
        if day >= today:
            out.append((f"{year}{month:02d}", day))
            if len(out) == count:
                return out
    raise AssertionError("unreachable: months never run out")


def month_code(contract_month: str) -> str:
    """'202612' -> 'Z6', as in ESZ6."""
    return MONTH_CODES[int(contract_month[4:]) - 1] + contract_month[3]


def cbot_local_symbol(root: str, contract_month: str) -> str:
    """CBOT's local symbols as TWS shows them: 'ZN   MAR 27'."""
    return f"{root:<5}{MONTH_NAMES[int(contract_month[4:]) - 1]} {contract_month[2:4]}"


def option_expiries(today: dt.date, count: int) -> list[dt.date]:
    """The next `count` monthly option expiries (third Fridays) on or after `today`."""
    out = []
    for year, month in _months_from(today.year, today.month):
        day = third_friday(year, month)
        if day >= today:
            out.append(day)
            if len(out) == count:
                return out
    raise AssertionError("unreachable")

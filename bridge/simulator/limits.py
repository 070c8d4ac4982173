"""TWS's limits on what one API client may ask, as the simulator enforces them.

Sources (docs/simulator.md, Limits, has the details):
- Message rate: "No more than 50 messages can be sent from an API application to TWS per
  second ... If the 50 messages/second rate is exceeded, TWS will eventually close the
  connection" (IB's TWS API documentation, RTD troubleshooting), and error 100 "Max rate of
  messages per second has been exceeded", seen in TWS logs as "...exceeded:max=50 rec=138 (1)".
  TWS does not publish the exact window or when "eventually" is, so the rule here is ours:
  more than `limit` messages in any sliding `window` (received times) is a violation; the
  first violation of a second gets error 100 with the count and a running number; the
  `strikes`-th error 100 within `memory` seconds closes the connection.
- Market-data lines (101), depth books (309) and tick-by-tick streams (10190) are counted
  by the session (session.py); their defaults live here.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

MAX_MESSAGES_PER_SECOND = 50
MAX_LINES = 100  # a new account's market-data lines; reqMktData snapshots do not hold one
# "the amount of active depth requests is related to the amount of market data lines, with a
# minimum of three and maximum of 60" (TWS API docs, market depth): 3 for a 100-line account.
MAX_DEPTH_BOOKS = 3
# "determined by the same formula used to calculate maximum number of market depth
# subscriptions" (TWS API docs, tick-by-tick); users report 5 on a default account (10190 on
# the sixth), which is what we allow.
MAX_TICK_BY_TICK = 5


class Violation(NamedTuple):
    """A message that broke the rate limit: what TWS counted, and whether it closes the session."""

    received: int  # messages in the window, this one included
    number: int  # the how-many-th error 100 of this connection
    disconnect: bool


class MessageRate:
    """Sliding-window count of one client's messages; sans-IO (the caller passes receive times)."""

    def __init__(
        self, limit: int = MAX_MESSAGES_PER_SECOND, window: float = 1.0, strikes: int = 3, memory: float = 10.0
    ) -> None:
        self.limit = limit
        self.window = window
        self.strikes = strikes
        self.memory = memory
        self.violations = 0
        self._times: deque[float] = deque()
        self._warnings: deque[float] = deque()

    def arrived(self, now: float) -> Violation | None:
        """Count one message received at `now`; a Violation when TWS would answer error 100."""
        times = self._times
        times.append(now)
        while times[0] <= now - self.window:
            times.popleft()
        if len(times) <= self.limit:
            return None
        warnings = self._warnings
        if warnings and now - warnings[-1] < self.window:
            return None  # one error 100 per second of violation, as TWS logs show them
        while warnings and warnings[0] <= now - self.memory:
            warnings.popleft()
        warnings.append(now)
        self.violations += 1
        return Violation(len(times), self.violations, len(warnings) >= self.strikes)


def rate_error_text(limit: int, violation: Violation) -> str:
    """Error 100 in TWS's words."""
    return (
        f"Max rate of messages per second has been exceeded:max={limit} rec={violation.received} ({violation.number})"
    )


def busiest_second(rows: list[dict[str, Any]]) -> int:
    """The most messages TWS received from one connection in any sliding second, from journal rows
    (`t`, `conn`): how a test or a soak sees the bridge's pacing as TWS sees it."""
    by_conn: dict[Any, list[float]] = {}
    for row in rows:
        by_conn.setdefault(row["conn"], []).append(row["t"])
    worst = 0
    for times in by_conn.values():
        times.sort()
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - 1.0:
                j += 1
            worst = max(worst, i - j + 1)
    return worst

"""Logging outside input safely: quoted, escaped and clipped; and junk logged at a bounded rate.

What a REQ client or TWS sends is outside input. Logged verbatim, a newline in it forges a log
line and a 64 KB string writes a 64 KB line; logged once per message, a flood of junk floods the
log. `quote` makes any value one short, escaped token; `Throttled` lets a few lines through per
interval and then says how many it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

CLIP = 80  # characters of outside input a log line shows


def quote(value: object, limit: int = CLIP) -> str:
    """`value` repr-style (quotes, escapes for control and non-printable characters), at most
    `limit` characters of it, with how many more there were."""
    if isinstance(value, str | bytes):
        shown = repr(value[:limit])
        more = len(value) - limit
    else:
        text = repr(value)
        shown, more = text[:limit], len(text) - limit
    return f"{shown}...(+{more})" if more > 0 else shown


def escape(text: str, limit: int = 240) -> str:
    """Our own message that embeds outside input (an error text, TWS's words): every character
    that is not printable escaped as a repr would, the rest left alone, and clipped; so it stays
    one log line whatever it holds."""
    shown = text[:limit]
    if not shown.isprintable():
        shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in shown)
    more = len(text) - limit
    return f"{shown}...(+{more})" if more > 0 else shown


class Throttled:
    """At most `burst` lines per `interval` seconds; past that, lines are counted, and the count is
    logged (one line) when the next interval begins, by the next call or by `flush`."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        interval: float = 10.0,
        burst: int = 5,
        what: str = "similar lines",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.level, self.interval, self.burst, self.what = logger, level, interval, burst, what
        self.clock = clock
        self._window = -float("inf")
        self._emitted = 0
        self.suppressed = 0

    def log(self, msg: str, *args: object) -> bool:
        """Log unless this interval's lines are used up; True if it was logged."""
        self.flush()
        if self._emitted >= self.burst:
            self.suppressed += 1
            return False
        self._emitted += 1
        self.logger.log(self.level, msg, *args)
        return True

    def flush(self) -> None:
        """Start a new interval if the current one is over, saying how much it held back."""
        now = self.clock()
        if now - self._window < self.interval:
            return
        if self.suppressed:
            self.logger.log(self.level, "... and %d more %s in %.0f s (not logged)", self.suppressed, self.what,
                            now - self._window)  # fmt: skip
        self._window, self._emitted, self.suppressed = now, 0, 0

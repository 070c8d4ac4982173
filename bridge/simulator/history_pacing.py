"""IB's historical-data pacing, enforced as HMDS enforces it, so a test can prove a client keeps it.

IB's rules (TWS API documentation, "Historical Data Limitations"; issue 12): a pacing violation is
- more than 60 historical requests in any ten minutes;
- an identical request within 15 seconds of the last;
- six or more requests for the same contract, exchange and data type within two seconds;
BID_ASK counts as two requests (TWS asks for BID and ASK separately), and at most 50 requests may be
open at once. TWS answers a violation with error 162 "Historical Market Data Service error
message:Historical data request pacing violation" (IB's documentation and every user log). The
limits are account-wide, so here simulator-wide. reqHistoricalData, reqHistoricalTicks and
reqHeadTimestamp all count (HMDS serves all three). A refused request is not counted as made.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import NamedTuple

PACING_VIOLATION = (162, "Historical Market Data Service error message:Historical data request pacing violation")
# The 50-open limit is IB's; the wording of its refusal is ours, in HMDS's form.
TOO_MANY_OPEN = "Historical Market Data Service error message:Too many open historical data requests (max {})"


class HistoryLimits(NamedTuple):
    """IB's numbers; tests scale the windows down (`scaled`)."""

    max_requests: int = 60
    window: float = 600.0
    identical_window: float = 15.0
    burst_requests: int = 6  # this many for one contract, exchange and type within burst_window is a violation
    burst_window: float = 2.0
    max_open: int = 50
    bid_ask_weight: int = 2
    enforced: bool = True

    def scaled(self, factor: float) -> HistoryLimits:
        """The same rules with every window multiplied by `factor` (0.01: ten minutes become six seconds)."""
        return self._replace(
            window=self.window * factor,
            identical_window=self.identical_window * factor,
            burst_window=self.burst_window * factor,
        )


@dataclass
class Refusal:
    rule: str  # "rate", "identical", "burst", "open"
    code_and_text: tuple[int, str]


class HistoryPacing:
    """Sliding windows over the requests HMDS has accepted; sans-IO (callers pass the time)."""

    def __init__(self, limits: HistoryLimits | None = None) -> None:
        self.limits = limits or HistoryLimits()
        self.accepted = 0
        self.violations: Counter[str] = Counter()
        self._recent: deque[tuple[float, int]] = deque()  # (time, weight) within `window`
        self._identical: dict[tuple[object, ...], float] = {}
        self._bursts: dict[tuple[object, ...], deque[float]] = {}

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    def admit(
        self, identity: tuple[object, ...], burst: tuple[object, ...], what: str, open_now: int, now: float
    ) -> Refusal | None:
        """Count one request received at `now`; a Refusal when HMDS would answer with an error instead."""
        lim = self.limits
        if not lim.enforced:
            self.accepted += 1
            return None
        weight = lim.bid_ask_weight if what.upper() == "BID_ASK" else 1
        recent = self._recent
        while recent and recent[0][0] <= now - lim.window:
            recent.popleft()
        times = self._bursts.setdefault(burst, deque())
        while times and times[0] <= now - lim.burst_window:
            times.popleft()
        last = self._identical.get(identity)
        rule = None
        if open_now >= lim.max_open:
            refusal = Refusal("open", (162, TOO_MANY_OPEN.format(lim.max_open)))
        else:
            if sum(w for _, w in recent) + weight > lim.max_requests:
                rule = "rate"
            elif last is not None and now - last < lim.identical_window:
                rule = "identical"
            elif len(times) + weight >= lim.burst_requests:
                rule = "burst"
            refusal = Refusal(rule, PACING_VIOLATION) if rule else None
        if refusal is not None:
            self.violations[refusal.rule] += 1
            return refusal
        recent.append((now, weight))
        times.extend([now] * weight)
        self._identical[identity] = now
        if len(self._identical) > 4096:  # forget requests long past the identical window
            self._identical = {k: t for k, t in self._identical.items() if now - t < lim.identical_window}
        self.accepted += 1
        return None

"""IB's historical-data pacing rules, kept in one place for every process that asks the bridge.

TWS answers error 162 "Historical Market Data Service error message: Historical data request
pacing violation" to a request that breaks any of these (IB, "Historical Data Limitations":
interactivebrokers.github.io/tws-api/historical_limitations.html, the older API guide's
historical_data_limitations.htm, and IBKR Campus):

- identical historical data requests within 15 seconds;
- six or more requests for the same contract, exchange and tick type (whatToShow) within 2 s;
- more than 60 requests within any ten-minute period;
- a BID_ASK request counts twice (the old guide: "we will call BID and ASK historical data
  separately", so we count it twice toward open requests too);
- at most 50 historical data requests open at once.

Which requests count: IB's pages say "historical data requests" and name no others. Its footnote
says the hard limits were lifted for bars of 1 min and more (a "soft" throttle remains) and that
5-second real-time bars share them; nothing public says whether reqHeadTimeStamp or
reqHistoricalTicks count. We count every request the scheduler starts (bars of any size, ticks,
head timestamps) toward every rule: one request too many costs a pacing violation, one too few
costs a little time.

Margins, as bridge/pacing.py keeps under TWS's 50 messages a second: TWS counts when IB's servers
see a request, we count when the bridge hands it over (`Pacer.restamp` moves that to the moment it
reaches the socket), so every limit here is a little tighter than IB's (`Limits`); `Limits.ib()`
is IB's own numbers, for the theoretical figures. Every limit is a parameter, so a simulator and
tests can run the same rules with scaled-down windows.

Sans-IO: the caller passes the clock; nothing sleeps.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Hashable
from dataclasses import dataclass, replace

_EPS = 1e-6  # a start leaves a window a hair late, never early (clock values are floats)


@dataclass(frozen=True)
class Limits:
    """The pacing rules' numbers; the defaults keep a margin under IB's."""

    budget: int = 55  # IB: 60 requests ...
    budget_window: float = 610.0  # ... in any 600 s
    identical_window: float = 16.0  # IB: no identical request within 15 s
    burst: int = 5  # IB: not 6 or more for one contract, exchange and whatToShow ...
    burst_window: float = 2.5  # ... within 2 s
    max_open: int = 45  # IB: 50 open at once
    bid_ask_weight: int = 2  # IB: BID_ASK counts twice
    backoff: float = 30.0  # after a 162 pacing violation from TWS, no start for this long ...
    backoff_max: float = 600.0  # ... doubling with each further one, up to this

    def __post_init__(self) -> None:
        if min(self.budget, self.burst, self.max_open) < self.bid_ask_weight or self.bid_ask_weight < 1:
            raise ValueError("budget, burst and max_open must each take one BID_ASK request")
        if min(self.budget_window, self.identical_window, self.burst_window) <= 0 or self.backoff < 0:
            raise ValueError("windows must be positive and backoff not negative")

    @classmethod
    def ib(cls) -> Limits:
        """IB's numbers exactly: for the theoretical minimum, never for talking to TWS."""
        return cls(budget=60, budget_window=600.0, identical_window=15.0, burst=5, burst_window=2.0, max_open=50)

    def scaled(self, factor: float) -> Limits:
        """Every time window times `factor` (a simulator or a test running IB's rules faster)."""
        return replace(
            self,
            budget_window=self.budget_window * factor,
            identical_window=self.identical_window * factor,
            burst_window=self.burst_window * factor,
            backoff=self.backoff * factor,
            backoff_max=self.backoff_max * factor,
        )


class _Entry:
    """One start in a window: when, and how many requests it counts as."""

    __slots__ = ("at", "weight")

    def __init__(self, at: float, weight: int) -> None:
        self.at = at
        self.weight = weight


class _Window:
    """At most `limit` counted starts in any `span` seconds."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.used = 0
        self.entries: list[_Entry] = []  # by time

    def purge(self, now: float) -> None:
        entries = self.entries
        gone = 0
        while gone < len(entries) and now >= entries[gone].at + self.span + _EPS:
            self.used -= entries[gone].weight
            gone += 1
        del entries[:gone]

    def free_at(self, weight: int, now: float) -> float:
        """The earliest time from `now` at which `weight` more fit."""
        self.purge(now)
        excess = self.used + weight - self.limit
        if excess <= 0:
            return now
        for entry in self.entries:
            excess -= entry.weight
            if excess <= 0:
                return entry.at + self.span + _EPS
        return math.inf

    def add(self, entry: _Entry) -> None:
        bisect.insort(self.entries, entry, key=lambda e: e.at)
        self.used += entry.weight

    def move(self, entry: _Entry, at: float) -> None:
        if entry in self.entries:  # identity: _Entry has no __eq__
            self.entries.remove(entry)
            entry.at = at
            bisect.insort(self.entries, entry, key=lambda e: e.at)


@dataclass(eq=False)
class Stamp:
    """What one start put in the windows, so that its time can move to the actual send."""

    key: Hashable
    group: Hashable
    weight: int
    budget: _Entry
    burst: _Entry


class Pacer:
    """Says when a historical request may start under IB's rules, and records starts and ends."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits = limits or Limits()
        self._budget = _Window(limits.budget, limits.budget_window)
        self._bursts: dict[Hashable, _Window] = {}  # (contract, exchange, whatToShow) -> its 2 s window
        self._identical: dict[Hashable, float] = {}  # request -> its last start
        self.open = 0  # counted requests in flight
        self.paused_until = -math.inf
        self.strikes = 0  # pacing violations from TWS since the last success

    def earliest(self, key: Hashable, group: Hashable, weight: int, now: float) -> float:
        """When this request may start (`now` if it may now; inf while too many are open)."""
        if self.open + weight > self.limits.max_open:
            return math.inf
        at = max(now, self.paused_until, self._budget.free_at(weight, now))
        last = self._identical.get(key)
        if last is not None:
            at = max(at, last + self.limits.identical_window + _EPS)
        burst = self._bursts.get(group)
        if burst is not None:
            at = max(at, burst.free_at(weight, now))
        return at

    def blocked(self, now: float) -> bool:
        """No request at all may start now (paused, the budget spent, or too many open)."""
        return now < self.paused_until or self.open + 1 > self.limits.max_open or self._budget.free_at(1, now) > now

    def start(self, key: Hashable, group: Hashable, weight: int, now: float) -> Stamp:
        limits = self.limits
        self._identical = {k: t for k, t in self._identical.items() if now < t + limits.identical_window + _EPS}
        for window in self._bursts.values():
            window.purge(now)
        self._bursts = {g: w for g, w in self._bursts.items() if w.entries}
        stamp = Stamp(key, group, weight, _Entry(now, weight), _Entry(now, weight))
        self._budget.add(stamp.budget)
        self._bursts.setdefault(group, _Window(limits.burst, limits.burst_window)).add(stamp.burst)
        self._identical[key] = now
        self.open += weight
        return stamp

    def restamp(self, stamp: Stamp, now: float) -> None:
        """The request reached the socket at `now`, later than it was started: count it from then."""
        if now <= stamp.budget.at:
            return
        self._budget.move(stamp.budget, now)
        burst = self._bursts.get(stamp.group)
        if burst is not None:
            burst.move(stamp.burst, now)
        if self._identical.get(stamp.key, math.inf) < now:
            self._identical[stamp.key] = now

    def finish(self, stamp: Stamp) -> None:
        """TWS answered or the request ended: it is no longer open (its start still counts)."""
        self.open = max(0, self.open - stamp.weight)

    def violated(self, now: float) -> float:
        """TWS said 162 pacing violation despite us: pause every start, longer each time; the pause's end."""
        self.strikes += 1
        pause = min(self.limits.backoff_max, self.limits.backoff * 2 ** (self.strikes - 1))
        self.paused_until = max(self.paused_until, now + pause)
        return self.paused_until

    def succeeded(self) -> None:
        self.strikes = 0

    def lost_all(self) -> None:
        """TWS went away: nothing is open any more (what was started still counts at IB)."""
        self.open = 0

    def used(self, now: float) -> int:
        """Requests counted in the current 10-minute window."""
        self._budget.purge(now)
        return self._budget.used

    def budget_eta(self, units_ahead: int, weight: int, now: float) -> float:
        """When a request with `units_ahead` counted requests queued before it can start, by the budget alone.

        The j-th unit yet to start goes when the unit `budget` places before it leaves the window,
        so the schedule repeats every window: F(j) = F(j mod budget) + (j div budget) * window.
        """
        window = self._budget
        window.purge(now)
        started = [e.at for e in window.entries for _ in range(e.weight)]
        limit, last = window.limit, units_ahead + weight - 1
        rounds, base = divmod(last, limit)
        first = now
        if base >= limit - len(started):
            first = max(now, started[len(started) + base - limit] + window.span + _EPS)
        return max(self.paused_until, first + rounds * (window.span + _EPS))


def minimum_seconds(count: int, weight: int = 1, limits: Limits | None = None) -> float:
    """The least time from the first to the last start of `count` distinct requests under the rules.

    Distinct requests for distinct contracts (so only the budget binds), answered at once: the
    figure a backfill through the bridge is measured against (add one answer's time for the end).
    50 instruments x 5 days of 1-min bars at 1 D per request (IB's step sizes) is 250 requests:
    minimum_seconds(250) with IB's numbers is 2400 s (60 at once, then 60 more every 10 minutes).
    """
    limits = limits or Limits.ib()
    if count <= 0:
        return 0.0
    return ((count * weight - 1) // limits.budget) * limits.budget_window

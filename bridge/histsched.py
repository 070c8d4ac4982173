"""The bridge's one historical scheduler (issue 12, point 2): every process's history requests
through one queue, one set of IB's pacing rules, one cache.

- Pacing: `histpacing.Pacer` says when a request may start (60 in 10 minutes, no identical one
  within 15 s, fewer than 6 per contract, exchange and whatToShow in 2 s, BID_ASK twice, 50 open),
  each with a margin; a 162 pacing violation from TWS pauses every start, longer each time.
- Fairness: a lane per asker, served round-robin, first in first out within each (the idea of
  bridge/fairness.py's Lanes, with weights and shared entries): one asker queueing 100 requests
  delays another's single request by at most one of them. Each lane and the whole queue are
  bounded; past a bound the ticket is refused, saying which.
- Once: an identical request already queued or in flight is joined (every asker gets the answer;
  a joiner also queues in its own lane, so it never waits behind another's backlog); a recent
  answer is served from `histcache.AnswerCache` under `histkey.fresh_until`'s rule: complete bars
  (a fixed end whose last bar closed a minute before the answer) are kept until evicted, anything
  reaching now (the forming bar) for at most 15 s and one bar.
- The wait, said up front: a ticket's position (requests that start before it) and estimated
  start, from the rules (the 61st request starts when the 1st leaves the 10-minute window);
  `long_wait` past a threshold, or a refusal if the asker set `max_wait`.

Sans-IO: the caller passes the clock, sends what `ready` returns, and says how each ended.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .histcache import AnswerCache, Cached
from .histkey import Freshness, HistoryKey, Outcome, fresh_until
from .histpacing import Limits, Pacer, Stamp
from .histqueue import SharedLanes


@dataclass(eq=False)
class Ticket:
    """One asker's request: its place in line, or its answer."""

    id: int
    key: HistoryKey
    asker: Hashable
    submitted_at: float
    state: str = "queued"  # queued, started, answered, refused, cancelled
    cached: bool = False  # answered from memory
    attached: bool = False  # joined an identical request already queued or in flight
    position: int = 0  # requests that start before this one
    eta: float = 0.0  # estimated start, on the caller's clock
    long_wait: bool = False
    refusal: str = ""  # asker_queue_full, queue_full, too_long
    message: str = ""
    outcome: Outcome | None = None
    answer: Any = None
    job: _Job | None = field(default=None, repr=False)


@dataclass(eq=False)
class Started:
    """A request to send TWS now; the bridge fills `req_id` and reports its end to `finished`."""

    key: HistoryKey
    at: float
    attempt: int
    job: _Job = field(repr=False)
    stamp: Stamp = field(repr=False)
    req_id: int | None = None

    @property
    def tickets(self) -> list[Ticket]:
        return self.job.tickets


@dataclass(eq=False)
class _Job:
    key: HistoryKey
    weight: int
    tickets: list[Ticket] = field(default_factory=list)
    started: Started | None = None
    attempts: int = 0


@dataclass
class Stats:
    """Gauges (now) and counters (since start) for metrics."""

    queued: int = 0
    in_flight: int = 0
    open: int = 0
    budget_used: int = 0
    paused_for: float = 0.0
    cache_entries: int = 0
    cache_bytes: int = 0
    submitted: int = 0
    cache_hits: int = 0
    attached: int = 0
    started: int = 0
    answered: int = 0
    refused: int = 0
    cancelled: int = 0
    retried: int = 0
    tws_pacing: int = 0  # 162 pacing violations from TWS (should stay 0)
    wait_seconds: float = 0.0  # summed over started tickets, submit to start
    long_waits: int = 0


class Scheduler:
    """Queue, rules and cache for every historical request the bridge sends TWS."""

    def __init__(
        self,
        limits: Limits | None = None,
        freshness: Freshness | None = None,
        cache: AnswerCache | None = None,
        asker_queue: int = 1000,
        queue_max: int = 10_000,
        long_wait: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        self.pacer = Pacer(limits)
        self.limits = self.pacer.limits
        self.freshness = freshness or Freshness()
        self.cache = cache if cache is not None else AnswerCache()
        self.asker_queue = asker_queue
        self.queue_max = queue_max
        self.long_wait = long_wait
        self.max_attempts = max_attempts
        self._jobs: dict[HistoryKey, _Job] = {}  # queued or in flight
        self._queue: SharedLanes[_Job] = SharedLanes()
        self._ids = itertools.count(1)
        self._stats = Stats()

    # -- asking

    def submit(self, key: HistoryKey, asker: Hashable, now: float, max_wait: float | None = None) -> Ticket:
        """Answer from memory, join an identical request, queue it, or refuse it; the ticket says which."""
        self._stats.submitted += 1
        ticket = Ticket(next(self._ids), key, asker, now, eta=now)
        hit = self.cache.get(key, now)
        if hit is not None:
            self._stats.cache_hits += 1
            ticket.cached = True
            return self._answer(ticket, hit.outcome, hit.answer)
        job = self._jobs.get(key)
        if job is not None and job.started is not None:
            self._stats.attached += 1
            ticket.attached, ticket.state, ticket.eta, ticket.job = True, "started", job.started.at, job
            job.tickets.append(ticket)
            return ticket
        if job is None or not self._queue.holds(asker, job):
            refusal = self._full(asker)
            if refusal:
                return self._refuse(ticket, refusal[0], refusal[1])
        if job is None:
            job = self._jobs[key] = _Job(key, self.limits.bid_ask_weight if key.bid_ask else 1)
        else:
            self._stats.attached += 1
            ticket.attached = True
        job.tickets.append(ticket)
        ticket.job = job
        if not self._queue.holds(asker, job):
            self._queue.push(asker, job)
        self.estimate(ticket, now)
        wait = ticket.eta - now
        if max_wait is not None and wait > max_wait:
            self._drop(ticket)
            return self._refuse(
                ticket, "too_long", f"IB's pacing would start this in {_span(wait)} (max {_span(max_wait)})"
            )
        if wait > self.long_wait:
            self._stats.long_waits += 1
            ticket.long_wait = True
            ticket.message = f"{ticket.position} requests ahead: IB's pacing starts this in about {_span(wait)}"
        return ticket

    def estimate(self, ticket: Ticket, now: float) -> Ticket:
        """Refresh a queued ticket's position and estimated start (for a progress message)."""
        job = ticket.job
        if ticket.state != "queued" or job is None or not self._queue.holds(ticket.asker, job):
            return ticket
        ahead = self._queue.ahead(ticket.asker, job)
        units = sum(j.weight for j in ahead)
        eta = self.pacer.budget_eta(units, job.weight, now)
        own = self._earliest(job, now)
        ticket.position = len(ahead)
        ticket.eta = max(eta, own) if math.isfinite(own) else eta
        return ticket

    def cancel(self, ticket: Ticket, now: float) -> Started | None:
        """The asker gave up. Returns the request in flight that nobody waits for any more (the
        bridge may cancel it at TWS and report `finished(..., Outcome("cancelled"))`, or let it fill the cache)."""
        job = ticket.job
        if job is None or ticket.state not in ("queued", "started"):
            return None
        self._stats.cancelled += 1
        self._drop(ticket)
        ticket.state = "cancelled"
        return job.started if job.started is not None and not job.tickets else None

    def forget(self, asker: Hashable, now: float) -> list[Started]:
        """Every ticket of an asker that went away; the orphaned requests in flight, as `cancel`."""
        mine = [t for job in list(self._jobs.values()) for t in job.tickets if t.asker == asker]
        return [s for s in (self.cancel(t, now) for t in mine) if s is not None]

    # -- sending

    def ready(self, now: float) -> list[Started]:
        """Requests to send TWS now, round-robin over askers, each allowed by every rule."""
        out: list[Started] = []
        while len(self._queue) and not self.pacer.blocked(now):
            for asker, job in self._queue.heads():
                if self._earliest(job, now) <= now:
                    out.append(self._start(asker, job, now))
                    break
            else:
                break
        return out

    def sent(self, started: Started, now: float) -> None:
        """The request reached the socket at `now` (after the message pacer): count it from then."""
        self.pacer.restamp(started.stamp, now)

    def next_wakeup(self, now: float) -> float | None:
        """When `ready` may next return something; None: nothing queued, or only a `finished` frees a slot."""
        soonest = min((self._earliest(job, now) for _, job in self._queue.heads()), default=math.inf)
        return soonest if math.isfinite(soonest) else None

    def finished(
        self,
        started: Started,
        outcome: Outcome,
        now: float,
        answer: Any = None,
        size: int = 0,
        wall: float | None = None,
    ) -> list[Ticket]:
        """TWS answered (or refused): the tickets to reply to, each with outcome and answer set.

        `size` is the answer's bytes for the cache's bound; `wall` the UTC epoch time now, for the
        freshness rule (keys' ends are epochs), when `now` is a monotonic clock. A pacing violation
        or a lost request is sent again (after a pause for pacing), up to `max_attempts`; its
        tickets keep waiting and nothing is returned.
        """
        job = started.job
        if job.started is not started:
            return []  # a request already requeued (the connection was lost)
        self.pacer.finish(started.stamp)
        job.started = None
        if outcome.kind == "pacing":
            self._stats.tws_pacing += 1
            self.pacer.violated(now)
        if outcome.retried and job.tickets and job.attempts < self.max_attempts:
            self._requeue(job)
            return []
        if outcome.kind == "ok":
            self.pacer.succeeded()
        del self._jobs[job.key]
        wall = now if wall is None else wall
        keep = fresh_until(job.key, wall, outcome.kind, self.freshness) - wall
        if keep > 0:
            self.cache.put(job.key, Cached(outcome, answer, size, now, now + keep))
        tickets, job.tickets = job.tickets, []
        for ticket in tickets:
            self._answer(ticket, outcome, answer)
        return tickets

    def lost(self, now: float) -> None:
        """The connection to TWS dropped: everything in flight goes to the front of the queue again."""
        self.pacer.lost_all()
        for job in list(self._jobs.values()):
            if job.started is not None:
                job.started = None
                if job.tickets:
                    self._requeue(job)
                else:
                    del self._jobs[job.key]

    def stats(self, now: float) -> Stats:
        s = self._stats
        s.queued = sum(1 for j in self._jobs.values() if j.started is None)
        s.in_flight = len(self._jobs) - s.queued
        s.open = self.pacer.open
        s.budget_used = self.pacer.used(now)
        s.paused_for = max(0.0, self.pacer.paused_until - now)
        s.cache_entries, s.cache_bytes = len(self.cache), self.cache.bytes
        return Stats(**vars(s))

    # -- inside

    def _earliest(self, job: _Job, now: float) -> float:
        return self.pacer.earliest(job.key, job.key.group, job.weight, now)

    def _start(self, asker: Hashable, job: _Job, now: float) -> Started:
        self._queue.serve(asker, job)
        job.attempts += 1
        stamp = self.pacer.start(job.key, job.key.group, job.weight, now)
        job.started = Started(job.key, now, job.attempts, job, stamp)
        self._stats.started += 1
        for ticket in job.tickets:
            ticket.state, ticket.position, ticket.eta = "started", 0, now
            self._stats.wait_seconds += now - ticket.submitted_at
        return job.started

    def _requeue(self, job: _Job) -> None:
        self._stats.retried += 1
        for asker in dict.fromkeys(t.asker for t in job.tickets):
            self._queue.push(asker, job, front=True)
        for ticket in job.tickets:
            ticket.state = "queued"

    def _drop(self, ticket: Ticket) -> None:
        """Take a ticket off its job; a queued job nobody waits for leaves the queue."""
        job = ticket.job
        assert job is not None
        job.tickets.remove(ticket)
        if not any(t.asker == ticket.asker for t in job.tickets):
            self._queue.remove(ticket.asker, job)
        if not job.tickets and job.started is None:
            self._queue.remove_everywhere(job)
            self._jobs.pop(job.key, None)

    def _full(self, asker: Hashable) -> tuple[str, str] | None:
        if self._queue.lane_length(asker) >= self.asker_queue:
            return "asker_queue_full", f"you have {self.asker_queue} history requests queued already; wait for some"
        if len(self._queue) >= self.queue_max:
            return "queue_full", f"the bridge has {self.queue_max} history requests queued; try again later"
        return None

    def _refuse(self, ticket: Ticket, refusal: str, message: str) -> Ticket:
        self._stats.refused += 1
        ticket.state, ticket.refusal, ticket.message, ticket.job = "refused", refusal, message, None
        return ticket

    def _answer(self, ticket: Ticket, outcome: Outcome, answer: Any) -> Ticket:
        self._stats.answered += 1
        ticket.state, ticket.outcome, ticket.answer = "answered", outcome, answer
        return ticket


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"

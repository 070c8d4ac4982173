"""Is TWS still there, and when to try again: the two clocks of an unattended connection.

A TWS that stops answering (a frozen process, a half-open socket after a network blip, a
frame that never completes) looks exactly like a quiet market unless someone asks. `Liveness`
says when to ask (a heartbeat request after `probe_after` seconds of silence), when the
silence means "stalled" and when it means "down". `Backoff` says how long to wait before the
next connect: quickly while TWS is expected back (its daily restart refuses connects for a
minute or two), doubling with jitter after failures that a retry at once would repeat.

Both are sans-IO: the caller passes the clock (seconds, any monotonic origin) and acts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    OK = "ok"
    PROBE = "probe"  # send a heartbeat request now
    STALLED = "stalled"  # silent too long: say so, keep the socket a little longer
    DOWN = "down"  # give up on this connection and reconnect


class Liveness:
    """Silence since the last byte from TWS, judged against three thresholds."""

    def __init__(self, probe_after: float, stalled_after: float, down_after: float, now: float) -> None:
        if not 0 < probe_after < stalled_after < down_after:
            raise ValueError("need 0 < probe_after < stalled_after < down_after")
        self.probe_after = probe_after
        self.stalled_after = stalled_after
        self.down_after = down_after
        self.last_heard = now
        self.stalled = False
        self._last_probe = now

    def heard(self, now: float) -> bool:
        """Bytes arrived at `now`; True if that ends a stall."""
        self.last_heard = now
        if self.stalled:
            self.stalled = False
            return True
        return False

    def check(self, now: float) -> Verdict:
        silent = now - self.last_heard
        if silent >= self.down_after:
            return Verdict.DOWN
        if silent >= self.stalled_after and not self.stalled:
            self.stalled = True
            return Verdict.STALLED
        if silent >= self.probe_after and now - self._last_probe >= self.probe_after:
            self._last_probe = now
            return Verdict.PROBE
        return Verdict.OK

    def silence(self, now: float) -> float:
        return max(0.0, now - self.last_heard)


class Failure(Enum):
    UNREACHABLE = "unreachable"  # no TCP connection (refused, timed out)
    BROKEN = "broken"  # connected, but the session failed: handshake, protocol, refused by TWS, stalled
    DROPPED = "dropped"  # a working session ended (TWS restart, network)


class Backoff:
    """The wait before the next connect attempt.

    - While TWS is expected back (within `expect_back` seconds of the last working session, or
      of the start) an unreachable TWS is polled every `fast` seconds: a restart costs no more.
    - Every other failure doubles the wait from `base` up to `cap`; a session that worked for
      `stable_after` seconds clears the count, so one drop after hours is retried at once, and
      a TWS that breaks every session a moment after it starts is not hammered.
    - Jitter: each wait is drawn from [d/2, d] (fast polls from [0.8 d, 1.2 d]), so bridges
      restarted together do not knock on TWS in step.
    """

    def __init__(
        self,
        now: float,
        fast: float = 1.0,
        base: float = 0.5,
        cap: float = 30.0,
        expect_back: float = 300.0,
        stable_after: float = 10.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.fast, self.base, self.cap = fast, base, cap
        self.expect_back = expect_back
        self.stable_after = stable_after
        self.rand = rand
        self.failures = 0
        self._last_up = now  # the start counts: TWS may be starting with us
        self._up_since: float | None = None

    def up(self, now: float) -> None:
        """A session is working (TWS sent nextValidId)."""
        self._up_since = now
        self._last_up = now

    def failed(self, now: float, how: Failure) -> float:
        """Seconds to wait before the next attempt after a failure of kind `how`."""
        if self._up_since is not None:
            if now - self._up_since >= self.stable_after:
                self.failures = 0
            self._last_up = now
            self._up_since = None
        if how is Failure.UNREACHABLE and now - self._last_up < self.expect_back:
            return self.fast * (0.8 + 0.4 * self.rand())
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        return delay * (0.5 + 0.5 * self.rand())

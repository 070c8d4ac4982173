"""Request pacing: TWS disconnects an API client that sends more than 50 messages a second
(error 100, "Max rate of messages per second has been exceeded"). Restoring 100 subscriptions
after a TWS restart would do exactly that, so messages beyond the budget wait their turn.

TWS counts messages as it *receives* them, in any sliding second. What we send in one second
can arrive bunched (the kernel, a busy TWS), so the budget has room to spare: at most 45
messages in any sliding 1.2 s, and never two closer than 20 ms. A message counts when it is
handed to the socket (tws.py writes only into an empty transport buffer), not when queued.

Sans-IO: the caller passes the clock, asks how long to wait, and says when it sent.
"""

from __future__ import annotations

from collections import deque

LIMIT = 45
WINDOW = 1.2
SPACING = 0.02
_EPS = 1e-6  # clock values are floats: a message leaves the window a hair late, never early


class Pacer:
    """Admits one message at a time: at most `limit` in any `window` seconds, `spacing` apart."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW, spacing: float = SPACING) -> None:
        if limit < 1 or window <= 0 or spacing < 0:
            raise ValueError("need limit >= 1, window > 0, spacing >= 0")
        self.limit = limit
        self.window = window
        self.spacing = spacing
        self._sent: deque[float] = deque()  # send times within the last window

    def wait(self, now: float) -> float:
        """Seconds until the next message may go (0: now)."""
        sent = self._sent
        while sent and now >= sent[0] + self.window + _EPS:
            sent.popleft()
        if not sent:
            return 0.0
        gap = sent[-1] + self.spacing + _EPS - now
        full = sent[0] + self.window + _EPS - now if len(sent) >= self.limit else 0.0
        return max(0.0, gap, full)

    def sent(self, now: float) -> None:
        """A message was handed to the socket at `now`."""
        self._sent.append(now)

    def clear(self) -> None:
        """A new connection: TWS counts per connection."""
        self._sent.clear()

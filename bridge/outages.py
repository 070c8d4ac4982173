"""What TWS's connection-state codes mean for the data, and which outages are open now.

TWS tells its clients about trouble in error messages with reqId -1: 1100 (TWS lost IB),
1101/1102 (IB is back, data lost or kept), 2103/2105/2157 (a data farm is broken) and their OK
counterparts, and 10197 per request (a competing live session takes the data). The bridge
turns them into state a consumer can act on (docs/bus.md, Outages); this module is the
bookkeeping, sans-IO: which causes make data stale right now, and what each code changes.
"""

from __future__ import annotations

from typing import NamedTuple

# Causes that make every stream stale while they last.
TWS_DOWN = "tws_down"
TWS_STALLED = "tws_stalled"
IB_CONNECTIVITY = "ib_connectivity"
MARKET_FARM = "market_farm"
COMPETING_SESSION = "competing_session"  # per stream, not connection-wide

FARM_KINDS = ("market", "historical", "secdef")
MAX_FARMS = 32  # farm names come from TWS's text; bound what we keep


class FarmChange(NamedTuple):
    kind: str  # market, historical, secdef
    name: str  # TWS's name for the farm: usfarm, ushmds, secdefnj, ...
    state: str  # broken, ok, inactive, connecting


_FARM_CODES = {
    2103: ("market", "broken"), 2104: ("market", "ok"), 2108: ("market", "inactive"), 2119: ("market", "connecting"),
    2105: ("historical", "broken"), 2106: ("historical", "ok"), 2107: ("historical", "inactive"),
    2157: ("secdef", "broken"), 2158: ("secdef", "ok"),
}  # fmt: skip


def farm_change(code: int, message: str) -> FarmChange | None:
    """The farm a 21xx notice is about ('...connection is broken:usfarm' names it after the colon)."""
    known = _FARM_CODES.get(code)
    if known is None:
        return None
    name = message.rpartition(":")[2].strip() if ":" in message else ""
    name = "".join(ch for ch in name[:32] if ch.isalnum() or ch in "._-") or known[0]
    return FarmChange(known[0], name, known[1])


class Outages:
    """The connection-wide causes open now; data is stale while any is."""

    def __init__(self) -> None:
        self._open: dict[str, str] = {}  # cause -> what TWS or the bridge said
        self.farms: dict[str, dict[str, str]] = {kind: {} for kind in FARM_KINDS}

    @property
    def stale(self) -> bool:
        return bool(self._open)

    @property
    def causes(self) -> list[str]:
        return list(self._open)

    def begin(self, cause: str, message: str) -> bool:
        """Open `cause`; True when data just became stale (nothing was open)."""
        was_fresh = not self._open
        self._open[cause] = message
        return was_fresh

    def end(self, cause: str) -> bool:
        """Close `cause`; True when data just became fresh (it was the last one open)."""
        if self._open.pop(cause, None) is None:
            return False
        return not self._open

    def end_all(self) -> bool:
        """A new TWS session: whatever the last one said no longer holds."""
        was_stale = bool(self._open)
        self._open.clear()
        for names in self.farms.values():
            names.clear()
        return was_stale

    def farm(self, change: FarmChange) -> tuple[bool, bool]:
        """Record a farm notice; (market data just went stale, market data just came back)."""
        names = self.farms[change.kind]
        if change.name in names or len(names) < MAX_FARMS:
            names[change.name] = change.state
        if change.kind != "market":
            return False, False
        broken = sorted(n for n, state in names.items() if state == "broken")
        if broken:
            return self.begin(MARKET_FARM, f"market data farm broken: {', '.join(broken)}"), False
        return False, self.end(MARKET_FARM)

    def farm_up(self, kind: str) -> bool:
        return not any(state == "broken" for state in self.farms[kind].values())

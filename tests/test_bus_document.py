"""docs/bus.md is the contract for consumers in any language: what the bridge publishes must be
exactly what the document's tables say, key for key, and every documented type must hold."""

from __future__ import annotations

import re
import time

from bridge import payload as pl
from bridge.book import Line, LineKey
from bridge.protocol import Contract
from bridge.protocol import events as ev
from tests.harness import ROOT, Bridge, recv

DOC = (ROOT / "docs/bus.md").read_text()
_ROW = re.compile(r"^\| `(\w+)` \|([^|]*)\|", re.MULTILINE)


def _table(after: str) -> dict[str, set[str]]:
    """First column -> the backticked names in the second, for the table after `after`."""
    body = DOC[DOC.index(after) :]
    body = body[: body.index("\n\n", body.index("|---"))]
    return {name: set(re.findall(r"`(\w+)`", keys)) for name, keys in _ROW.findall(body)}


COMMON = set(_table("Every payload has these keys"))
DATA_EVENTS = _table("Event-specific keys")
STATE_EVENTS = _table("On the `state` topic")
TYPES = {"int": int, "str": str, "int or nil": (int, type(None))}
COMMON_TYPES = {
    k: TYPES[t.strip()] for k, t in re.findall(r"^\| `(\w+)` \| ([^|]+) \|", DOC, re.MULTILINE) if k in COMMON
}


def test_the_document_tables_parse() -> None:
    assert {"v", "kind", "event", "instrument", "seq", "recv_ns", "tws_time"} == COMMON
    assert {"tick_price", "tick_size", "trade", "bar", "depth", "error"} <= set(DATA_EVENTS)
    assert set(STATE_EVENTS) == {"connection", "subscription", "notice", "ib_connection", "farm"}


def _line(kind: str) -> Line:
    key = LineKey("AAPL.STK.SMART.USD", kind)
    return Line(key, Contract("AAPL", "STK", "SMART", "USD"), 1, key.topic.encode())


EXAMPLES: list[tuple[str, ev.Event]] = [
    ("quote", ev.TickPrice(1, 1, 10.5, 3.0, 0)),
    ("quote", ev.TickSize(1, 8, 100.0)),
    ("quote", ev.TickString(1, 45, "1764079200")),
    ("quote", ev.TickGeneric(1, 49, 0.0)),
    ("quote", ev.TickOptionComputation(1, 13, 0, 0.2, 0.5, 1.0, None, 0.1, 0.2, -0.1, 100.0)),
    ("quote", ev.MarketDataTypeChanged(1, 3)),
    ("quote", ev.TickSnapshotEnd(1)),
    ("trades", ev.TickByTickLast(1, 1, 1764079200, 10.5, 3.0, 0, "NASDAQ", "")),
    ("bidask", ev.TickByTickBidAsk(1, 1764079200, 10.4, 10.6, 1.0, 2.0, 0)),
    ("midpoint", ev.TickByTickMidPoint(1, 1764079200, 10.5)),
    ("bars", ev.RealTimeBar(1, 1764079200, 1.0, 2.0, 0.5, 1.5, 100.0, 1.2, 7)),
    ("depth", ev.MarketDepth(1, 0, 0, 1, 10.5, 3.0)),
    ("depth", ev.MarketDepthL2(1, 0, "ARCA", 0, 1, 10.5, 3.0, True)),
]


def test_every_payload_the_bridge_builds_has_exactly_the_documented_keys() -> None:
    built = [pl.BUILDERS[type(event)](event, _line(kind), time.time_ns()) for kind, event in EXAMPLES]
    built.append(pl.error_payload(_line("quote"), 354, "not subscribed", "hint", time.time_ns()))
    for marker in ("stale", "resumed"):
        built.append(pl.marker_payload(_line("quote"), marker, "tws_down", "TWS restarted", None, time.time_ns()))
    built.append(pl.view_payload(_line("quote"), 1, {"bid": 10.5}, 3, time.time_ns()))
    for complete in (False, True):
        row = [1764079200, 1.0, 2.0, 0.5, 1.5, 100.0, None, 7]
        built.append(pl.history_bar_payload(_line("hbars"), complete, row, time.time_ns()))
    assert {p["event"] for p in built} == set(DATA_EVENTS)  # every documented event, nothing more
    for p in built:
        assert set(p) == COMMON | DATA_EVENTS[str(p["event"])], p["event"]
        for key, kind in COMMON_TYPES.items():
            assert isinstance(p[key], kind), (p["event"], key)


def test_what_flows_through_the_running_bridge_matches_the_document(bridge: Bridge) -> None:
    sub = bridge.subscriber("")
    time.sleep(0.2)
    for kind in ("quote", "trades", "bidask", "midpoint", "bars", "depth"):
        assert bridge.request({"op": "subscribe", "instrument": "AAPL", "kind": kind})["ok"]
    assert bridge.request({"op": "subscribe", "instrument": "AAPL", "kind": "hbars", "bar": "5 secs"})["ok"]
    wanted = {"tick_price", "trade", "bid_ask", "midpoint", "bar", "depth", "bar_close", "bar_update"}
    seen: set[str] = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not wanted <= seen:
        topic, p = recv(sub)
        if topic == "state":
            documented = STATE_EVENTS[p["event"]]
            assert documented <= set(p) <= COMMON | documented | {"code", "message", "hint", "epoch"}, p
            assert isinstance(p["epoch"], str) and p["epoch"]
        else:
            assert set(p) == COMMON | DATA_EVENTS[p["event"]], p
            assert topic.startswith(p["kind"] + "/" + p["instrument"])
        seen.add(p["event"])
    assert {"tick_price", "tick_size", "tick_string", "trade", "bid_ask", "midpoint", "bar", "depth"} <= seen
    assert {"bar_close", "bar_update"} <= seen

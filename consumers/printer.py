"""Print live market data from the bridge, one readable line per update.

    python -m consumers.printer BTC.CRYPTO AAPL --count 20

Each line shows the instrument's current bid/ask/last (kept from tick_price/tick_size events, seeded
from the subscribe reply's `latest`), what changed, and how old the tick is.

TWS sends bid and ask as separate ticks, so for the moment between the two a quote can show a bid
above its ask: the printer marks such a line `crossed` (and says why, once), or with --consistent
prints quotes only when bid <= ask.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from consumers import cli
from consumers.client import Message

PROG = "printer"
QUOTE_FIELDS = ("bid", "bid_size", "ask", "ask_size", "last", "last_size")
CROSSED_NOTE = (
    "note: a bid above the ask is transient: TWS sends bid and ask as separate ticks, so one side can be "
    "new and the other not yet; the next tick settles it (--consistent prints quotes only when bid <= ask)"
)


def fmt(x: Any) -> str:
    """Numbers as short as they go without losing digits; nil as '-'."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.10g}"
    return str(x)


def clock(ns: int | None = None) -> str:
    """Local wall-clock time with milliseconds."""
    t = datetime.fromtimestamp((time.time_ns() if ns is None else ns) / 1e9)
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def base_tick(name: str) -> str:
    """delayed_bid -> bid: delayed ticks update the same picture."""
    return name.removeprefix("delayed_")


class QuoteBook:
    """Current bid/ask/last with sizes for every quote topic, seeded from `latest` and updated per tick."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self.noted_crossed = False  # the crossed-quote note is printed once per run
        self.mine: set[str] | None = None  # our topics: other consumers' subscription changes are not news here
        self.refused: set[str] = set()  # topics whose refusal was printed from their `error` event
        self.said_code: int | None = None  # code of the farm/IB-link event just printed; its `notice` follows

    def repeats(self, state: dict[str, Any]) -> bool:
        """The `notice` TWS's words also come in, right after the farm or IB-link event that said them."""
        event, code = state.get("event"), state.get("code")
        said, self.said_code = self.said_code, code if event in ("farm", "ib_connection") else None
        return event == "notice" and code is not None and code == said

    def shows(self, state: dict[str, Any]) -> bool:
        """Whether a subscription state change is worth a line: ours, and not a refusal already printed."""
        topic = state.get("topic")
        if self.mine is not None and topic not in self.mine:
            return False
        return not (state.get("state") == "failed" and topic in self.refused)

    def seed(self, topic: str, latest: dict[str, Any]) -> None:
        quote = self.state.setdefault(topic, {})
        for name, value in latest.items():
            if base_tick(name) in QUOTE_FIELDS:
                quote[base_tick(name)] = value

    def update(self, topic: str, payload: dict[str, Any]) -> None:
        event, tick = payload.get("event"), base_tick(str(payload.get("tick", "")))
        quote = self.state.setdefault(topic, {})
        if event == "tick_price" and tick in ("bid", "ask", "last"):
            quote[tick] = payload.get("price")
            if payload.get("size") is not None:
                quote[f"{tick}_size"] = payload["size"]
        elif event == "tick_size" and tick in QUOTE_FIELDS:
            quote[tick] = payload.get("size")
        elif event == "latest" and isinstance(payload.get("latest"), dict):  # a conflated view (--conflate)
            self.seed(topic, payload["latest"])

    def crossed(self, topic: str) -> bool:
        """Bid above ask: one side has moved and the other's tick has not come yet."""
        q = self.state.get(topic, {})
        bid, ask = q.get("bid"), q.get("ask")
        return isinstance(bid, int | float) and isinstance(ask, int | float) and 0 < ask < bid

    def line(self, topic: str) -> str:
        q = self.state.get(topic, {})
        return "  ".join(f"{side} {fmt(q.get(side))} x {fmt(q.get(side + '_size'))}" for side in ("bid", "ask", "last"))


def age(payload: dict[str, Any]) -> str:
    """How old the tick is: since the bridge read it, and since TWS stamped it where TWS did."""
    parts = []
    if isinstance(payload.get("recv_ns"), int):
        parts.append(f"age {(time.time_ns() - payload['recv_ns']) / 1e6:.1f}ms")
    if isinstance(payload.get("tws_time"), int):
        parts.append(f"tws {time.time() - payload['tws_time']:.1f}s ago")
    return "  ".join(parts)


def describe(payload: dict[str, Any]) -> str:
    """What this one event says, for any data kind."""
    p, event = payload, payload.get("event")
    if event in ("tick_price", "tick_size"):
        value = p.get("price") if event == "tick_price" else p.get("size")
        return f"[{p.get('tick')} {fmt(value)}]"
    if event in ("tick_string", "tick_generic"):
        return f"[{p.get('tick')} {fmt(p.get('value'))}]"
    if event == "tick_option":
        return f"[{p.get('tick')} iv {fmt(p.get('implied_vol'))} delta {fmt(p.get('delta'))}]"
    if event == "market_data_type":
        return f"[market data type {p.get('market_data_type')}]"
    if event == "trade":
        return f"trade {fmt(p.get('price'))} x {fmt(p.get('size'))} on {p.get('exchange') or '-'}"
    if event == "bid_ask":
        bid, ask = f"{fmt(p.get('bid'))} x {fmt(p.get('bid_size'))}", f"{fmt(p.get('ask'))} x {fmt(p.get('ask_size'))}"
        return f"bid {bid}  ask {ask}"
    if event == "midpoint":
        return f"mid {fmt(p.get('mid'))}"
    if event == "bar":
        ohlc = " ".join(f"{k[0].upper()} {fmt(p.get(k))}" for k in ("open", "high", "low", "close"))
        return f"bar {ohlc} V {fmt(p.get('volume'))}"
    if event == "depth":
        side = {0: "ask", 1: "bid"}.get(p.get("side"), "?")
        op = {0: "insert", 1: "update", 2: "delete"}.get(p.get("operation"), "?")
        return f"depth {side} #{p.get('position')} {op} {fmt(p.get('price'))} x {fmt(p.get('size'))}"
    if event == "error":
        return f"error {p.get('code')}: {p.get('message')}" + (f" ({p['hint']})" if p.get("hint") else "")
    if event == "snapshot_end":
        return "[snapshot end]"
    if event in ("stale", "resumed"):
        code = f" {p['code']}" if p.get("code") is not None else ""
        return f"{event} ({p.get('reason')}{code}): {p.get('message') or '-'}"
    if event == "latest":
        return f"[latest of {p['folded']} updates]" if isinstance(p.get("folded"), int) else "[latest]"
    return f"[{event}]"


def _tws_said(p: dict[str, Any]) -> str:
    """TWS's code and words, with our hint where there is one."""
    code = f"{p['code']}: " if p.get("code") is not None else ""
    hint = f" ({p['hint']})" if p.get("hint") else ""
    return f"{code}{p.get('message') or '-'}{hint}"


def describe_state(p: dict[str, Any]) -> str:
    """A connection or subscription change, in one line."""
    if p.get("event") == "connection":
        extra = f" (server version {p['server_version']})" if p.get("server_version") else ""
        msg = f": {p['message']}" if p.get("message") else ""
        return f"state: TWS connection {p.get('state')}{extra}{msg}"
    if p.get("event") == "subscription":
        why = f" (code {p.get('code')}: {p.get('message')})" if p.get("state") == "failed" else ""
        return f"state: subscription {p.get('topic')} {p.get('state')}{why}, consumers {fmt(p.get('consumers'))}"
    if p.get("event") == "error":
        return f"state: {describe(p)}"
    if p.get("event") == "notice":
        return f"state: TWS notice {_tws_said(p)}"
    if p.get("event") == "ib_connection":
        lost = {True: "; TWS lost the data, the bridge requests every line again", False: "; data kept"}
        return f"state: TWS link to IB {p.get('state')}{lost.get(p.get('data_lost'), '')} ({_tws_said(p)})"
    if p.get("event") == "farm":
        return f"state: {p.get('farm')} data farm {p.get('name')} {p.get('state')} ({_tws_said(p)})"
    meta = ("v", "kind", "event", "seq", "recv_ns", "tws_time", "epoch", "instrument")
    rest = " ".join(f"{k}={fmt(v)}" for k, v in sorted(p.items()) if k not in meta and v is not None)
    return f"state: {p.get('event')} {rest}".rstrip()


def show_latest(book: QuoteBook, topic: str, instrument: str, latest: dict[str, Any]) -> str:
    """The subscribe reply's picture, so there is something to see before the first tick."""
    if topic.startswith("quote/"):
        book.seed(topic, latest)
        rest = {k: v for k, v in latest.items() if base_tick(k) not in QUOTE_FIELDS}
        extra = "  " + " ".join(f"{k}={fmt(v)}" for k, v in sorted(rest.items())) if rest else ""
        return f"{clock()} {instrument} latest  {book.line(topic)}{extra}"
    fields = " ".join(f"{k}={fmt(v)}" for k, v in sorted(latest.items())) or "(nothing yet)"
    return f"{clock()} {instrument} latest  {fields}"


def print_message(book: QuoteBook, msg: Message, out: Any = sys.stdout, consistent: bool = False) -> bool:
    """Print one message (and any gap before it); True if it printed a data update rather than state.

    A crossed quote (bid above ask, between the two sides' ticks) is marked and explained once, or
    with `consistent` not printed at all.
    """
    topic, payload = msg
    if msg.lost:
        print(f"{clock()} gap: {msg.lost} messages lost on {topic}", file=out, flush=True)
    if topic == "state" or payload.get("kind") == "state":
        if book.repeats(payload):
            return False
        if payload.get("event") != "subscription" or book.shows(payload):
            print(f"{clock()} {describe_state(payload)}", file=out, flush=True)
        return False
    instrument = payload.get("instrument") or topic
    if payload.get("event") == "error":
        book.refused.add(topic)
    if topic.startswith("quote/") and payload.get("event") != "error":
        book.update(topic, payload)
        text = f"{book.line(topic)}  {describe(payload)}"
        if book.crossed(topic):
            if consistent:
                return False
            if not book.noted_crossed:
                book.noted_crossed = True
                print(f"{clock()} {CROSSED_NOTE}", file=out, flush=True)
            text += "  crossed"
    else:
        text = describe(payload)
    print(f"{clock()} {instrument}  {text}  {age(payload)}".rstrip(), file=out, flush=True)
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m consumers.printer",
        description="Print market data from tws-bridge, one line per update.",
        epilog="Instruments in short form: AAPL, BTC.CRYPTO, EUR.CASH (or EUR.USD), ES.FUT.CME.USD.202612 "
        "(consumers/README.md); python -m bridge.simulator --list shows every instrument the simulator knows.",
    )
    p.add_argument("instruments", nargs="+", metavar="INSTRUMENT")
    p.add_argument(
        "--consistent",
        action="store_true",
        help="print a quote only when bid <= ask (bid and ask come as separate ticks, so between the two "
        "a quote can be crossed for a moment)",
    )
    cli.add_subscription_arguments(p)
    cli.add_stop_arguments(p)
    cli.add_bus_arguments(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    book = QuoteBook()
    deadline = cli.Deadline(args.seconds)
    with cli.client_from_args(args) as bus:
        bus.listen("state")
        subs = cli.subscribe_each(bus, args, PROG)  # a refusal is said here, once, on stderr
        book.mine = {sub.topic for sub in subs}
        for sub in subs:
            print(show_latest(book, sub.topic, sub.instrument, sub.latest), flush=True)
        updates = 0
        while not bus.stopped and not deadline.passed() and (args.count is None or updates < args.count):
            msg = bus.recv(deadline.remaining())
            if msg is not None and print_message(book, msg, consistent=args.consistent):
                updates += 1
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))

"""Build OHLCV bars from tick-by-tick trades and print each completed bar.

    python -m consumers.bars AAPL MSFT                    # 1-minute bars
    python -m consumers.bars BTC.CRYPTO --seconds-per-bar 5

Source: the `trades` kind (tick-by-tick Last; `--kind alltrades` for AllLast), one `trade` event per
print with its own price and size. Quote `last`/`last_size` ticks are not used: TWS samples them and
may repeat a size without a new trade, so volume built from them is wrong.

Time: a trade goes into the bar its `recv_ns` (when the bridge read it) falls in, not `tws_time`:
recv_ns has nanosecond resolution and comes from this machine's clock, so a bar can be closed on a
timer (`--grace` seconds after its end) even when no later trade arrives. Intervals without trades
print no bar.

Backfill: the first bars come from the bridge's `history` (the last `--backfill` bars, each marked
`history`), up to the start of the bar in which it subscribed; live bars go on from there, so there
is no gap and no bar twice. That live bar lacks the trades before the subscription and is marked
`partial`; when no trade came in it after the subscription, it comes from history once complete.
Trades are asked for before history, so none is missed while history is fetched (they wait in the
SUB socket's queue).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumers import cli
from consumers.client import BridgeError, BusClient, Subscription
from consumers.history_args import bar_for_seconds
from consumers.printer import clock, describe_state, fmt

PROG = "bars"
PARTIAL = "partial (began before the subscription)"


@dataclass
class Bar:
    """One instrument's trades in [start, start + seconds)."""

    instrument: str
    start: int  # Unix seconds
    seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0
    notional: float = 0.0
    count: int = 0
    note: str = ""  # "history", or PARTIAL for a live bar missing its first trades

    def add(self, price: float, size: float) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size
        self.notional += price * size
        self.count += 1

    @property
    def vwap(self) -> float | None:
        return self.notional / self.volume if self.volume else None

    def line(self) -> str:
        start = datetime.fromtimestamp(self.start).strftime("%H:%M:%S")
        vwap = "-" if self.vwap is None else f"{self.vwap:.6g}"
        return (
            f"{self.instrument} {start} {self.seconds}s "
            f"O={fmt(self.open)} H={fmt(self.high)} L={fmt(self.low)} C={fmt(self.close)} "
            f"V={fmt(self.volume)} trades={self.count} vwap={vwap}" + (f" {self.note}" if self.note else "")
        )


class BarBuilder:
    """Open bar per instrument; a bar completes when a later trade arrives or its time plus grace has passed."""

    def __init__(self, seconds: int, grace: float = 1.0) -> None:
        self.seconds = seconds
        self.grace_ns = int(grace * 1e9)
        self.open: dict[str, Bar] = {}
        self.floor: dict[str, int] = {}  # live bars start here: earlier ones came from history
        self.subscribed_ns: dict[str, int] = {}
        self.unfilled: dict[str, int] = {}  # the subscription's bar, while no live trade came in it

    def join(self, instrument: str, subscribed_ns: int, history_end: int | None = None) -> None:
        """Live bars begin at `history_end` (a bar boundary), or at the first trade without history;
        one that began before `subscribed_ns` lacks the trades before it and is marked partial."""
        self.subscribed_ns[instrument] = subscribed_ns
        if history_end is not None:
            self.floor[instrument] = self.unfilled[instrument] = history_end

    def add(self, instrument: str, t_ns: int, price: float, size: float) -> list[Bar]:
        """Take one trade; returns the bar it completed, if any. A trade for an already printed bar is dropped."""
        start = t_ns // 1_000_000_000 // self.seconds * self.seconds
        done: list[Bar] = []
        bar = self.open.get(instrument)
        if start < self.floor.get(instrument, start):
            return done  # its bar came from history
        if bar is not None and start < bar.start:
            print(f"{PROG}: late trade for {instrument} ignored ({fmt(price)} x {fmt(size)})", file=sys.stderr)
            return done
        if bar is not None and start > bar.start:
            done.append(self.open.pop(instrument))
            bar = None
        if bar is None:
            bar = self.open[instrument] = Bar(instrument, start, self.seconds, price, price, price, price)
            if self.unfilled.get(instrument) == start:
                del self.unfilled[instrument]  # printed live, marked partial
            if start * 1_000_000_000 < self.subscribed_ns.get(instrument, 0):
                bar.note = PARTIAL
        bar.add(price, size)
        return done

    def due(self, now_ns: int) -> list[Bar]:
        """Bars whose interval ended more than `grace` ago."""
        done = [b for b in self.open.values() if now_ns >= (b.start + b.seconds) * 1_000_000_000 + self.grace_ns]
        for b in done:
            del self.open[b.instrument]
        return done

    def fills_due(self, now_ns: int) -> list[tuple[str, int]]:
        """(instrument, start) of subscription bars that ended `grace` ago without a live trade in them:
        the trades before the subscription are in no bar yet, so these come from history."""
        due = [(i, start) for i, start in self.unfilled.items() if now_ns >= self._due_ns(start)]
        for instrument, _ in due:
            del self.unfilled[instrument]
        return due

    def next_due(self, now_ns: int) -> float | None:
        """Seconds until the next bar (or fill) is due, None if none is waiting."""
        ends = [self._due_ns(b.start) for b in self.open.values()] + [self._due_ns(s) for s in self.unfilled.values()]
        if not ends:
            return None
        return max(0.0, (min(ends) - now_ns) / 1e9)

    def _due_ns(self, start: int) -> int:
        return (start + self.seconds) * 1_000_000_000 + self.grace_ns


def trade_of(payload: dict[str, Any]) -> tuple[float, float] | None:
    """(price, size) of a trade event, None for anything else."""
    if payload.get("event") != "trade":
        return None
    price, size = payload.get("price"), payload.get("size")
    if not isinstance(price, int | float) or not isinstance(size, int | float):
        return None
    return price, size


def history_bars(table_rows: list[list[Any]], instrument: str, seconds: int, end: int) -> list[Bar]:
    """The history's rows as bars, those complete by `end` only."""
    bars = []
    for start, open_, high, low, close, volume, wap, count, *_ in table_rows:
        if start + seconds <= end:
            notional = wap * volume if wap is not None and volume else 0.0
            bars.append(Bar(instrument, int(start), seconds, open_, high, low, close, volume or 0, notional, count or 0,
                            "history"))  # fmt: skip
    return bars


def backfill(
    bus: BusClient, sub: Subscription, args: argparse.Namespace, end: int, bars: int | None = None
) -> list[Bar] | None:
    """The last `bars` (default `--backfill`) bars up to `end` from the bridge's history; None when it
    has none to give."""
    seconds = args.seconds_per_bar
    count = args.backfill if bars is None else bars
    bar = bar_for_seconds(seconds)
    if bar is None or args.delayed:
        why = "delayed trades lag history" if args.delayed else f"IB has no {seconds}-second bars"
        print(f"{PROG}: no backfill for {sub.instrument}: {why}", file=sys.stderr, flush=True)
        return None
    try:
        table = bus.history(sub.requested or sub.instrument, bar, start=end - count * seconds, end=end,
                            what="TRADES", rth=False)  # fmt: skip
    except BridgeError as exc:
        if exc.code in ("stopped", "timeout"):
            raise
        print(f"{PROG}: no backfill for {sub.instrument}: {exc.error} [{exc.code}]", file=sys.stderr, flush=True)
        return None
    if table.no_data:
        print(f"{PROG}: no history for {sub.instrument}: {table.no_data}", file=sys.stderr, flush=True)
    return history_bars(table.rows, sub.instrument, seconds, end)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m consumers.bars",
        description="Print OHLCV bars built from tick-by-tick trades.",
    )
    p.add_argument("instruments", nargs="+", metavar="INSTRUMENT")
    p.add_argument("--seconds-per-bar", type=int, default=60, help="bar length (default %(default)s)")
    p.add_argument(
        "--grace", type=cli.positive_float, default=1.0, help="wait this long after a bar ends for late trades"
    )
    p.add_argument("--kind", default="trades", choices=("trades", "alltrades"), help="trade stream (%(default)s)")
    p.add_argument("--delayed", action="store_true", help="ask for delayed market data")
    p.add_argument("--backfill", type=cli.positive_int, default=30, metavar="BARS",
                   help="start with this many complete bars from the bridge's history (%(default)s)")  # fmt: skip
    p.add_argument("--no-backfill", dest="backfill", action="store_const", const=0, help="live bars only")
    cli.add_stop_arguments(p, "bars")
    cli.add_bus_arguments(p)
    args = p.parse_args(argv)
    args.generic_ticks = ""
    if args.seconds_per_bar < 1:
        p.error("--seconds-per-bar must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    builder = BarBuilder(args.seconds_per_bar, args.grace)
    deadline = cli.Deadline(args.seconds)
    printed = 0

    def emit(bars: list[Bar]) -> None:
        nonlocal printed
        for bar in bars:
            if args.count is not None and printed >= args.count:
                return
            print(bar.line(), flush=True)
            printed += 1

    with cli.client_from_args(args) as bus:
        bus.listen("state")
        subs = cli.subscribe_each(bus, args, PROG)
        by_instrument = {sub.instrument: sub for sub in subs}
        subscribed_ns = time.time_ns()
        end = subscribed_ns // 1_000_000_000 // args.seconds_per_bar * args.seconds_per_bar
        for sub in subs:
            print(f"building {args.seconds_per_bar}s bars from {sub.topic}", flush=True)
            history = backfill(bus, sub, args, end) if args.backfill else None
            if history is not None:
                emit(history)
            builder.join(sub.instrument, subscribed_ns, None if history is None else end)
        while not bus.stopped and not deadline.passed() and (args.count is None or printed < args.count):
            waits = [w for w in (builder.next_due(time.time_ns()), deadline.remaining()) if w is not None]
            msg = bus.recv(min(waits) if waits else None)
            for instrument, start in builder.fills_due(time.time_ns()):  # before any later bar
                emit(backfill(bus, by_instrument[instrument], args, start + args.seconds_per_bar, bars=1) or [])
            if msg is not None:
                topic, payload = msg
                if msg.lost:
                    print(f"{clock()} gap: {msg.lost} messages lost on {topic} (bars may be incomplete)", flush=True)
                trade = trade_of(payload)
                if trade is not None and isinstance(payload.get("recv_ns"), int):
                    emit(builder.add(payload.get("instrument") or topic, payload["recv_ns"], *trade))
                elif topic == "state":
                    print(f"{clock()} {describe_state(payload)}", flush=True)
            emit(builder.due(time.time_ns()))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))

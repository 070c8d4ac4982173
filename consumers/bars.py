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
from consumers.printer import clock, describe_state, fmt

PROG = "bars"


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
            f"V={fmt(self.volume)} trades={self.count} vwap={vwap}"
        )


class BarBuilder:
    """Open bar per instrument; a bar completes when a later trade arrives or its time plus grace has passed."""

    def __init__(self, seconds: int, grace: float = 1.0) -> None:
        self.seconds = seconds
        self.grace_ns = int(grace * 1e9)
        self.open: dict[str, Bar] = {}

    def add(self, instrument: str, t_ns: int, price: float, size: float) -> list[Bar]:
        """Take one trade; returns the bar it completed, if any. A trade for an already printed bar is dropped."""
        start = t_ns // 1_000_000_000 // self.seconds * self.seconds
        done: list[Bar] = []
        bar = self.open.get(instrument)
        if bar is not None and start < bar.start:
            print(f"{PROG}: late trade for {instrument} ignored ({fmt(price)} x {fmt(size)})", file=sys.stderr)
            return done
        if bar is not None and start > bar.start:
            done.append(self.open.pop(instrument))
            bar = None
        if bar is None:
            self.open[instrument] = Bar(instrument, start, self.seconds, price, price, price, price)
            bar = self.open[instrument]
        bar.add(price, size)
        return done

    def due(self, now_ns: int) -> list[Bar]:
        """Bars whose interval ended more than `grace` ago."""
        done = [b for b in self.open.values() if now_ns >= (b.start + b.seconds) * 1_000_000_000 + self.grace_ns]
        for b in done:
            del self.open[b.instrument]
        return done

    def next_due(self, now_ns: int) -> float | None:
        """Seconds until the next bar is due, None if no bar is open."""
        if not self.open:
            return None
        end = min((b.start + b.seconds) * 1_000_000_000 + self.grace_ns for b in self.open.values())
        return max(0.0, (end - now_ns) / 1e9)


def trade_of(payload: dict[str, Any]) -> tuple[float, float] | None:
    """(price, size) of a trade event, None for anything else."""
    if payload.get("event") != "trade":
        return None
    price, size = payload.get("price"), payload.get("size")
    if not isinstance(price, int | float) or not isinstance(size, int | float):
        return None
    return price, size


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
        for sub in cli.subscribe_each(bus, args, PROG):
            print(f"building {args.seconds_per_bar}s bars from {sub.topic}", flush=True)
        while not bus.stopped and not deadline.passed() and (args.count is None or printed < args.count):
            waits = [w for w in (builder.next_due(time.time_ns()), deadline.remaining()) if w is not None]
            msg = bus.recv(min(waits) if waits else None)
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

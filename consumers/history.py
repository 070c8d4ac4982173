"""Historical bars from the bridge to CSV, for notebooks and shell scripts.

    python -m consumers.history AAPL --bar 1min --days 5 --csv aapl.csv
    python -m consumers.history EUR.USD --bar 1h --start 2026-11-01 --end 2026-12-01 --what MIDPOINT > eur.csv

One request to the bridge, which keeps IB's historical pacing for every program on the machine: a
long span may wait its turn there, and the wait (place in line, estimated start) is shown on stderr.
The CSV has the bridge's columns (time, open, high, low, close, volume, wap, count); `time` is the
bar's start in UTC epoch seconds, and an absent value is an empty cell.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from consumers import cli
from consumers.history_args import bar_size, when
from consumers.history_requests import Table

PROG = "history"
WHAT = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY")  # fmt: skip
DAY = 86400


def _flag_type(parse: Any, name: str) -> Any:
    """An argparse type from a parser that raises ValueError with words for the user."""

    def read(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = name
    return read


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m consumers.history",
        description="Write an instrument's historical bars, from the bridge, as CSV.",
    )
    p.add_argument("instrument", metavar="INSTRUMENT", help="short form (AAPL, EUR.USD, ES.FUT.CME.USD.202612)")
    p.add_argument("--bar", type=_flag_type(bar_size, "bar size"), default="1 min",
                   help="bar size: 1s 5s ... 30s, 1min 2min ... 30min, 1h 2h 3h 4h 8h, 1d, 1w, 1mo, "
                        "or IB's '1 min' (default 1min)")  # fmt: skip
    span = p.add_mutually_exclusive_group()
    span.add_argument("--days", type=cli.positive_float, help="the span: this many days up to --end or now "
                      "(default 1)")  # fmt: skip
    span.add_argument("--start", type=_flag_type(when, "time"), help="the span from this time: epoch seconds or "
                      "an ISO date or time (UTC unless it names a zone)")  # fmt: skip
    span.add_argument("--duration", help="IB's duration instead, one TWS request: '2 D', '1 W', '3600 S'")
    p.add_argument("--end", type=_flag_type(when, "time"), help="the span's end (default now)")
    p.add_argument("--what", type=str.upper, choices=WHAT, default="TRADES", help="what to show (%(default)s)")
    hours = p.add_mutually_exclusive_group()
    hours.add_argument("--rth", dest="rth", action="store_true", default=True,
                       help="regular trading hours only (the default)")  # fmt: skip
    hours.add_argument("--all-hours", dest="rth", action="store_false", help="outside regular hours too")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write here (default: standard output)")
    cli.add_bus_arguments(p)
    args = p.parse_args(argv)
    if args.start is None and args.duration is None:
        end = args.end if args.end is not None else time.time()
        args.start = int(end - (args.days or 1) * DAY)
    if args.end is not None and args.start is not None and args.start >= args.end:
        p.error(f"--start {utc(args.start)} is not before --end {utc(args.end)}")
    return args


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def say_wait(reply: dict[str, Any]) -> None:
    """One progress line per pending reply: where the request stands and when it should start."""
    parts = f"{reply.get('parts_done', 0)} of {reply.get('parts', '?')} TWS requests done"
    retry = f"asking again in {min(float(reply.get('retry_after_s') or 1), 60):g} s"
    if reply.get("state") == "queued":
        eta = float(reply.get("eta_s") or 0)
        line = (f"waiting for IB's historical pacing: {reply.get('position', '?')} requests ahead, {parts}; "
                f"the last starts in about {_span(eta)} (at {utc(time.time() + eta)}); {retry}")  # fmt: skip
    else:
        line = f"sent to TWS, waiting for its answer ({parts}); {retry}"
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def write_csv(table: Table, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)  # None is written as an empty cell


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    part = None if args.csv is None else args.csv.with_name(args.csv.name + ".part")
    try:  # find out now, not after minutes of waiting, that the file cannot be written
        out = sys.stdout if part is None else part.open("w", newline="")
    except OSError as exc:
        print(f"{PROG}: cannot write {args.csv}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 1
    try:
        with cli.client_from_args(args) as bus:
            table = bus.history(args.instrument, args.bar, args.duration, args.start, args.end, args.what, args.rth,
                                on_wait=say_wait)  # fmt: skip
        write_csv(table, out)
    except BaseException:
        if part is not None:
            out.close()
            part.unlink(missing_ok=True)
        raise
    if part is not None:
        out.close()
        os.replace(part, args.csv)
    print(f"{PROG}: {summary(table, args)}", file=sys.stderr, flush=True)
    return 0


def summary(table: Table, args: argparse.Namespace) -> str:
    hours = "regular hours" if args.rth else "all hours"
    where = "" if args.csv is None else f" to {args.csv}"
    said = f"{len(table)} {args.bar} bars of {table.instrument} ({args.what}, {hours}){where}"
    if table.rows:
        said += f", {utc(table.rows[0][0])} to {utc(table.rows[-1][0])}"
    said += f"; {table.requests} TWS requests, {table.cached} from the bridge's memory"
    if table.no_data:
        said += f"; {table.no_data}"
    return said


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))

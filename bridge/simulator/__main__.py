"""`python -m bridge.simulator` / `tws-simulator`: a TWS look-alike on a TCP port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from bridge.config import argparse_type, parse_log_level, parse_port
from bridge.instruments import instrument_key
from bridge.protocol import MAX_SUPPORTED, MIN_SUPPORTED

from . import limits
from .catalogue import CATALOGUE
from .faults import FaultError, load_script
from .history_pacing import HistoryLimits
from .server import Simulator


def _server_version(text: str) -> int:
    value = int(text)
    if not MIN_SUPPORTED <= value <= MAX_SUPPORTED:
        raise argparse.ArgumentTypeError(f"must be within {MIN_SUPPORTED}..{MAX_SUPPORTED}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _any_port(text: str) -> int:
    return parse_port(text, allow_zero=True)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tws-simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=argparse_type(_any_port),
        default=7497,
        help="TCP port (default 7497, TWS paper; 0 picks a free one)",
    )
    p.add_argument(
        "--server-version",
        type=_server_version,
        default=MAX_SUPPORTED,
        help=f"highest API version to speak, {MIN_SUPPORTED}..{MAX_SUPPORTED} (default {MAX_SUPPORTED})",
    )
    p.add_argument("--rate", type=_positive, default=4.0, help="ticks per second per market-data subscription")
    p.add_argument("--seed", type=int, default=0, help="random-walk seed: same seed, same prices")
    p.add_argument("--max-lines", type=int, default=100, help="market-data line limit (error 101 beyond it)")
    p.add_argument("--bar-seconds", type=_positive, default=5.0, help="real-time bar period in seconds (TWS: 5)")
    p.add_argument("--journal", metavar="PATH", help="append one JSON line per client request to PATH")
    p.add_argument("--account", default="DU1234567", help="the account managedAccounts names")
    p.add_argument(
        "--max-depth-books",
        type=_count,
        default=limits.MAX_DEPTH_BOOKS,
        help=f"market-depth books open at once (error 309 beyond; default {limits.MAX_DEPTH_BOOKS})",
    )
    p.add_argument(
        "--max-tick-by-tick",
        type=_count,
        default=limits.MAX_TICK_BY_TICK,
        help=f"tick-by-tick streams open at once (error 10190 beyond; default {limits.MAX_TICK_BY_TICK})",
    )
    p.add_argument(
        "--pacing-limit",
        type=_count,
        default=limits.MAX_MESSAGES_PER_SECOND,
        help="messages a client may send per second before error 100 and, if it goes on, a disconnect "
        f"(default {limits.MAX_MESSAGES_PER_SECOND}; 0: no limit)",
    )
    p.add_argument(
        "--history-max-requests",
        type=_count,
        default=HistoryLimits().max_requests,
        help="historical requests allowed in any --history-window (error 162 beyond; default 60, BID_ASK counts 2)",
    )
    p.add_argument(
        "--history-max-open",
        type=_count,
        default=HistoryLimits().max_open,
        help="historical requests open at once (keepUpToDate streams; default 50)",
    )
    p.add_argument(
        "--history-time-scale",
        type=_positive,
        default=1.0,
        help="multiply IB's pacing windows (10 min, 15 s, 2 s) by this; 0.01 makes ten minutes six seconds",
    )
    p.add_argument("--no-history-pacing", action="store_true", help="answer history without IB's pacing rules")
    p.add_argument(
        "--control",
        type=argparse_type(_any_port),
        metavar="PORT",
        help="take faults on 127.0.0.1:PORT (python -m bridge.simulator.control PORT FAULT ...)",
    )
    p.add_argument(
        "--faults", metavar="FILE", help="play a fault script (JSON or TOML list of {at, fault, args}) from the start"
    )
    p.add_argument(
        "--log-level", type=argparse_type(parse_log_level), default="INFO", help="DEBUG, INFO, WARNING (default INFO)"
    )
    p.add_argument(
        "--stamp",
        action="store_true",
        help="end each market-data step with a tickString of type 85 (lastRegTime) holding the simulator's "
        "time.time_ns() as it writes the step: a latency probe for benchmarks, not something TWS sends",
    )
    p.add_argument(
        "--shared-clock",
        action="store_true",
        help="step every instrument on one clock (--rate samples a second) and send each connection a sample's "
        "ticks in one write, as TWS sends its watchlist snapshots (every 250 ms for stocks); by default each "
        "instrument steps on its own clock",
    )
    p.add_argument("--list", action="store_true", help="print the instruments the simulator knows, and exit")
    return p.parse_args(argv)  # fmt: skip


def history_limits(args: argparse.Namespace) -> HistoryLimits:
    return HistoryLimits(
        max_requests=args.history_max_requests, max_open=args.history_max_open, enforced=not args.no_history_pacing
    ).scaled(args.history_time_scale)


async def _run(args: argparse.Namespace) -> None:
    sim = Simulator(
        host=args.host, port=args.port, server_version=args.server_version, rate=args.rate, seed=args.seed,
        max_lines=args.max_lines, bar_seconds=args.bar_seconds, journal=args.journal, account=args.account,
        max_depth_books=args.max_depth_books, max_tick_by_tick=args.max_tick_by_tick,
        max_messages_per_second=args.pacing_limit, control_port=args.control, faults=args.script,
        history_limits=history_limits(args), stamp=args.stamp, shared_clock=args.shared_clock,
    )  # fmt: skip
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def list_instruments() -> str:
    """One line per instrument: the short form to subscribe with (its key), then its contract fields and price."""
    rows = [("INSTRUMENT", "SYMBOL", "SECTYPE", "EXCHANGE", "PRIMARY", "CURRENCY", "CONID", "LOCALSYMBOL", "PRICE")]
    for inst in CATALOGUE:
        c = inst.contract
        rows.append((instrument_key(c), c.symbol, c.sec_type, c.exchange, c.primary_exchange or "-", c.currency,
                     str(c.con_id), c.local_symbol, f"{inst.start_price:.10g}"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list:
        print(list_instruments())
        return
    try:
        args.script = load_script(args.faults) if args.faults else None
    except FaultError as exc:
        raise SystemExit(f"tws-simulator: {exc}") from None
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(args))
    except OSError as exc:  # a port taken or not ours to bind, a journal path we cannot write
        raise SystemExit(f"tws-simulator: cannot start: {exc}") from None


if __name__ == "__main__":
    main()

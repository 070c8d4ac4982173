"""`python -m bridge.simulator` / `tws-simulator`: a TWS look-alike on a TCP port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from bridge.protocol import MAX_SUPPORTED, MIN_SUPPORTED

from .server import Simulator


def _server_version(text: str) -> int:
    value = int(text)
    if not MIN_SUPPORTED <= value <= MAX_SUPPORTED:
        raise argparse.ArgumentTypeError(f"must be within {MIN_SUPPORTED}..{MAX_SUPPORTED}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tws-simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="TCP port (default 7497, TWS paper; 0 picks a free one)")
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
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p.parse_args(argv)  # fmt: skip


async def _run(args: argparse.Namespace) -> None:
    sim = Simulator(
        host=args.host, port=args.port, server_version=args.server_version, rate=args.rate, seed=args.seed,
        max_lines=args.max_lines, bar_seconds=args.bar_seconds, journal=args.journal, account=args.account,
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()

"""Command-line pieces every sample consumer shares, so flags and defaults are the same everywhere."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

from bridge import natsconn
from consumers.client import DEFAULT_LEASE, DEFAULT_TIMEOUT, BridgeError, BusClient, Subscription
from consumers.config import PUB_ENV, REP_ENV, default_pub, default_rep

SERVER_KEY_ENV = "TWSBRIDGE_SERVER_KEY"
CLIENT_KEY_ENV = "TWSBRIDGE_CLIENT_KEY"
KINDS = ("quote", "trades", "alltrades", "bidask", "midpoint", "bars", "depth")


def positive_float(text: str) -> float:
    """argparse type: a number above zero (a timeout or duration of 0 or less means nothing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    """--pub/--rep (defaults: the bridge's, or $TWSBRIDGE_PUB/$TWSBRIDGE_REP), --timeout, --lease."""
    parser.add_argument("--pub", default=default_pub(), help=f"bridge data endpoint (default %(default)s; ${PUB_ENV})")
    parser.add_argument(
        "--rep", default=default_rep(), help=f"bridge request endpoint (default %(default)s; ${REP_ENV})"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for a bridge reply (%(default)s)",
    )
    parser.add_argument(
        "--lease",
        type=positive_int,
        default=DEFAULT_LEASE,
        help="subscription lease in seconds, renewed at a third (%(default)s)",
    )
    parser.add_argument(
        "--server-key",
        default=os.environ.get(SERVER_KEY_ENV),
        metavar="FILE",
        help=f"the bridge's public key file, for a bridge with CURVE on (${SERVER_KEY_ENV})",
    )
    parser.add_argument(
        "--client-key",
        default=os.environ.get(CLIENT_KEY_ENV),
        metavar="FILE",
        help=f"this client's secret key file (python -m bridge.keys makes one; ${CLIENT_KEY_ENV})",
    )
    nats = parser.add_argument_group("over NATS, from another host (docs/nats.md; instead of --pub/--rep)")
    env = os.environ.get
    nats.add_argument("--nats", default=env(natsconn.URL_ENV), metavar="URL",
                      help=f"the NATS server a relay carries the bus to, e.g. nats://bridge-host:4222 "
                           f"(${natsconn.URL_ENV})")  # fmt: skip
    nats.add_argument("--nats-user", default=env(natsconn.USER_ENV), help=f"NATS user (${natsconn.USER_ENV})")
    nats.add_argument("--nats-password", default=env(natsconn.PASSWORD_ENV),
                      help=f"NATS password (better: ${natsconn.PASSWORD_ENV})")  # fmt: skip
    nats.add_argument("--nats-creds", default=env(natsconn.CREDS_ENV), metavar="FILE",
                      help=f"NATS credentials file (${natsconn.CREDS_ENV})")  # fmt: skip
    nats.add_argument("--nats-tls-ca", default=env(natsconn.TLS_CA_ENV), metavar="FILE",
                      help=f"CA file of a TLS NATS server (${natsconn.TLS_CA_ENV})")  # fmt: skip


def add_subscription_arguments(parser: argparse.ArgumentParser, kind: str = "quote") -> None:
    """--kind, --delayed, --generic-ticks: what each subscribe request asks for."""
    parser.add_argument("--kind", default=kind, choices=KINDS, help="data kind (default %(default)s)")
    parser.add_argument("--delayed", action="store_true", help="ask for delayed market data (no live permission)")
    parser.add_argument("--generic-ticks", default="", help="generic tick list for quotes, e.g. 233,236")
    parser.add_argument("--conflate", type=positive_float, metavar="SECONDS",
                        help="the latest values at most every SECONDS, folded by the bridge (e.g. 0.5)")  # fmt: skip
    parser.add_argument("--fields", type=_field_list, metavar="NAMES",
                        help="with --conflate: only these fields, e.g. bid,ask,last")  # fmt: skip


def _field_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("a comma-separated list of field names, e.g. bid,ask")
    return names


def add_stop_arguments(parser: argparse.ArgumentParser, what: str = "updates") -> None:
    """--count/--seconds: end on their own, handy in scripts and tests."""
    parser.add_argument("--count", type=positive_int, default=None, help=f"exit after this many {what}")
    parser.add_argument("--seconds", type=positive_float, default=None, help="exit after this many seconds")


def client_from_args(args: argparse.Namespace) -> BusClient:
    """A client on what the flags name (the bridge's sockets, or NATS), stopped cleanly by SIGINT/SIGTERM."""
    if args.nats:
        from consumers.nats_client import NatsBusClient  # nats-py is an optional dependency

        bus: BusClient = NatsBusClient(
            args.nats, timeout=args.timeout, user=args.nats_user, password=args.nats_password,
            creds=args.nats_creds, tls_ca=args.nats_tls_ca,
        )  # fmt: skip
    else:
        bus = BusClient(
            pub=args.pub, rep=args.rep, timeout=args.timeout, server_key=args.server_key, client_key=args.client_key
        )
    bus.stop_on_signals()
    return bus


def subscribe_each(bus: BusClient, args: argparse.Namespace, prog: str) -> list[Subscription]:
    """Subscribe every instrument from the command line; report the ones the bridge refuses, keep the rest.

    Raises the error if none succeeded, and at once if the bridge is not answering at all.
    """
    subs: list[Subscription] = []
    last: BridgeError | None = None
    mdt = "delayed" if args.delayed else "live"
    for instrument in args.instruments:
        if bus.stopped:
            break
        try:
            view = {"conflate": getattr(args, "conflate", None), "fields": getattr(args, "fields", None)}
            subs.append(bus.subscribe(instrument, args.kind, mdt, args.generic_ticks, args.lease, **view))
        except BridgeError as exc:
            if exc.code in ("timeout", "stopped"):
                raise
            print(f"{prog}: cannot subscribe {instrument}: {exc.error} [{exc.code}]", file=sys.stderr, flush=True)
            exc.reported = True  # type: ignore[attr-defined]  # run() does not say it again
            last = exc
    if not subs and last is not None:
        raise last
    return subs


class Deadline:
    """Remaining time for --seconds; None when there is no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a consumer's main: bridge errors become one clear stderr line and exit status 1."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(message)s")
    try:
        return main(argv)
    except BridgeError as exc:
        if exc.code == "stopped":
            return 130
        if not getattr(exc, "reported", False):
            print(f"{prog}: {exc.error} [{exc.code}]", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        return 130

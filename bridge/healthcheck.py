"""`python -m bridge.healthcheck`: exit 0 when the bridge answers `status` and is connected to TWS.

The Docker HEALTHCHECK runs it inside the container: "healthy" then means what a consumer needs (the
request socket answers and data can flow), not merely that the process exists. A bridge that is up but
has lost TWS (Gateway's daily restart, a 1100) reports unhealthy until TWS is back; `--bridge-only`
asks only that the bridge answers. It reads the same TWSBRIDGE_REP the bridge binds, so one environment
variable serves both; a wildcard bind address (0.0.0.0, *) is reached at 127.0.0.1. With CURVE on the
bus, it needs a client key like any consumer (TWSBRIDGE_SERVER_KEY and TWSBRIDGE_CLIENT_KEY, docs/bus.md).
"""

from __future__ import annotations

import argparse
import os
import sys

import msgpack
import zmq

from .config import DEFAULT_REP, ENV_PREFIX
from .curve import CurveError, client_options


def local_endpoint(bind: str) -> str:
    """The endpoint a process in the same network namespace connects to for a bind endpoint."""
    scheme, sep, rest = bind.partition("://")
    host, colon, port = rest.rpartition(":")
    if sep and colon and host in ("0.0.0.0", "*", "[::]", "::"):
        return f"{scheme}://127.0.0.1:{port}"
    return bind


def check(endpoint: str, timeout: float, bridge_only: bool, curve: dict[int, bytes] | None = None) -> str | None:
    """None when healthy, else the one-line reason."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    for option, value in (curve or {}).items():
        sock.setsockopt(option, value)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb({"op": "status"}))
        reply = msgpack.unpackb(sock.recv())
    except zmq.Again:
        hint = "" if curve else " (a bridge with CURVE on needs TWSBRIDGE_SERVER_KEY and TWSBRIDGE_CLIENT_KEY)"
        return f"no reply from the bridge at {endpoint} within {timeout:g} s{hint}"
    except (zmq.ZMQError, ValueError) as exc:
        return f"bridge at {endpoint}: {exc}"
    finally:
        sock.close()
        ctx.term()
    if not isinstance(reply, dict) or not reply.get("ok"):
        return f"bridge at {endpoint} refused status: {reply!r:.200}"
    tws = reply.get("tws") or {}
    if not bridge_only and not tws.get("connected"):
        return f"bridge up, TWS not connected (state {tws.get('state')!r}, last error {tws.get('last_error')!r:.200})"
    return None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bridge.healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("--rep", default=os.environ.get(ENV_PREFIX + "REP") or DEFAULT_REP, help="bridge request endpoint")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the reply (default 3)")
    p.add_argument("--bridge-only", action="store_true", help="healthy when the bridge answers, TWS up or not")
    p.add_argument("--server-key", default=os.environ.get("TWSBRIDGE_SERVER_KEY"), metavar="FILE",
                   help="the bridge's public key file, with CURVE on ($TWSBRIDGE_SERVER_KEY)")  # fmt: skip
    p.add_argument("--client-key", default=os.environ.get("TWSBRIDGE_CLIENT_KEY"), metavar="FILE",
                   help="a secret key file the bridge allows ($TWSBRIDGE_CLIENT_KEY)")  # fmt: skip
    args = p.parse_args(argv)
    endpoint = local_endpoint(args.rep)
    curve = None
    if args.server_key or args.client_key:
        if not (args.server_key and args.client_key):
            p.error("CURVE needs both --server-key and --client-key")
        try:
            curve = client_options(args.server_key, args.client_key)
        except CurveError as exc:
            print(f"unhealthy: {exc}", file=sys.stderr)
            sys.exit(1)
    problem = check(endpoint, args.timeout, args.bridge_only, curve)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"healthy: bridge at {endpoint} answers{'' if args.bridge_only else ' and TWS is connected'}")


if __name__ == "__main__":
    main()

"""The simulator's fault control: a loopback socket that takes one JSON line per fault.

    python -m bridge.simulator --control 7599 &
    python -m bridge.simulator.control 7599 stall seconds=10
    python -m bridge.simulator.control 7599 connectivity seconds=5 data_lost=true
    python -m bridge.simulator.control 7599 counters
    python -m bridge.simulator.control --list

On the wire: `{"fault": "stall", "args": {"seconds": 10}}` per line, answered by
`{"ok": true}` or `{"ok": false, "error": "..."}`; `{"query": "counters"}` answers
`{"ok": true, "counters": {...}}` (history requests, pacing violations), so an operator can rehearse a TWS outage
against a running bridge from any language. It listens on 127.0.0.1 only: faults are for
whoever owns the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
from typing import TYPE_CHECKING, Any

from .faults import FAULTS, FaultError

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger("bridge.simulator")

MAX_LINE = 4096  # a fault request is a few dozen bytes; anything longer is not one


async def serve_control(sim: Simulator, port: int) -> asyncio.Server:
    """Listen for fault requests on 127.0.0.1:`port` (0 picks a free port)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the stream limit
                    writer.write(_reply({"ok": False, "error": f"a request line is at most {MAX_LINE} bytes"}))
                    break
                if not line:
                    break
                writer.write(_reply(_carry_out(sim, line)))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port, limit=MAX_LINE)


def _carry_out(sim: Simulator, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except ValueError:
        return {"ok": False, "error": 'not JSON; send {"fault": NAME, "args": {...}} on one line'}
    if isinstance(request, dict) and request.get("query") == "counters":
        return {"ok": True, "counters": sim.counters()}
    if not isinstance(request, dict) or not isinstance(request.get("fault"), str):
        return {"ok": False, "error": 'send {"fault": NAME, "args": {...}}'}
    args = request.get("args", {})
    if not isinstance(args, dict):
        return {"ok": False, "error": "'args' is a map of argument names to values"}
    try:
        sim.inject(request["fault"], **args)
    except FaultError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True}


def _reply(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"


# --- the command line ------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    """`10` and `2.5` are numbers, `true`/`false` booleans, anything else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_faults() -> str:
    rows = []
    for name, (what, params) in FAULTS.items():
        names = " ".join(
            f"{k}={p.kind.__name__}" if p.default is None else f"[{k}={p.default}]" for k, p in params.items()
        )
        rows.append(f"{name} {names}".rstrip() + f"\n    {what}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bridge.simulator.control",
        description="Inject a fault into a running simulator started with --control PORT.",
        epilog="Example: python -m bridge.simulator.control 7599 restart seconds=30",
    )
    p.add_argument("port", type=int, nargs="?", help="the simulator's --control port")
    p.add_argument("fault", nargs="?", help="the fault's name (--list shows them)")
    p.add_argument("args", nargs="*", metavar="key=value", help="the fault's arguments")
    p.add_argument("--list", action="store_true", help="list the faults and their arguments")
    opts = p.parse_args(argv)
    if opts.list:
        print(describe_faults())
        return 0
    if opts.port is None or opts.fault is None:
        p.error("give PORT and FAULT (or --list)")
    args: dict[str, Any] = {}
    for item in opts.args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"arguments are key=value, not {item!r}")
        args[key] = _parse_value(value)
    ask = {"query": "counters"} if opts.fault == "counters" else {"fault": opts.fault, "args": args}
    try:
        with socket.create_connection(("127.0.0.1", opts.port), timeout=5) as sock:
            sock.sendall(_reply(ask))
            answer = json.loads(sock.makefile("rb").readline() or b"{}")
    except (OSError, ValueError) as exc:
        print(f"cannot reach the simulator's control port {opts.port}: {exc}", file=sys.stderr)
        return 2
    if not answer.get("ok"):
        print(f"refused: {answer.get('error', 'no answer')}", file=sys.stderr)
        return 1
    if "counters" in answer:
        print("\n".join(f"{name} {value}" for name, value in answer["counters"].items()))
        return 0
    print(f"{opts.fault}: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

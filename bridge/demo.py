"""`python -m bridge.demo`: the quick start in one process tree.

Starts the bridge on its built-in TWS simulator (`tws-bridge --simulate`) and a printer
consumer for a few instruments, exactly as a user would run them in two terminals; Ctrl-C stops
both. Extra arguments are the instruments to print (default: BTC.CRYPTO, AAPL and EUR.CASH,
the EUR.USD pair); options after `--` go to the printer.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import msgpack
import zmq

from consumers.config import default_rep

DEFAULT_INSTRUMENTS = ["BTC.CRYPTO", "AAPL", "EUR.CASH"]


def _wait_until_ready(rep: str, bridge: subprocess.Popen[bytes], timeout: float = 15.0) -> bool:
    ctx = zmq.Context.instance()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and bridge.poll() is None:
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 500)
        sock.connect(rep)
        try:
            sock.send(msgpack.packb({"op": "status"}))
            if msgpack.unpackb(sock.recv())["tws"]["connected"]:
                return True
        except zmq.Again:
            pass
        finally:
            sock.close()
        time.sleep(0.2)
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bridge.demo",
        description="Start tws-bridge on its built-in TWS simulator and print live quotes; Ctrl-C stops both.",
        epilog="Instruments in short form: AAPL, BTC.CRYPTO, EUR.CASH (EUR.USD), ES.FUT.CME.USD.202612; "
        "python -m bridge.simulator --list shows every instrument the simulator knows. "
        "Printer options go after --, e.g. python -m bridge.demo AAPL -- --seconds 5.",
    )
    p.add_argument(
        "instruments",
        nargs="*",
        metavar="INSTRUMENT",
        help=f"what to print (default: {' '.join(DEFAULT_INSTRUMENTS)})",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    args.instruments = args.instruments or DEFAULT_INSTRUMENTS
    args.printer_args = argv[cut + 1 :]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Both read the endpoints from TWSBRIDGE_PUB / TWSBRIDGE_REP (and the bridge TWSBRIDGE_METRICS) when set.
    bridge = subprocess.Popen([sys.executable, "-m", "bridge", "--simulate"])
    printer = None
    try:
        if not _wait_until_ready(default_rep(), bridge):
            print("demo: the bridge did not come up; see its log above", file=sys.stderr)
            return 1
        printer = subprocess.Popen([sys.executable, "-m", "consumers.printer", *args.instruments, *args.printer_args])
        return printer.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in (printer, bridge):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in (printer, bridge):
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())

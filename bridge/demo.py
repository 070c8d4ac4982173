"""`python -m bridge.demo`: the quick start in one process tree.

Starts the bridge on its built-in TWS simulator (`tws-bridge --simulate`) and a printer
consumer for a few instruments, exactly as a user would run them in two terminals; Ctrl-C stops
both. Extra arguments are the instruments to print (default: BTC, AAPL and EUR.USD).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import msgpack
import zmq

from .config import DEFAULT_PUB, DEFAULT_REP

DEFAULT_INSTRUMENTS = ["BTC.CRYPTO.PAXOS.USD", "AAPL", "EUR.CASH"]


def _wait_until_ready(rep: str, timeout: float = 15.0) -> bool:
    ctx = zmq.Context.instance()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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


def main(argv: list[str] | None = None) -> int:
    instruments = (argv if argv is not None else sys.argv[1:]) or DEFAULT_INSTRUMENTS
    bridge = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--simulate", "--pub", DEFAULT_PUB, "--rep", DEFAULT_REP]
    )
    printer = None
    try:
        if not _wait_until_ready(DEFAULT_REP):
            print("demo: the bridge did not come up; see its log above", file=sys.stderr)
            return 1
        printer = subprocess.Popen([sys.executable, "-m", "consumers.printer", *instruments])
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

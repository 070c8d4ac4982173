"""systemd's readiness protocol (sd_notify), without libsystemd: a datagram to $NOTIFY_SOCKET.

With `Type=notify` systemd counts the bridge as started only once it sends READY=1 (its sockets
bound, requests answered), and with `WatchdogSec=` restarts it when WATCHDOG=1 stops coming (a
wedged event loop). Outside systemd NOTIFY_SOCKET is unset and every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("tws-bridge")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not under systemd or the send failed."""
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("cannot notify systemd on %s: %s", env["NOTIFY_SOCKET"], exc)
        return False
    return True


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """Half of systemd's WatchdogSec for this process (how often to send WATCHDOG=1), or None."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = int(env.get("WATCHDOG_PID", str(os.getpid())))
    except ValueError:
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 2e6


async def keep_watchdog_fed(interval: float) -> None:
    """WATCHDOG=1 from the event loop itself, so a loop that stops turning stops feeding it."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)

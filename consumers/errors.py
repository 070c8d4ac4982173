"""What a bus request can fail with, in one place so that every client module raises the same kinds."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """A request failed: `code` is the bus reason code (docs/bus.md), `error` the bridge's words."""

    def __init__(self, code: str, error: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error} [{code}]")
        self.code = code
        self.error = error
        self.reply = reply or {}


class BridgeTimeout(BridgeError):
    """No reply in time: the bridge is not running, not reachable, or stuck."""


class Stopped(BridgeTimeout):
    """A stop signal (Ctrl-C, SIGTERM) arrived while waiting for a reply: the wait is abandoned."""

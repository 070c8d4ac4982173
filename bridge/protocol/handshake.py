"""The API handshake: `API\\0` + a framed `v<min>..<max>[ options]`, answered by a frame
carrying the server version and its connection time."""

from __future__ import annotations

import re

from .errors import ProtocolError
from .framing import frame
from .versions import MAX_SUPPORTED, MIN_SUPPORTED

PREFIX = b"API\0"
_RANGE = re.compile(rb"v(\d{1,4})\.\.(\d{1,4})(?: (.*))?", re.DOTALL)


def client_greeting(min_version: int = MIN_SUPPORTED, max_version: int = MAX_SUPPORTED, options: str = "") -> bytes:
    """The bytes a client opens with."""
    text = f"v{min_version}..{max_version}" + (f" {options}" if options else "")
    return PREFIX + frame(text.encode())


def parse_version_range(payload: bytes) -> tuple[int, int, str]:
    """Server side: the client's `v<min>..<max>[ options]` frame payload."""
    match = _RANGE.fullmatch(payload)
    if match is None:
        raise ProtocolError(f"greeting {payload[:40]!r} is not 'v<min>..<max>'")
    low, high = int(match[1]), int(match[2])
    if low > high:
        raise ProtocolError(f"greeting range v{low}..{high} is empty")
    return low, high, (match[3] or b"").decode("ascii", "replace")


def negotiate(client_min: int, client_max: int, server_version: int) -> int | None:
    """The version a server at `server_version` speaks with this client, or None if none."""
    version = min(client_max, server_version)
    return version if version >= client_min else None


def server_hello(server_version: int, connection_time: str) -> bytes:
    return frame(b"%d\0%s\0" % (server_version, connection_time.encode()))


def parse_server_hello(payload: bytes, min_version: int, max_version: int) -> tuple[int, str]:
    """Client side: the server's first frame. Refuses a version outside our range."""
    parts = payload.split(b"\0")
    if len(parts) != 3 or parts[2] != b"" or not parts[0].isdigit():
        raise ProtocolError(f"server's first message {payload[:60]!r} is not '<version>\\0<time>\\0'")
    version = int(parts[0])
    if not min_version <= version <= max_version:
        raise ProtocolError(
            f"TWS answered with server version {version}; tws-bridge speaks {min_version}..{max_version}. "
            "Update TWS/IB Gateway (or tws-bridge) so the ranges overlap."
        )
    return version, parts[1].decode("ascii", "replace")

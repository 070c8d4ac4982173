"""Length-prefixed frames: a 4-byte big-endian length, then that many bytes.

`FrameReader` is the receive buffer. Bytes may arrive in any chunking (one byte at a time
included); chunks are only joined once a whole frame can be cut, so reading a long frame in
tiny pieces stays O(bytes), not O(bytes^2).
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

# The official client refuses messages over 0xFFFFFF bytes (MAX_MSG_LEN); so do we.
MAX_FRAME = 0xFFFFFF

_length = struct.Struct(">I")
_unpack_length = _length.unpack_from


def frame(payload: bytes) -> bytes:
    """Prefix `payload` with its length."""
    return _length.pack(len(payload)) + payload


class FrameReader:
    """Cuts a byte stream into frame payloads."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = b""  # joined bytes; the unread part starts at 0
        self._chunks: list[bytes] = []  # fed but not joined yet
        self._buffered = 0  # len(self._buf) + sum of chunk lengths
        self._need = 4  # bytes needed before another frame can be complete

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return self._buffered

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)

    def frames(self) -> list[bytes]:
        """Every complete frame payload now buffered, in order (may be empty)."""
        if self._buffered < self._need:
            return []
        buf = self._buf + b"".join(self._chunks) if self._chunks else self._buf
        self._chunks.clear()
        end = len(buf)
        pos = 0
        out: list[bytes] = []
        append = out.append
        limit = self.max_frame
        while end - pos >= 4:
            (n,) = _unpack_length(buf, pos)
            if n > limit:
                if out:  # hand over the good frames before it; the next call raises
                    break
                self._buf, self._buffered = buf[pos:], end - pos
                raise ProtocolError(f"frame of {n} bytes is over the {limit}-byte limit; stream is out of step")
            stop = pos + 4 + n
            if stop > end:
                break
            append(buf[pos + 4 : stop])
            pos = stop
        self._buf = buf[pos:] if pos else buf
        self._buffered = end - pos
        self._need = 4
        if self._buffered >= 4:
            (n,) = _unpack_length(self._buf, 0)
            if n <= limit:  # an oversized header needs no more bytes: the next call raises
                self._need += n
        return out

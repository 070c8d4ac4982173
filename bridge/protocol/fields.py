"""Field-level conversions shared by the decoder and the encoders.

TWS fields are NUL-terminated ASCII text. Numbers arrive as decimal text, an unset size as
an empty field or one of IB's "max value" sentinels, and text that is not plain ASCII as
Python-style unicode escapes (server version >= 153, ENCODE_MSG_ASCII7).
"""

from __future__ import annotations

from collections.abc import Iterable

# IB's sentinels for "no value" in a Decimal size field (official client, utils.decode).
_UNSET_SIZES = frozenset(
    {b"", b"2147483647", b"9223372036854775807", b"1.7976931348623157E308", b"-9223372036854775808"}
)
_INFINITY = b"Infinite"
# Byte values, not one-byte strings: `92 in raw` is a memchr, `b"\\" in raw` a substring search
# that costs ~8x as much (CPython 3.11), and text() runs for every tickString.
_BACKSLASH = ord("\\")
_NUL = 0


def size(raw: bytes) -> float | None:
    """A size field: None when unset, else a float (sizes may be fractional)."""
    if raw in _UNSET_SIZES:
        return None
    return float(raw)


def number(raw: bytes) -> float:
    """A double field; empty is 0 and "Infinite" is inf, as TWS writes them."""
    if not raw:
        return 0.0
    if raw == _INFINITY:
        return float("inf")
    return float(raw)


def integer(raw: bytes) -> int:
    """An int field; empty is 0."""
    return int(raw) if raw else 0


def text(raw: bytes) -> str:
    """Text that TWS may have escaped as \\uXXXX; never raises."""
    if _BACKSLASH not in raw:
        return raw.decode("utf-8", "backslashreplace")
    try:
        return raw.decode("unicode-escape")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def plain(raw: bytes) -> str:
    """Text taken as is (UTF-8); never raises."""
    return raw.decode("utf-8", "backslashreplace")


class FieldError(ValueError):
    """A value that would not stay one field on the wire (it holds a NUL, the field separator)."""


def _one(value: object) -> bytes:
    if value is None:
        return b""
    if value is True:
        return b"1"
    if value is False:
        return b"0"
    if isinstance(value, float) and value == float("inf"):
        return _INFINITY
    raw = value if isinstance(value, bytes) else str(value).encode()
    if _NUL in raw:
        raise FieldError(f"field {raw[:40]!r} holds a NUL, which would split it; refusing to send it")
    return raw


def encode_fields(values: Iterable[object]) -> bytes:
    """Join values as NUL-terminated fields: None is empty, bools are 1/0. A value holding a NUL
    raises `FieldError`: it would shift every later field, whatever checked it before."""
    return b"".join(_one(v) + b"\0" for v in values)

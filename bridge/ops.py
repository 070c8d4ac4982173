"""The request socket's ops (docs/bus.md, Requests): parsing and checking what REQ clients send.

Everything here reads outside input, so every refusal is a `RequestError` that names what was
wrong; nothing else is raised (tests/test_request_parsing.py tries arbitrary input).
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from .instruments import InstrumentError, parse_instrument
from .protocol import Contract

KINDS = ("quote", "trades", "alltrades", "bidask", "midpoint", "bars", "depth")
MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed_frozen": 4}
MAX_REQUEST_BYTES = 64 * 1024
_GENERIC_TICKS = re.compile(r"[0-9,]{0,64}")


class RequestError(Exception):
    """A request we refuse; `code` is one of docs/bus.md's reply codes."""

    def __init__(
        self, code: str, message: str, tws_code: int | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.tws_code = code, message, tws_code
        self.extra = extra or {}  # more reply fields (docs/bus.md), e.g. queued_behind, remembered


def parse_request(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError("bad_request", f"request of {len(raw)} bytes is over the {MAX_REQUEST_BYTES}-byte limit")
    try:
        request = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise RequestError("bad_request", f"request is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(request, dict):
        raise RequestError("bad_request", f"request must be a msgpack map, got {type(request).__name__}")
    if not isinstance(request.get("op"), str):
        raise RequestError("bad_request", "request needs 'op' (a string): subscribe, renew, unsubscribe, list, ...")
    return request


def subscribe_args(request: dict[str, Any], lease_default: float) -> tuple[Contract, str, str, str, float]:
    if "instrument" not in request:
        raise RequestError("bad_request", "subscribe needs 'instrument': a short form like 'AAPL' or a contract map")
    try:
        contract = parse_instrument(request["instrument"])
    except InstrumentError as exc:
        raise RequestError("bad_request", str(exc)) from None
    kind = request.get("kind", "quote")
    if not isinstance(kind, str) or kind not in KINDS:
        raise RequestError("bad_request", f"kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}")
    md_type = request.get("market_data_type", "live")
    if not isinstance(md_type, str) or md_type not in MARKET_DATA_TYPES or (kind != "quote" and md_type != "live"):
        raise RequestError("bad_request", "market_data_type is live, frozen, delayed or delayed_frozen (quotes only)")
    generic = request.get("generic_ticks", "")
    if not isinstance(generic, str) or not _GENERIC_TICKS.fullmatch(generic) or (generic and kind != "quote"):
        raise RequestError("bad_request", "generic_ticks is a comma-separated list of numbers, for quotes only")
    lease = request.get("lease", lease_default)
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 1 <= lease <= 3600:
        raise RequestError("bad_request", "lease is a number of seconds from 1 to 3600")
    return contract, kind, md_type, generic, float(lease)

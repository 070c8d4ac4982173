"""The request socket's ops (docs/bus.md, Requests): parsing and checking what REQ clients send.

Everything here reads outside input, so every refusal is a `RequestError` that names what was
wrong; nothing else is raised (tests/test_request_parsing.py tries arbitrary input). Every
string that can reach TWS passes `limits` (printable ASCII, bounded), so none can shift a field.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from .book import ViewKey
from .hbars import BAR_CHOICES, MAX_BACKFILL, BarSpec
from .histkey import BAR_DATA
from .histrules import BadRequest, bar_size
from .instruments import InstrumentError, parse_instrument
from .limits import MAX_RENEW_IDS, MAX_REQUEST_BYTES, LimitError, check_contract, check_generic_ticks
from .protocol import Contract

KINDS = ("quote", "trades", "alltrades", "bidask", "midpoint", "bars", "depth", "hbars")
BAR_FIELDS = ("bar", "what", "rth", "backfill")  # subscribe fields of kind hbars only
MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed_frozen": 4}
_GENERIC_TICKS = re.compile(r"[0-9,]{0,64}")


# Why a request was bad_request: the `reason` label of twsbridge_rep_bad_requests_total (bounded).
BAD_REQUEST_REASONS = (
    "too_large", "multipart", "no_envelope", "not_msgpack", "not_a_map", "no_op", "unknown_op", "bad_field",
    "bad_text", "too_many_ids",
)  # fmt: skip


class RequestError(Exception):
    """A request we refuse; `code` is one of docs/bus.md's reply codes, `reason` (bad_request
    only) one of BAD_REQUEST_REASONS, `extra` more reply fields (e.g. queued_behind, remembered)."""

    def __init__(
        self, code: str, message: str, tws_code: int | None = None, extra: dict[str, Any] | None = None,
        reason: str = "bad_field",
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.code, self.message, self.tws_code, self.reason = code, message, tws_code, reason
        self.extra = extra or {}


def parse_request(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(
            "bad_request",
            f"request of {len(raw)} bytes is over the {MAX_REQUEST_BYTES}-byte limit (MAX_REQUEST_BYTES, 64 KiB)",
            reason="too_large",
        )
    try:
        request = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise RequestError(
            "bad_request", f"request is not valid msgpack ({type(exc).__name__})", reason="not_msgpack"
        ) from None
    if not isinstance(request, dict):
        raise RequestError(
            "bad_request", f"request must be a msgpack map, got {type(request).__name__}", reason="not_a_map"
        )
    if not isinstance(request.get("op"), str):
        raise RequestError(
            "bad_request", "request needs 'op' (a string): subscribe, renew, unsubscribe, list, ...", reason="no_op"
        )
    return request


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes], bool]:
    """ROUTER frames -> (envelope, body frames, whether there was a REQ envelope). A REQ envelope is
    everything up to and including the first empty frame after the identity (a REQ_CORRELATE
    request id included); without one, the envelope is the identity alone (a DEALER's frames)."""
    for i in range(1, len(frames)):
        if frames[i] == b"":
            return frames[: i + 1], frames[i + 1 :], True
    return frames[:1], frames[1:], False


def check_frames(body: list[bytes], enveloped: bool) -> bytes:
    """The one frame a request is, or the RequestError that says what came instead."""
    if not enveloped:
        raise RequestError(
            "bad_request", "no REQ envelope (empty delimiter frame) before the request; use a REQ socket",
            reason="no_envelope",
        )  # fmt: skip
    if len(body) != 1:
        raise RequestError(
            "bad_request", f"a request is one frame (one msgpack map); got {len(body)} frames", reason="multipart"
        )
    return body[0]


def renew_ids(request: dict[str, Any]) -> list[str]:
    """The ids of a renew request (`ids`, or one `id`), at most MAX_RENEW_IDS of them."""
    ids = request.get("ids", [request["id"]] if "id" in request else None)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RequestError("bad_request", "renew needs 'ids': a list of subscription id strings")
    if len(ids) > MAX_RENEW_IDS:
        raise RequestError(
            "bad_request",
            f"renew of {len(ids)} ids is over the limit of {MAX_RENEW_IDS} ids per request (MAX_RENEW_IDS); "
            "renew them in several requests",
            reason="too_many_ids",
        )
    return ids


def instrument_arg(request: dict[str, Any], op: str) -> Contract:
    """The instrument of any op, short form or contract map, checked before it can reach TWS."""
    if "instrument" not in request:
        raise RequestError("bad_request", f"{op} needs 'instrument': a short form like 'AAPL' or a contract map")
    try:
        contract = parse_instrument(request["instrument"])
        check_contract(contract)
    except LimitError as exc:
        raise RequestError("bad_request", str(exc), reason="bad_text") from None
    except InstrumentError as exc:
        raise RequestError("bad_request", str(exc)) from None
    return contract


def subscribe_args(request: dict[str, Any], lease_default: float) -> tuple[Contract, str, str, str, float]:
    contract = instrument_arg(request, "subscribe")
    kind = request.get("kind", "quote")
    if not isinstance(kind, str) or kind not in KINDS:
        raise RequestError("bad_request", f"kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}")
    md_type = request.get("market_data_type", "live")
    if not isinstance(md_type, str) or md_type not in MARKET_DATA_TYPES or (kind != "quote" and md_type != "live"):
        raise RequestError("bad_request", "market_data_type is live, frozen, delayed or delayed_frozen (quotes only)")
    generic = request.get("generic_ticks", "")
    if isinstance(generic, str):
        try:
            check_generic_ticks(generic)
        except LimitError as exc:
            raise RequestError("bad_request", str(exc), reason="bad_text") from None
    if not isinstance(generic, str) or not _GENERIC_TICKS.fullmatch(generic) or (generic and kind != "quote"):
        raise RequestError("bad_request", "generic_ticks is a comma-separated list of numbers, for quotes only")
    lease = request.get("lease", lease_default)
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 1 <= lease <= 3600:
        raise RequestError("bad_request", "lease is a number of seconds from 1 to 3600")
    if kind == "hbars":
        bars_args(request)
    elif any(name in request for name in BAR_FIELDS):
        raise RequestError("bad_request", "bar, what, rth and backfill go with kind hbars (keep-up-to-date bars)")
    return contract, kind, md_type, generic, float(lease)


def bars_args(request: dict[str, Any]) -> tuple[BarSpec, int]:
    """An hbars subscribe's bar settings, and how many complete bars its reply should carry."""
    bar, what, rth = request.get("bar"), request.get("what", "TRADES"), request.get("rth", False)
    choices = f"hbars takes IB's bar sizes from {BAR_CHOICES[0]} to {BAR_CHOICES[-1]}: {', '.join(BAR_CHOICES)}"
    if bar is None:
        raise RequestError("bad_request", f"kind hbars needs 'bar', e.g. '1 min'; {choices}")
    try:
        size = bar_size(bar)
    except BadRequest:
        raise RequestError("bad_request", f"bar {str(bar)[:40]!r}: {choices}") from None
    if size not in BAR_CHOICES:
        raise RequestError("bad_request", f"bar {size!r} is not kept up to date by IB (5 seconds and more); {choices}")
    if not isinstance(what, str) or what.upper() not in BAR_DATA:
        raise RequestError("bad_request", f"what {str(what)[:40]!r} is not one of {', '.join(sorted(BAR_DATA))}")
    if not isinstance(rth, bool):
        raise RequestError("bad_request", "rth is true (regular trading hours only) or false")
    backfill = request.get("backfill", MAX_BACKFILL)
    if isinstance(backfill, bool) or not isinstance(backfill, int) or not 0 <= backfill <= MAX_BACKFILL:
        raise RequestError("bad_request", f"backfill is how many complete bars the reply carries, 0 to {MAX_BACKFILL}")
    return BarSpec(size, what.upper(), rth), backfill


# A conflated view (subscribe with `conflate`): at most 20 updates a second, at least one a minute.
CONFLATE_MIN, CONFLATE_MAX = 0.05, 60.0
MAX_VIEW_FIELDS = 32
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def view_args(request: dict[str, Any]) -> ViewKey | None:
    """The conflated view a subscribe asks for (`conflate` seconds, optional `fields`), if any."""
    conflate, fields = request.get("conflate"), request.get("fields")
    if conflate is None:
        if fields is not None:
            raise RequestError(
                "bad_request", "fields goes with conflate: a view of some fields, at most once an interval"
            )
        return None
    if (
        isinstance(conflate, bool)
        or not isinstance(conflate, int | float)
        or not CONFLATE_MIN <= conflate <= CONFLATE_MAX
    ):
        raise RequestError("bad_request", f"conflate is a number of seconds from {CONFLATE_MIN:g} to {CONFLATE_MAX:g}")
    names: tuple[str, ...] = ()
    if fields is not None:
        if (not isinstance(fields, list) or not 1 <= len(fields) <= MAX_VIEW_FIELDS
                or not all(isinstance(f, str) and _FIELD_NAME.fullmatch(f) for f in fields)):  # fmt: skip
            raise RequestError("bad_request", f"fields is a list of 1 to {MAX_VIEW_FIELDS} field names as published "
                               "(bid, ask, last, bid_size, ...)")  # fmt: skip
        names = tuple(sorted(set(fields)))
    return ViewKey(round(conflate * 1000), names)

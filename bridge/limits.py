"""Every limit the bus puts on what a request may carry, in one place (docs/bus.md, Limits).

Whatever a REQ client writes may end up as a field on the TWS wire, where a NUL is the field
separator: one stray byte would shift every later field (`"AAPL\\x00X"` reached TWS as symbol
AAPL, secType X). So every string that can reach TWS is printable ASCII (0x20-0x7E) of bounded
length, checked here with an error that names the field and the limit. The encoder refuses a
NUL as well (`protocol.fields.FieldError`), as a second line of defence.
"""

from __future__ import annotations

import math

from .protocol import Contract

MAX_REQUEST_BYTES = 64 * 1024  # a request's msgpack bytes; larger is refused with bad_request
MAX_FRAME_BYTES = 1024 * 1024  # ZMQ_MAXMSGSIZE on the request socket: larger frames drop the peer
MAX_RENEW_IDS = 3000  # ids per renew: 3000 real ids (17 bytes each) stay inside MAX_REQUEST_BYTES
MAX_INSTRUMENT_CHARS = 128  # a short-form instrument string
MAX_CON_ID = 2**31 - 1  # TWS's conId is a 32-bit int
MAX_STRIKE = 1e9

# Contract fields that are sent to TWS as text, with their longest accepted value.
TEXT_FIELDS: dict[str, int] = {
    "symbol": 32,
    "sec_type": 8,
    "exchange": 32,
    "currency": 8,
    "primary_exchange": 32,
    "last_trade_date_or_contract_month": 32,
    "right": 8,
    "multiplier": 16,
    "local_symbol": 32,
    "trading_class": 32,
    "issuer_id": 32,
}
GENERIC_TICKS_CHARS = 64
UNSUPPORTED_SEC_TYPES = {"BAG": "combos (BAG) are not supported: subscribe to each leg"}

# IB's names for the Contract fields, so an error speaks the user's language.
IB_NAMES = {
    "sec_type": "secType",
    "primary_exchange": "primaryExchange",
    "last_trade_date_or_contract_month": "lastTradeDateOrContractMonth",
    "local_symbol": "localSymbol",
    "trading_class": "tradingClass",
    "issuer_id": "issuerId",
    "con_id": "conId",
}


class LimitError(ValueError):
    """A value over a limit or outside the allowed characters; the message names both."""


def is_wire_text(value: str) -> bool:
    """Printable ASCII only: nothing that could end, split or escape a TWS field."""
    return value.isascii() and value.isprintable()


def check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise LimitError(f"{name} is {len(value)} characters; the limit is {limit}")
    if not is_wire_text(value):
        bad = next(ch for ch in value if not (ch.isascii() and ch.isprintable()))
        raise LimitError(
            f"{name} {value[:40]!r} holds {bad!r}: only printable ASCII (0x20-0x7E) is allowed, at most {limit} chars"
        )


def check_contract(contract: Contract) -> None:
    """Every field of a contract we would send to TWS (reqContractDetails, then the data request)."""
    for field, limit in TEXT_FIELDS.items():
        check_text(IB_NAMES.get(field, field), getattr(contract, field), limit)
    reason = UNSUPPORTED_SEC_TYPES.get(contract.sec_type)
    if reason is not None:
        raise LimitError(f"secType {contract.sec_type}: {reason}")
    if not 0 <= contract.con_id <= MAX_CON_ID:
        raise LimitError(f"conId {contract.con_id} is outside 0..{MAX_CON_ID}")
    strike = contract.strike
    if strike is not None and not (math.isfinite(strike) and abs(strike) <= MAX_STRIKE):
        raise LimitError(f"strike {strike!r} is not a finite number within +-{MAX_STRIKE:g}")


def check_generic_ticks(value: str) -> None:
    check_text("generic_ticks", value, GENERIC_TICKS_CHARS)

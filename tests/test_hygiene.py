"""Input hygiene: nothing a REQ client sends can shift a TWS field, flood the log or wedge the socket.

The first tests drive arbitrary subscribe requests through the real request parsing and the real
encoder, and read the bytes back with the server side of the protocol; the rest run the bridge
and the simulator as processes and talk to them over real sockets.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.book import Line, LineKey
from bridge.lines import tws_request
from bridge.ops import KINDS, MARKET_DATA_TYPES, RequestError, subscribe_args
from bridge.protocol import MAX_SUPPORTED, MIN_SUPPORTED, Contract
from bridge.protocol import requests as rq
from bridge.protocol.fields import FieldError
from bridge.protocol.server import parse_request as parse_at_tws
from bridge.protocol.versions import MIN_SERVER_VER_RAW_INT_MSG_ID

VERSIONS = (MIN_SUPPORTED, MAX_SUPPORTED, MIN_SERVER_VER_RAW_INT_MSG_ID)

# Text that is mostly harmless, with the characters that break a NUL-separated wire mixed in.
nasty_char = st.sampled_from(["\x00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u2028", "é", "\ufeff", ".", " "])
piece = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6)
nasty = st.lists(piece | nasty_char | st.text(max_size=4), max_size=5).map("".join)
plain = st.sampled_from(["AAPL", "STK", "SMART", "USD", "BTC", "CRYPTO", "BAG", "20261218", "C", "100", "ES  Z6"])
text = st.one_of(plain, plain, plain, nasty)  # mostly plain, so many requests get as far as the wire
short_form = st.lists(text, min_size=1, max_size=7).map(".".join)
number = st.integers(-(2**64), 2**64) | st.floats() | st.booleans()
contract_map = st.fixed_dictionaries(
    {"symbol": text, "secType": text, "exchange": text, "currency": text},
    optional={
        "conId": number, "primaryExchange": text, "lastTradeDateOrContractMonth": text, "strike": number,
        "right": text, "multiplier": text, "localSymbol": text,
    },
)  # fmt: skip
subscribe = st.fixed_dictionaries(
    {"op": st.just("subscribe"), "instrument": short_form | contract_map},
    optional={"kind": st.sampled_from(KINDS), "market_data_type": st.sampled_from(sorted(MARKET_DATA_TYPES)),
              "generic_ticks": text | st.sampled_from(["233", "100,101,233"]), "lease": number},
)  # fmt: skip


def _tws_requests(contract: Contract, kind: str, md_type: str, generic: str) -> list[rq.Request]:
    """What the bridge sends for a subscribe: the contract lookup, then the line's data request."""
    line = Line(LineKey("X", kind, md_type, generic), contract, 7, b"x")
    return [rq.ReqContractDetails(7, contract), tws_request(line, 7)]


def _fields(framed: bytes, version: int) -> tuple[bytes, list[bytes]]:
    """(message id, fields) as TWS splits a message of ours."""
    payload = framed[4:]
    if version >= MIN_SERVER_VER_RAW_INT_MSG_ID:
        return payload[:4], payload[4:].split(b"\0")
    msg_id, *fields = payload.split(b"\0")
    return msg_id, fields


def _expected_field_count(request: rq.Request, version: int) -> int:
    """The field count of the same request for a plain instrument: the layout, whatever the input."""
    benign = request._replace(contract=Contract("A", "STK", "SMART", "USD"))  # type: ignore[union-attr]
    return len(_fields(rq.encode_request(benign, version), version)[1])


@settings(max_examples=400, deadline=None)
@given(request=subscribe)
def test_no_subscribe_request_can_shift_a_field_on_the_tws_wire(request: dict[str, Any]) -> None:
    try:
        contract, kind, md_type, generic, _lease = subscribe_args(request, 30.0)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message
        return
    for tws in _tws_requests(contract, kind, md_type, generic):
        for version in VERSIONS:
            framed = rq.encode_request(tws, version)
            assert len(_fields(framed, version)[1]) == _expected_field_count(tws, version)
            back = parse_at_tws(framed[4:], version)
            assert type(back) is type(tws)
            assert back.contract[:12] == tws.contract[:12]  # type: ignore[union-attr]
            if isinstance(tws, rq.ReqMktData):
                assert back.generic_ticks == generic  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("instrument", "says"),
    [
        ("AAPL\x00X", "symbol 'AAPL\\x00X' holds '\\x00'"),
        ("AAPL.STK.SMART.US\nD", "currency"),
        ("AAPL.BAG", "combos (BAG) are not supported"),
        ("X" * 33, "the limit is 32"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "localSymbol": "A\x00B"},
         "localSymbol"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "strike": float("nan")},
         "strike"),
        ({b"symbol": "AAPL", "secType": "STK"}, "keys must be strings"),
    ],
)  # fmt: skip
def test_bad_text_is_refused_naming_the_field_and_the_rule(instrument: object, says: str) -> None:
    with pytest.raises(RequestError) as caught:
        subscribe_args({"op": "subscribe", "instrument": instrument}, 30.0)
    assert caught.value.code == "bad_request" and says in caught.value.message


def test_the_encoder_itself_refuses_a_nul_whatever_checked_before() -> None:
    for version in VERSIONS:
        with pytest.raises(FieldError):
            rq.encode_request(rq.ReqMktData(1, Contract("AAPL\x00X", "STK", "SMART", "USD")), version)
        with pytest.raises(FieldError):
            rq.encode_request(rq.ReqMktData(1, Contract("AAPL", "STK", "SMART", "USD"), "233\x00"), version)

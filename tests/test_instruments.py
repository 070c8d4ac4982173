"""The short instrument form and contract maps users write."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.instruments import InstrumentError, instrument_key, parse_instrument
from bridge.protocol import Contract


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("AAPL", "AAPL.STK.SMART.USD"),
        ("btc.crypto", "BTC.CRYPTO.PAXOS.USD"),
        ("BTC.CRYPTO.PAXOS.USD", "BTC.CRYPTO.PAXOS.USD"),
        ("EUR.CASH", "EUR.CASH.IDEALPRO.USD"),
        ("ES.FUT.CME.USD.202612", "ES.FUT.CME.USD.202612"),
        ("AAPL.OPT.SMART.USD.20261218.200.C", "AAPL.OPT.SMART.USD.20261218.200.C"),
    ],
)
def test_short_forms_fill_defaults_and_round_trip_to_keys(text: str, key: str) -> None:
    assert instrument_key(parse_instrument(text)) == key


def test_a_contract_map_uses_ibs_names() -> None:
    contract = parse_instrument({"symbol": "aapl", "secType": "STK", "exchange": "SMART", "currency": "USD",
                                 "primaryExchange": "NASDAQ", "conId": 265598})  # fmt: skip
    assert contract == Contract("AAPL", "STK", "SMART", "USD", 265598, "NASDAQ")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "is not SYMBOL"),
        ("A..B", "is not SYMBOL"),
        ("AAPL.OPT.SMART.USD.20261218.200", "needs both STRIKE and RIGHT"),
        ("AAPL.OPT.SMART.USD.20261218.x.C", "is not a number"),
        ({"symbol": "AAPL"}, "lacks"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "bogus": 1}, "unknown contract"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "conId": "1"}, "integer"),
        (42, "short-form string"),
        ("X" * 200, "longer than"),
    ],
)
def test_bad_instruments_are_refused_with_a_reason(spec: object, message: str) -> None:
    with pytest.raises(InstrumentError, match=message):
        parse_instrument(spec)


@given(st.one_of(st.text(max_size=80), st.dictionaries(st.text(max_size=20), st.one_of(st.text(), st.integers()))))
def test_any_input_is_an_instrument_or_an_instrument_error(spec: object) -> None:
    with contextlib.suppress(InstrumentError):
        parse_instrument(spec)

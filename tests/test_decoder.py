"""Every event from the bytes TWS sends, in the layout of each server version."""

import pytest

from bridge.protocol import Contract, Decoder
from bridge.protocol import events as ev


def msg(*fields: str) -> bytes:
    return b"".join(f.encode() + b"\0" for f in fields)


def decode(payload: bytes, version: int = 200) -> ev.Event:
    return Decoder(version).decode(payload)


def test_tick_price_carries_its_size_and_attribute_bits() -> None:
    event = decode(msg("1", "6", "7", "1", "185.52", "300", "6"))
    assert event == ev.TickPrice(7, 1, 185.52, 300.0, 6)
    assert (event.can_auto_execute, event.past_limit, event.pre_open) == (False, True, True)


def test_tick_price_with_unset_size_has_none() -> None:
    assert decode(msg("1", "6", "7", "9", "180.1", "", "0")).size is None
    assert decode(msg("1", "6", "7", "9", "180.1", "9223372036854775807", "0")).size is None


def test_fractional_crypto_size() -> None:
    assert decode(msg("2", "6", "1", "0", "0.00125")) == ev.TickSize(1, 0, 0.00125)


def test_tick_string_and_generic() -> None:
    assert decode(msg("46", "6", "4", "45", "1764079200")) == ev.TickString(4, 45, "1764079200")
    assert decode(msg("45", "6", "4", "49", "0")) == ev.TickGeneric(4, 49, 0.0)


def test_tick_string_unescapes_what_tws_escaped() -> None:
    assert decode(msg("46", "6", "4", "32", "Caf\\u00e9")).value == "Café"


def test_tick_efp() -> None:
    event = decode(msg("47", "6", "2", "38", "0.5", "0.50", "4500.25", "30", "20261218", "1.5", "2.5"))
    assert event == ev.TickEFP(2, 38, 0.5, "0.50", 4500.25, 30, "20261218", 1.5, 2.5)


def test_tick_option_computation_marks_not_computed_as_none() -> None:
    event = decode(msg("21", "3", "13", "1", "0.25", "-2", "1.5", "-1", "0.02", "-2", "-0.05", "-1"))
    assert event == ev.TickOptionComputation(3, 13, 1, 0.25, None, 1.5, None, 0.02, None, -0.05, None)
    assert decode(msg("21", "3", "10", "0", "-1", "0.5", "2", "0", "0.1", "0.2", "-0.1", "100")).implied_vol is None


def test_snapshot_end_req_params_and_market_data_type() -> None:
    assert decode(msg("57", "1", "9")) == ev.TickSnapshotEnd(9)
    assert decode(msg("81", "9", "0.01", "9c0001", "3")) == ev.TickReqParams(9, 0.01, "9c0001", 3)
    assert decode(msg("58", "1", "9", "3")) == ev.MarketDataTypeChanged(9, 3)


def test_tick_by_tick_all_four_kinds() -> None:
    assert decode(msg("99", "5", "1", "1764079200", "185.5", "100", "2", "NASDAQ", "T")) == ev.TickByTickLast(
        5, 1, 1764079200, 185.5, 100.0, 2, "NASDAQ", "T"
    )
    assert decode(msg("99", "5", "2", "1764079200", "185.5", "100", "0", "ARCA", "")).tick_type == 2
    assert decode(msg("99", "5", "3", "1764079200", "185.4", "185.6", "200", "300", "3")) == ev.TickByTickBidAsk(
        5, 1764079200, 185.4, 185.6, 200.0, 300.0, 3
    )
    assert decode(msg("99", "5", "4", "1764079200", "185.5")) == ev.TickByTickMidPoint(5, 1764079200, 185.5)


def test_tick_by_tick_none_is_kept_raw() -> None:
    assert decode(msg("99", "5", "0", "1764079200")) == ev.Unhandled(99, (b"5", b"0", b"1764079200"))


def test_real_time_bar() -> None:
    event = decode(msg("50", "3", "8", "1764079200", "10.5", "11", "10", "10.75", "1200", "10.6", "42"))
    assert event == ev.RealTimeBar(8, 1764079200, 10.5, 11.0, 10.0, 10.75, 1200.0, 10.6, 42)


def test_market_depth_and_l2() -> None:
    assert decode(msg("12", "1", "6", "0", "0", "1", "185.5", "200")) == ev.MarketDepth(6, 0, 0, 1, 185.5, 200.0)
    assert decode(msg("13", "1", "6", "2", "ARCA", "1", "0", "185.6", "100", "1")) == ev.MarketDepthL2(
        6, 2, "ARCA", 1, 0, 185.6, 100.0, True
    )


def test_connection_messages() -> None:
    assert decode(msg("9", "1", "1001")) == ev.NextValidId(1001)
    assert decode(msg("15", "1", "DU111,DU222,")) == ev.ManagedAccounts(("DU111", "DU222"))
    assert decode(msg("49", "1", "1764079200")) == ev.CurrentTime(1764079200)
    assert decode(msg("109", "1764079200123")) == ev.CurrentTimeInMillis(1764079200123)
    assert decode(msg("91", "4", "265598", "NASDAQ")) == ev.RerouteMktDataReq(4, 265598, "NASDAQ")
    assert decode(msg("52", "1", "4")) == ev.ContractDetailsEnd(4)


@pytest.mark.parametrize(
    ("version", "fields", "expected"),
    [
        (157, ("4", "2", "-1", "2104", "Market data farm connection is OK:usfarm"), ("", 0)),
        (176, ("4", "2", "5", "200", "No security definition", '{"x":1}'), ('{"x":1}', 0)),
        (200, ("4", "5", "200", "No security definition", "", "1764079200123"), ("", 1764079200123)),
    ],
)
def test_error_in_each_layout(version: int, fields: tuple[str, ...], expected: tuple[str, int]) -> None:
    event = decode(msg(*fields), version)
    assert isinstance(event, ev.Error)
    assert (event.advanced_order_reject_json, event.error_time_ms) == expected
    assert event.code in (2104, 200)


def test_error_text_is_unescaped() -> None:
    assert decode(msg("4", "-1", "2104", "Caf\\u00e9 farm", "", "0")).message == "Café farm"


APPLE_200 = (
    "10", "4", "AAPL", "STK", "", "", "0", "", "SMART", "USD", "AAPL", "NMS", "NMS", "265598", "0.01",
    "", "ACTIVETIM,LMT,MKT", "SMART,NASDAQ", "1", "0", "Apple Inc", "NASDAQ", "", "Technology", "Computers",
    "Computers", "US/Eastern", "20261125:0400-20261125:2000", "20261125:0930-20261125:1600", "", "0",
    "1", "ISIN", "US0378331005", "1", "", "", "26,26", "", "COMMON", "0.0001", "0.0001", "100", "0",
)  # fmt: skip


def test_contract_details_at_200() -> None:
    event = decode(msg(*APPLE_200), 200)
    assert isinstance(event, ev.ContractDetails)
    assert event.req_id == 4
    assert event.contract == Contract("AAPL", "STK", "SMART", "USD", 265598, "NASDAQ", "", 0.0, "", "", "AAPL", "NMS")
    assert (event.long_name, event.time_zone_id, event.stock_type) == ("Apple Inc", "US/Eastern", "COMMON")
    assert event.sec_id_list == (("ISIN", "US0378331005"),)
    assert (event.min_size, event.size_increment, event.suggested_size_increment) == (0.0001, 0.0001, 100.0)


def test_contract_details_at_157_has_version_and_md_size_multiplier() -> None:
    fields = list(APPLE_200)
    del fields[5]  # lastTradeDate: from 182
    del fields[-4:-1]  # size rules: from 164
    del fields[-1]  # ineligibility reasons: from 186
    fields.insert(1, "8")  # version field: until 164
    fields.insert(15, "1")  # mdSizeMultiplier after minTick: until 164
    event = decode(msg(*fields), 157)
    assert isinstance(event, ev.ContractDetails)
    assert event.contract.con_id == 265598 and event.min_size is None and event.market_rule_ids == "26,26"


def test_contract_details_splits_last_trade_date_and_time() -> None:
    fields = list(APPLE_200)
    fields[2:5] = ["ES", "FUT", "20261218 09:30 US/Central"]
    event = decode(msg(*fields), 200)
    assert event.contract.last_trade_date_or_contract_month == "20261218"
    assert event.last_trade_time == "09:30"


def test_unknown_message_is_kept_raw_not_raised() -> None:
    assert decode(msg("62", "1")) == ev.Unhandled(62, (b"1",))


@pytest.mark.parametrize(
    "payload",
    [msg("1", "6", "7"), msg("1", "6", "x", "1", "1.0", "1", "0"), msg("9", "1", "1", "extra"), b"1\x006"],
)
def test_malformed_messages_become_events_carrying_their_bytes(payload: bytes) -> None:
    event = decode(payload)
    assert isinstance(event, ev.MalformedMessage)
    assert event.msg_id in (1, 9)
    assert b"".join(event.fields) == payload.replace(b"\0", b"")


def test_a_message_id_that_is_not_a_number_is_malformed() -> None:
    event = decode(msg("hello", "1"))
    assert isinstance(event, ev.MalformedMessage) and event.msg_id == -1 and "not a number" in event.reason


def test_from_201_the_message_id_is_four_raw_bytes() -> None:
    payload = (1).to_bytes(4, "big") + msg("6", "7", "1", "185.5", "300", "0")
    assert decode(payload, 201) == ev.TickPrice(7, 1, 185.5, 300.0, 0)


def test_protobuf_messages_from_201_are_kept_raw() -> None:
    payload = (201 + 1).to_bytes(4, "big") + b"\x08\x07\x10\x01"
    assert decode(payload, 206) == ev.Unhandled(202, (b"\x08\x07\x10\x01",))


def test_decode_all_keeps_order_and_goes_on_after_a_bad_message() -> None:
    out: list[ev.Event] = []
    Decoder(200).decode_all([msg("9", "1", "5"), msg("1", "bad"), msg("57", "1", "2")], out)
    assert [type(e) for e in out] == [ev.NextValidId, ev.MalformedMessage, ev.TickSnapshotEnd]

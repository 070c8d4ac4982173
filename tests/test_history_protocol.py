"""History, option chains and symbol search on the wire: bytes in, events out; requests in, bytes out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import Contract, Decoder, encode_event, frame
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.server import historical_data_answer, parse_request

AAPL = Contract("AAPL", "STK", "SMART", "USD", primary_exchange="NASDAQ")
CONTRACT_AAPL = ("0", "AAPL", "STK", "", "", "", "", "SMART", "NASDAQ", "USD", "", "")


def msg(*fields: str) -> bytes:
    return b"".join(f.encode() + b"\0" for f in fields)


def decode(payload: bytes, version: int = 200) -> ev.Event:
    return Decoder(version).decode(payload)


BAR = ("20261203 09:30:00 US/Eastern", "227.5", "228.25", "227.0", "228.0", "1200", "227.61", "14")
BAR_EVENT = ev.HistoricalBar("20261203 09:30:00 US/Eastern", 227.5, 228.25, 227.0, 228.0, 1200.0, 227.61, 14)


# --- decoding ---------------------------------------------------------------------------------


def test_historical_data_from_196_is_bars_only_and_its_end_comes_separately() -> None:
    assert decode(msg("17", "4", "2", *BAR, *BAR), 196) == ev.HistoricalData(4, (BAR_EVENT, BAR_EVENT))
    end = decode(msg("108", "4", "20261202 09:30:00 US/Eastern", "20261203 16:00:00 US/Eastern"), 196)
    assert end == ev.HistoricalDataEnd(4, "20261202 09:30:00 US/Eastern", "20261203 16:00:00 US/Eastern")


def test_historical_data_before_196_carries_start_and_end_and_ends_the_answer() -> None:
    event = decode(msg("17", "4", "20261202", "20261203", "1", *BAR), 195)
    assert event == ev.HistoricalData(4, (BAR_EVENT,), "20261202", "20261203", True)


def test_bars_without_trades_have_minus_one_volume_wap_and_count() -> None:
    event = decode(msg("17", "4", "1", "1764772200", "1.5", "1.5", "1.5", "1.5", "-1", "-1", "-1"))
    assert event.bars[0] == ev.HistoricalBar("1764772200", 1.5, 1.5, 1.5, 1.5, -1.0, -1.0, -1)


def test_historical_data_update_reads_its_own_field_order() -> None:
    # reqId, barCount, date, open, close, high, low, wap, volume
    event = decode(msg("90", "4", "14", "20261203 09:30:00 US/Eastern", "227.5", "228.0", "228.25", "227.0",
                       "227.61", "1200"))  # fmt: skip
    assert event == ev.HistoricalDataUpdate(4, BAR_EVENT)


def test_head_timestamp() -> None:
    assert decode(msg("88", "9", "19801212-14:30:00")) == ev.HeadTimestamp(9, "19801212-14:30:00")


def test_historical_ticks_of_each_kind() -> None:
    mid = decode(msg("96", "5", "2", "1764772200", "0", "227.5", "0", "1764772201", "0", "227.55", "0", "1"))
    assert mid == ev.HistoricalTicks(
        5, (ev.HistoricalTick(1764772200, 227.5, 0.0), ev.HistoricalTick(1764772201, 227.55, 0.0)), True
    )
    bid_ask = decode(msg("97", "5", "1", "1764772200", "3", "227.5", "227.52", "300", "200", "0"))
    assert bid_ask == ev.HistoricalTicksBidAsk(
        5, (ev.HistoricalTickBidAsk(1764772200, 3, 227.5, 227.52, 300.0, 200.0),), False
    )
    last = decode(msg("98", "5", "1", "1764772200", "2", "227.51", "100", "NASDAQ", "T I", "1"))
    assert last == ev.HistoricalTicksLast(
        5, (ev.HistoricalTickLast(1764772200, 2, 227.51, 100.0, "NASDAQ", "T I"),), True
    )


def test_option_chain_rows_and_end() -> None:
    event = decode(msg("75", "6", "SMART", "756733", "SPY", "100", "2", "20261218", "20270115", "3", "590", "595",
                       "600"))  # fmt: skip
    assert event == ev.SecurityDefinitionOptionParameter(
        6, "SMART", 756733, "SPY", "100", ("20261218", "20270115"), (590.0, 595.0, 600.0)
    )
    assert decode(msg("76", "6")) == ev.SecurityDefinitionOptionParameterEnd(6)


def test_symbol_samples_gain_description_and_issuer_from_176() -> None:
    row = ("265598", "AAPL", "STK", "NASDAQ", "USD", "2", "OPT", "WAR")
    aapl = Contract("AAPL", "STK", "", "USD", 265598, "NASDAQ")
    assert decode(msg("79", "7", "1", *row), 175) == ev.SymbolSamples(
        7, (ev.ContractDescription(aapl, ("OPT", "WAR")),)
    )
    assert decode(msg("79", "7", "1", *row, "APPLE INC", "e1"), 176) == ev.SymbolSamples(
        7, (ev.ContractDescription(aapl._replace(issuer_id="e1"), ("OPT", "WAR"), "APPLE INC"),)
    )


@pytest.mark.parametrize(
    "payload",
    [
        msg("17", "4", "2", *BAR),  # says two bars, holds one
        msg("17", "4", "1", *BAR, "extra"),  # a field beyond its count
        msg("17", "4", "-1"),
        msg("17", "4", "999999999", *BAR),
        msg("96", "5", "1", "x", "0", "1", "1", "1"),
        msg("75", "6", "SMART", "1", "SPY", "100", "5", "20261218", "0"),
        msg("79", "7", "3", "1", "A", "STK", "X", "USD", "99999999"),
        msg("90", "4", "14", "d", "1", "1", "1"),
    ],
)
def test_a_message_that_does_not_add_up_is_malformed_not_an_exception(payload: bytes) -> None:
    assert isinstance(decode(payload), ev.MalformedMessage)


# --- round trips and arbitrary input ------------------------------------------------------------

VERSIONS = st.sampled_from([157, 176, 195, 196, 200])
texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
sizes = st.none() | st.integers(0, 10**12).map(float) | st.just(-1.0) | finite.map(abs)
ints = st.integers(-(2**31), 2**31 - 1)
times = st.integers(0, 2**40)
bars = st.builds(ev.HistoricalBar, texts, finite, finite, finite, finite, sizes, sizes, ints)
descriptions = st.builds(
    ev.ContractDescription,
    st.builds(
        lambda s, t, cur, con, pe, iss: Contract(s, t, "", cur, con, pe, issuer_id=iss),
        texts, texts, texts, ints, texts, texts,
    ),
    st.lists(texts, max_size=3).map(tuple),
    texts,
)  # fmt: skip


@st.composite
def history_events(draw: st.DrawFn, version: int) -> ev.Event:
    """Any new event as TWS at `version` can send it (layout-dependent fields left at their defaults)."""
    req_id = draw(ints)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        bar_list = tuple(draw(st.lists(bars, max_size=4)))
        if version >= 196:
            return ev.HistoricalData(req_id, bar_list)
        return ev.HistoricalData(req_id, bar_list, draw(texts), draw(texts), True)
    if kind == 1:
        return ev.HistoricalDataEnd(req_id, draw(texts), draw(texts))
    if kind == 2:
        return ev.HistoricalDataUpdate(req_id, draw(bars))
    if kind == 3:
        return ev.HeadTimestamp(req_id, draw(texts))
    if kind == 4:
        ticks = st.builds(ev.HistoricalTick, times, finite, sizes)
        return ev.HistoricalTicks(req_id, tuple(draw(st.lists(ticks, max_size=4))), draw(st.booleans()))
    if kind == 5:
        ticks = st.builds(ev.HistoricalTickBidAsk, times, st.integers(0, 3), finite, finite, sizes, sizes)
        return ev.HistoricalTicksBidAsk(req_id, tuple(draw(st.lists(ticks, max_size=4))), draw(st.booleans()))
    if kind == 6:
        ticks = st.builds(ev.HistoricalTickLast, times, st.integers(0, 3), finite, sizes, texts, texts)
        return ev.HistoricalTicksLast(req_id, tuple(draw(st.lists(ticks, max_size=4))), draw(st.booleans()))
    if kind == 7:
        return ev.SecurityDefinitionOptionParameter(
            req_id, draw(texts), draw(ints), draw(texts), draw(texts),
            tuple(draw(st.lists(texts, max_size=4))), tuple(draw(st.lists(finite, max_size=4))),
        )  # fmt: skip
    if kind == 8:
        return ev.SecurityDefinitionOptionParameterEnd(req_id)
    rows = tuple(draw(st.lists(descriptions, max_size=3)))
    if version < 176:  # no description or issuer id on the wire
        rows = tuple(d._replace(description="", contract=d.contract._replace(issuer_id="")) for d in rows)
    return ev.SymbolSamples(req_id, rows)


def _sized(value: float | None) -> float | None:
    """What a size becomes on the wire: IB's max-int sentinel reads back as unset."""
    return None if value == 2147483647.0 else value


def _normalised(event: ev.Event) -> ev.Event:
    if isinstance(event, ev.HistoricalData):
        return event._replace(bars=tuple(b._replace(volume=_sized(b.volume), wap=_sized(b.wap)) for b in event.bars))
    if isinstance(event, ev.HistoricalDataUpdate):
        b = event.bar
        return event._replace(bar=b._replace(volume=_sized(b.volume), wap=_sized(b.wap)))
    if isinstance(event, ev.HistoricalTicks | ev.HistoricalTicksLast):
        return event._replace(ticks=tuple(t._replace(size=_sized(t.size)) for t in event.ticks))
    if isinstance(event, ev.HistoricalTicksBidAsk):
        return event._replace(
            ticks=tuple(t._replace(bid_size=_sized(t.bid_size), ask_size=_sized(t.ask_size)) for t in event.ticks)
        )
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), version=VERSIONS)
def test_every_new_event_survives_the_round_trip_through_encode_event(data: st.DataObject, version: int) -> None:
    event = data.draw(history_events(version))
    assert decode(encode_event(event, version)[4:], version) == _normalised(event)


NEW_IDS = [b"17", b"108", b"90", b"88", b"96", b"97", b"98", b"75", b"76", b"79"]
field = st.one_of(
    st.sampled_from([b"", b"0", b"1", b"-1", b"2", b"3", b"185.5", b"1e308", b"nan", b"Infinite", b"99999999999"]),
    st.binary(max_size=10).map(lambda b: b.replace(b"\0", b"")),
)


@settings(max_examples=600, deadline=None)
@given(msg_id=st.sampled_from(NEW_IDS), fields=st.lists(field, max_size=40), version=VERSIONS)
def test_arbitrary_fields_under_a_new_id_give_an_event_never_an_exception(
    msg_id: bytes, fields: list[bytes], version: int
) -> None:
    event = decode(b"".join(x + b"\0" for x in [msg_id, *fields]), version)
    assert isinstance(event, ev.Event.__args__)  # type: ignore[attr-defined]


# --- requests -----------------------------------------------------------------------------------

EXPECTED: list[tuple[rq.Request, bytes]] = [
    (
        rq.ReqHistoricalData(3, AAPL, "20261203 16:00:00 US/Eastern", "2 D", "1 min", "TRADES", True, 1),
        msg(
            "20", "3", *CONTRACT_AAPL, "0", "20261203 16:00:00 US/Eastern", "1 min", "2 D", "1", "TRADES", "1", "0", ""
        ),
    ),
    (
        rq.ReqHistoricalData(3, AAPL, "", "1 D", "5 mins", "BID_ASK", False, 2, True, (("a", "1"), ("b", "2"))),
        msg("20", "3", *CONTRACT_AAPL, "0", "", "5 mins", "1 D", "0", "BID_ASK", "2", "1", "a=1;b=2;"),
    ),
    (rq.CancelHistoricalData(3), msg("25", "1", "3")),
    (rq.ReqHeadTimestamp(4, AAPL, "MIDPOINT", False, 2), msg("87", "4", *CONTRACT_AAPL, "0", "0", "MIDPOINT", "2")),
    (rq.CancelHeadTimestamp(4), msg("90", "4")),
    (
        rq.ReqHistoricalTicks(5, AAPL, "20261203 09:30:00 US/Eastern", "", 1000, "BID_ASK", True, True),
        msg("96", "5", *CONTRACT_AAPL, "0", "20261203 09:30:00 US/Eastern", "", "1000", "BID_ASK", "1", "1", ""),
    ),
    (rq.ReqSecDefOptParams(6, "SPY", "", "STK", 756733), msg("78", "6", "SPY", "", "STK", "756733")),
    (rq.ReqMatchingSymbols(7, "AAP"), msg("81", "7", "AAP")),
]


@pytest.mark.parametrize(("request_", "payload"), EXPECTED, ids=lambda x: type(x).__name__)
@pytest.mark.parametrize("version", [157, 176, 200])
def test_history_request_bytes(request_: rq.Request, payload: bytes, version: int) -> None:
    assert rq.encode_request(request_, version) == frame(payload)


@pytest.mark.parametrize(("request_", "payload"), EXPECTED, ids=lambda x: type(x).__name__)
def test_history_requests_parse_back_on_the_server_side(request_: rq.Request, payload: bytes) -> None:
    assert parse_request(payload, 200) == request_


def test_a_history_answer_is_one_message_before_196_and_bars_then_end_from_196() -> None:
    assert historical_data_answer(1, [BAR_EVENT], "a", "b", 195) == [ev.HistoricalData(1, (BAR_EVENT,), "a", "b", True)]
    assert historical_data_answer(1, [BAR_EVENT], "a", "b", 196) == [
        ev.HistoricalData(1, (BAR_EVENT,)),
        ev.HistoricalDataEnd(1, "a", "b"),
    ]

"""History, option chains and symbol search: our decoder against the official client's on the same bytes,
and our request encoders against the official client's own bytes.

The approach of tests/test_differential.py (whose helpers this reuses): each event is written with
`encode_event`, decoded by our `Decoder` and by `ibapi.decoder.Decoder.interpret` fed as
`EClient.run` feeds it, and ibapi's callbacks, normalised to plain values, must equal the
callbacks our event stands for. ibapi reports an option chain's expirations and strikes as sets;
we keep TWS's order, so they compare as sets. Before server 196 ibapi calls historicalDataEnd
right after the bars of the same message; our event carries that as `ends`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibapi import comm
from ibapi.common import BarData, HistoricalTick, HistoricalTickBidAsk, HistoricalTickLast
from ibapi.contract import ContractDescription
from ibapi.decoder import Decoder as IbDecoder
from ibapi.wrapper import EWrapper

from bridge.protocol import Contract, Decoder, encode_event
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from tests.test_differential import _size
from tests.test_history_protocol import history_events
from tests.test_requests import RecordingServer, ib_contract, official  # noqa: F401 (a fixture)

CORE_VERSIONS = (157, 176, 200)
# Where a layout of these messages changes (176 symbolSamples, 196 historicalDataEnd), and around it.
BORDER_VERSIONS = (157, 175, 176, 195, 196, 200)

CALLBACKS = [
    "historicalData", "historicalDataEnd", "historicalDataUpdate", "headTimestamp", "historicalTicks",
    "historicalTicksBidAsk", "historicalTicksLast", "securityDefinitionOptionParameter",
    "securityDefinitionOptionParameterEnd", "symbolSamples", "error",
]  # fmt: skip


class Recorder(EWrapper):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []


def _recording(name: str) -> Any:
    def record(self: Recorder, *args: Any) -> None:
        self.calls.append((name, args))

    record.__name__ = name
    return record


for _name in CALLBACKS:
    setattr(Recorder, _name, _recording(_name))

_decoders: dict[int, IbDecoder] = {}


def _plain(value: Any) -> Any:
    """An ibapi callback argument as plain comparable values."""
    if isinstance(value, BarData):
        return ("bar", value.date, value.open, value.high, value.low, value.close, _size(value.volume),
                _size(value.wap), value.barCount)  # fmt: skip
    if isinstance(value, HistoricalTick):
        return ("tick", value.time, value.price, _size(value.size))
    if isinstance(value, HistoricalTickBidAsk):
        a = value.tickAttribBidAsk
        mask = int(a.askPastHigh) | int(a.bidPastLow) << 1
        return ("bidask", value.time, mask, value.priceBid, value.priceAsk, _size(value.sizeBid), _size(value.sizeAsk))
    if isinstance(value, HistoricalTickLast):
        a = value.tickAttribLast
        mask = int(a.pastLimit) | int(a.unreported) << 1
        return ("last", value.time, mask, value.price, _size(value.size), value.exchange, value.specialConditions)
    if isinstance(value, ContractDescription):
        c = value.contract
        return ("desc", c.conId, c.symbol, c.secType, c.primaryExchange, c.currency,
                tuple(value.derivativeSecTypes), c.description, c.issuerId)  # fmt: skip
    if isinstance(value, set):
        return frozenset(value)
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def ibapi_calls(payload: bytes, version: int) -> list[tuple[str, tuple[Any, ...]]]:
    decoder = _decoders.get(version)
    if decoder is None:
        decoder = _decoders[version] = IbDecoder(None, version)
    recorder = Recorder()
    decoder.wrapper = recorder
    cut = payload.index(b"\0")
    decoder.interpret(comm.read_fields(payload[cut + 1 :]), int(payload[:cut]))
    return [(name, tuple(_plain(a) for a in args)) for name, args in recorder.calls]


def _bar(b: ev.HistoricalBar) -> tuple[Any, ...]:
    return ("bar", b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.bar_count)


def as_ibapi_calls(e: ev.Event) -> list[tuple[str, tuple[Any, ...]]]:
    """The callbacks ibapi makes for the message our event was decoded from."""
    match e:
        case ev.HistoricalData():
            calls = [("historicalData", (e.req_id, _bar(b))) for b in e.bars]
            return calls + ([("historicalDataEnd", (e.req_id, e.start, e.end))] if e.ends else [])
        case ev.HistoricalDataEnd():
            return [("historicalDataEnd", tuple(e))]
        case ev.HistoricalDataUpdate():
            return [("historicalDataUpdate", (e.req_id, _bar(e.bar)))]
        case ev.HeadTimestamp():
            return [("headTimestamp", tuple(e))]
        case ev.HistoricalTicks():
            return [("historicalTicks", (e.req_id, tuple(("tick", *t) for t in e.ticks), e.done))]
        case ev.HistoricalTicksBidAsk():
            return [("historicalTicksBidAsk", (e.req_id, tuple(("bidask", *t) for t in e.ticks), e.done))]
        case ev.HistoricalTicksLast():
            return [("historicalTicksLast", (e.req_id, tuple(("last", *t) for t in e.ticks), e.done))]
        case ev.SecurityDefinitionOptionParameter():
            args = (e.req_id, e.exchange, e.underlying_con_id, e.trading_class, e.multiplier,
                    frozenset(e.expirations), frozenset(e.strikes))  # fmt: skip
            return [("securityDefinitionOptionParameter", args)]
        case ev.SecurityDefinitionOptionParameterEnd():
            return [("securityDefinitionOptionParameterEnd", tuple(e))]
        case ev.SymbolSamples():
            rows = tuple(
                ("desc", d.contract.con_id, d.contract.symbol, d.contract.sec_type, d.contract.primary_exchange,
                 d.contract.currency, d.derivative_sec_types, d.description, d.contract.issuer_id)
                for d in e.descriptions
            )  # fmt: skip
            return [("symbolSamples", (e.req_id, rows))]
    raise AssertionError(f"not a history event: {e!r}")


def check(event: ev.Event, version: int) -> ev.Event:
    payload = encode_event(event, version)[4:]
    ours = Decoder(version).decode(payload)
    assert not isinstance(ours, ev.MalformedMessage | ev.Unhandled), ours
    theirs = ibapi_calls(payload, version)
    assert theirs or isinstance(ours, ev.HistoricalData), f"ibapi made no callback for {payload!r}"
    assert as_ibapi_calls(ours) == theirs, payload  # a message of no bars makes no call (from 196)
    return ours


@pytest.mark.parametrize("version", CORE_VERSIONS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_new_message_matches_ibapi(version: int, data: st.DataObject) -> None:
    check(data.draw(history_events(version)), version)


BAR = ev.HistoricalBar("20261203 09:30:00 US/Eastern", 227.5, 228.25, 227.0, 228.0, 1200.0, 227.61, 14)
MID_BAR = ev.HistoricalBar("1764772200", 1.0842, 1.0845, 1.0841, 1.0844, -1.0, -1.0, -1)
AAPL = Contract("AAPL", "STK", "", "USD", 265598, "NASDAQ")


@pytest.mark.parametrize("version", BORDER_VERSIONS)
@pytest.mark.parametrize(
    "event",
    [
        ev.HistoricalDataUpdate(4, BAR),
        ev.HistoricalDataUpdate(4, MID_BAR),
        ev.HeadTimestamp(5, "19801212-14:30:00"),
        ev.HistoricalTicks(6, (ev.HistoricalTick(1764772200, 1.08425, 0.0),), True),
        ev.HistoricalTicksBidAsk(6, (ev.HistoricalTickBidAsk(1764772200, 1, 227.5, 227.52, 300.0, None),), False),
        ev.HistoricalTicksLast(6, (ev.HistoricalTickLast(1764772200, 3, 227.51, 100.0, "NASDAQ", "T I"),), True),
        ev.SecurityDefinitionOptionParameter(7, "SMART", 756733, "SPY", "100", ("20261218",), (590.0, 595.0)),
        ev.SecurityDefinitionOptionParameterEnd(7),
    ],
)
def test_examples_match_ibapi(version: int, event: ev.Event) -> None:
    check(event, version)


@pytest.mark.parametrize("version", BORDER_VERSIONS)
def test_history_answers_match_ibapi_in_both_layouts(version: int) -> None:
    if version >= 196:
        assert check(ev.HistoricalData(3, (BAR, MID_BAR)), version).ends is False
        check(ev.HistoricalDataEnd(3, "20261202 09:30:00 US/Eastern", "20261203 16:00:00 US/Eastern"), version)
    else:
        assert check(ev.HistoricalData(3, (BAR, MID_BAR), "20261202", "20261203", True), version).ends


@pytest.mark.parametrize("version", BORDER_VERSIONS)
def test_symbol_samples_match_ibapi_in_both_layouts(version: int) -> None:
    issuer = version >= 176
    row = ev.ContractDescription(
        AAPL._replace(issuer_id="e1" if issuer else ""), ("OPT",), "APPLE INC" if issuer else ""
    )
    check(ev.SymbolSamples(8, (row, ev.ContractDescription(AAPL._replace(symbol="AAPB"), ()))), version)


# --- the official client writes the same request bytes -----------------------------------------------

SPY = Contract("SPY", "STK", "SMART", "USD", primary_exchange="ARCA")


def _tag_values(pairs: list[tuple[str, str]]) -> list[Any]:
    from ibapi.tag_value import TagValue

    return [TagValue(t, v) for t, v in pairs]


CASES: list[tuple[Any, rq.Request]] = [
    (
        lambda c: c.reqHistoricalData(3, ib_contract(SPY), "20261203 16:00:00 US/Eastern", "2 D", "1 min", "TRADES",
                                      1, 1, False, []),
        rq.ReqHistoricalData(3, SPY, "20261203 16:00:00 US/Eastern", "2 D", "1 min", "TRADES", True, 1),
    ),
    (
        lambda c: c.reqHistoricalData(4, ib_contract(SPY), "", "3600 S", "5 secs", "BID_ASK", 0, 2, True,
                                      _tag_values([("a", "1")])),
        rq.ReqHistoricalData(4, SPY, "", "3600 S", "5 secs", "BID_ASK", False, 2, True, (("a", "1"),)),
    ),
    (lambda c: c.cancelHistoricalData(4), rq.CancelHistoricalData(4)),
    (
        lambda c: c.reqHeadTimeStamp(5, ib_contract(SPY), "MIDPOINT", 0, 2),
        rq.ReqHeadTimestamp(5, SPY, "MIDPOINT", False, 2),
    ),
    (lambda c: c.cancelHeadTimeStamp(5), rq.CancelHeadTimestamp(5)),
    (
        lambda c: c.reqHistoricalTicks(6, ib_contract(SPY), "20261203 09:30:00 US/Eastern", "", 1000, "TRADES", 1,
                                       True, []),
        rq.ReqHistoricalTicks(6, SPY, "20261203 09:30:00 US/Eastern", "", 1000, "TRADES", True, True),
    ),
    (lambda c: c.reqSecDefOptParams(7, "SPY", "", "STK", 756733), rq.ReqSecDefOptParams(7, "SPY", "", "STK", 756733)),
    (lambda c: c.reqMatchingSymbols(8, "SP"), rq.ReqMatchingSymbols(8, "SP")),
]  # fmt: skip


def test_our_history_requests_match_the_official_clients_bytes(official: tuple[object, RecordingServer]) -> None:  # noqa: F811
    client, server = official
    server.next_frame(0)  # startApi
    for index, (call, ours) in enumerate(CASES, start=1):
        call(client)
        assert server.next_frame(index) == rq.encode_request(ours, server.version)[4:], type(ours).__name__

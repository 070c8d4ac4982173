"""The hot-path payload builders (bridge.payload) against a plain reference: the head every payload
shares, then the event's fields, as docs/bus.md lists them. Same bytes on the bus, same latest-values
picture, same seq, for any tick."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from bridge import payload as pl
from bridge.book import Line, LineKey
from bridge.protocol import Contract, Decoder, encode_event
from bridge.protocol import events as ev

tick_types = st.integers(min_value=0, max_value=120)  # known tick types and unknown ones (tick_N)
prices = st.floats(allow_nan=False, allow_infinity=False)
sizes = st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False)
strings = st.text(max_size=30) | st.integers(min_value=0, max_value=2**62).map(str)  # timestamps too
events = st.one_of(
    st.builds(ev.TickPrice, st.just(1), tick_types, prices, sizes, st.integers(0, 7)),
    st.builds(ev.TickSize, st.just(1), tick_types, sizes),
    st.builds(ev.TickString, st.just(1), tick_types, strings),
    st.builds(ev.TickGeneric, st.just(1), tick_types, prices),
)


def reference(e: Any, line: Line, recv_ns: int) -> dict[str, Any]:
    """What a payload is: the head (docs/bus.md), then the tick's own fields; `latest` updated."""
    name = pl.tick_name(e.tick_type)
    tws_time = None
    if isinstance(e, ev.TickString) and e.tick_type in pl._TIMESTAMP_TICKS and e.value.isdigit():
        tws_time = int(e.value)
    event = {ev.TickPrice: "tick_price", ev.TickSize: "tick_size", ev.TickString: "tick_string",
             ev.TickGeneric: "tick_generic"}[type(e)]  # fmt: skip
    line.seq += 1
    p = {"v": pl.SCHEMA, "kind": line.key.kind, "event": event, "instrument": line.key.instrument, "seq": line.seq,
         "recv_ns": recv_ns, "tws_time": tws_time, "tick": name, "tick_type": e.tick_type}  # fmt: skip
    if isinstance(e, ev.TickPrice):
        p |= {"price": e.price, "size": e.size, "attrib": e.attrib_mask}
        line.latest[name] = e.price
        if e.size is not None and e.tick_type in pl._SIZE_OF_PRICE:
            line.latest[pl._SIZE_OF_PRICE[e.tick_type]] = e.size
    elif isinstance(e, ev.TickSize):
        p["size"] = e.size
        line.latest[name] = e.size
    else:
        p["value"] = e.value
        line.latest[name] = e.value
    return p


def _line() -> Line:
    return Line(LineKey("AAPL.STK.SMART.USD", "quote"), Contract("AAPL", "STK", "SMART", "USD"), 1, b"quote/AAPL")


@given(st.lists(events, min_size=1, max_size=20), st.integers(min_value=0, max_value=2**63 - 1))
def test_builders_publish_what_the_reference_says(ticks: list[Any], recv_ns: int) -> None:
    ours, theirs = _line(), _line()
    for e in ticks:
        built = pl.BUILDERS[type(e)](e, ours, recv_ns)
        assert msgpack.packb(built) == msgpack.packb(reference(e, theirs, recv_ns))
    assert (ours.seq, ours.latest) == (theirs.seq, theirs.latest)


# --- the field builders (wire fields -> payload) against the typed path (decode, then build) ----

wire_events = st.one_of(
    st.builds(ev.TickPrice, st.integers(0, 2**31 - 1), tick_types, prices, sizes, st.integers(0, 7)),
    st.builds(ev.TickSize, st.integers(0, 2**31 - 1), tick_types, sizes),
    st.builds(ev.TickString, st.integers(0, 2**31 - 1), tick_types, strings),
    st.builds(ev.TickGeneric, st.integers(0, 2**31 - 1), tick_types, prices),
)
field_bytes = st.sampled_from([b"", b"1", b"-1", b"32", b"+4", b" 7", b"1.5", b"1e400", b"nan", b"Infinite", b"x",
                               b"\\u00e9", b"\xff", b"2147483647", b"9223372036854775807"])  # fmt: skip
# Any field list after a hot message id: too few fields, too many, values that do not convert.
odd_payloads = st.builds(
    lambda msg_id, fields: b"\0".join([msg_id, *fields, b""]),
    st.sampled_from([b"1", b"2", b"45", b"46"]),
    st.lists(field_bytes, max_size=9),
)


def _both_ways(payload: bytes, version: int, recv_ns: int) -> tuple[object, object]:
    """(what the field builder publishes, what decode-then-build publishes), each with the line's
    state after it; `Malformed` where a path refuses the message."""
    fields = payload.split(b"\0")
    fast_line, typed_line = _line(), _line()
    entry = pl.field_builders(Decoder(version)).get(fields[0])
    assert entry is not None
    try:
        fast: object = msgpack.packb(entry[1](fields, fast_line, recv_ns))
    except (ValueError, IndexError, OverflowError, TypeError):
        fast = "Malformed"
    event = Decoder(version).decode(payload)
    if isinstance(event, ev.MalformedMessage):
        typed: object = "Malformed"
    else:
        assert entry[0] is type(event)
        typed = msgpack.packb(pl.BUILDERS[type(event)](event, typed_line, recv_ns))
    return (fast, fast_line.seq, fast_line.latest), (typed, typed_line.seq, typed_line.latest)


@given(wire_events, st.sampled_from([157, 163, 176, 186, 196, 200]), st.integers(0, 2**63 - 1))
def test_field_builders_publish_what_decoding_then_building_publishes(e: Any, version: int, recv_ns: int) -> None:
    payload = encode_event(e, version)[4:]  # what TWS sends, without the length prefix
    fast, typed = _both_ways(payload, version, recv_ns)
    assert fast == typed and fast[0] != "Malformed"


@given(odd_payloads, st.integers(0, 2**63 - 1))
def test_field_builders_refuse_exactly_what_the_decoder_calls_malformed(payload: bytes, recv_ns: int) -> None:
    fast, typed = _both_ways(payload, 176, recv_ns)
    assert fast == typed  # a refused message leaves the line untouched, too


def test_no_field_builders_where_message_ids_are_raw_integers() -> None:
    assert pl.field_builders(Decoder(176)) and not pl.field_builders(Decoder(201))


def test_tick_types_outside_the_table_are_named_alike_every_time_and_remembered_within_a_bound() -> None:
    """TWS's own input decides which tick type fields come: naming one is cached, the cache bounded."""
    line = _line()
    fields = [b"46", b"6", b"1", b"47", b"x", b""]
    first = pl._tick_string_fields(fields, line, 1)
    again = pl._tick_string_fields(fields, line, 1)
    assert (first["tick"], first["tick_type"]) == (again["tick"], again["tick_type"]) == ("tick_47", 47)
    for n in range(1000, 1000 + 2 * pl.MAX_TICK_FIELDS):
        pl._tick_string_fields([b"46", b"6", b"1", b"%d" % n, b"x", b""], line, 1)
    assert len(pl._TICK_BY_FIELD) <= pl.MAX_TICK_FIELDS

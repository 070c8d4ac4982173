"""Outside input, property-based: whatever TWS (or a broken proxy) sends, the decoder yields
events or raises ProtocolError, and chunking never changes what comes out."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import ClientConnection, Decoder, FrameReader, ProtocolError, ServerConnection, frame
from bridge.protocol import events as ev
from bridge.protocol.handshake import server_hello
from bridge.protocol.server import encode_event, parse_request

EVENT_TYPES = tuple(t for t in ev.Event.__args__ if t is not ev.Connected)  # type: ignore[attr-defined]
IDS = [b"1", b"2", b"4", b"9", b"10", b"12", b"13", b"15", b"21", b"45", b"46", b"47", b"49", b"50", b"52"]
IDS += [b"57", b"58", b"81", b"91", b"99", b"109", b"3", b"-1", b""]

field = st.one_of(
    st.sampled_from([b"", b"0", b"1", b"-1", b"2", b"185.5", b"1e308", b"nan", b"Infinite", b"9223372036854775807"]),
    st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"")),
)
message = st.builds(
    lambda i, fs: b"".join(x + b"\0" for x in [i, *fs]), st.sampled_from(IDS), st.lists(field, max_size=60)
)


@settings(max_examples=400, deadline=None)
@given(payload=st.one_of(message, st.binary(max_size=200)), version=st.sampled_from([157, 166, 176, 194, 200, 201]))
def test_any_payload_decodes_to_an_event(payload: bytes, version: int) -> None:
    event = Decoder(version).decode(payload)
    assert isinstance(event, EVENT_TYPES)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(message, max_size=30), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_chunking_never_changes_the_events(payloads: list[bytes], cuts: list[int]) -> None:
    stream = server_hello(200, "t") + b"".join(frame(p) for p in payloads)

    def run(chunks: list[bytes]) -> list[ev.Event]:
        conn = ClientConnection()
        conn.initiate()
        out: list[ev.Event] = []
        for chunk in chunks:
            conn.receive_data(chunk)
            out += conn.events()
        return out

    whole = run([stream])
    assert len(whole) == 1 + len(payloads)
    assert run(_split(stream, cuts)) == whole


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_arbitrary_bytes_give_events_or_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    conn = ClientConnection(max_frame=1 << 16)
    conn.initiate()
    try:
        for chunk in _split(data, cuts):
            conn.receive_data(chunk)
            for event in conn.events():
                assert isinstance(event, (ev.Connected, *EVENT_TYPES))
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_the_frame_reader_returns_exactly_the_bytes_framed(data: bytes) -> None:
    reader = FrameReader()
    payloads = [data[i : i + 7] for i in range(0, len(data), 7)]
    stream = b"".join(frame(p) for p in payloads)
    for i in range(0, len(stream), 3):
        reader.feed(stream[i : i + 3])
    assert reader.frames() == payloads


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(message, st.binary(max_size=200)), version=st.sampled_from([157, 176, 200, 201]))
def test_any_client_message_parses_to_a_request_or_is_flagged(payload: bytes, version: int) -> None:
    parse_request(payload, version)  # must not raise


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_a_server_fed_garbage_raises_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        ServerConnection().receive_data(b"API\0" + data)


sizes = st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False))
prices = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
words = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=20)
tick_events = st.one_of(
    st.builds(ev.TickPrice, ints, ints, prices, sizes, st.integers(0, 7)),
    st.builds(ev.TickSize, ints, ints, sizes),
    st.builds(ev.TickString, ints, ints, words),
    st.builds(ev.TickByTickLast, ints, st.sampled_from([1, 2]), ints, prices, sizes, st.integers(0, 3), words, words),
    st.builds(ev.TickByTickBidAsk, ints, ints, prices, prices, sizes, sizes, st.integers(0, 3)),
    st.builds(ev.Error, ints, ints, words, words, st.integers(0, 2**62)),
)


@settings(max_examples=300, deadline=None)
@given(event=tick_events)
def test_what_the_simulator_encodes_decodes_to_the_same_event(event: ev.Event) -> None:
    assert Decoder(200).decode(encode_event(event, 200)[4:]) == event

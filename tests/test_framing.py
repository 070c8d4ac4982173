"""The receive buffer: frames come out whole, whatever the chunking."""

import pytest

from bridge.protocol import FrameReader, ProtocolError, frame


def test_frame_prefixes_big_endian_length() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00"


def test_frames_fed_one_byte_at_a_time_come_out_whole() -> None:
    stream = frame(b"1\x00one\x00") + frame(b"") + frame(b"two" * 1000)
    reader = FrameReader()
    got: list[bytes] = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        got += reader.frames()
    assert got == [b"1\x00one\x00", b"", b"two" * 1000]
    assert reader.buffered == 0


def test_many_frames_in_one_chunk_and_a_partial_tail() -> None:
    reader = FrameReader()
    reader.feed(frame(b"a") + frame(b"b") + frame(b"cc")[:3])
    assert reader.frames() == [b"a", b"b"]
    assert reader.buffered == 3
    reader.feed(frame(b"cc")[3:])
    assert reader.frames() == [b"cc"]


def test_nothing_comes_out_until_a_frame_is_complete() -> None:
    reader = FrameReader()
    data = frame(b"x" * 100)
    reader.feed(data[:50])
    assert reader.frames() == []
    reader.feed(data[50:])
    assert reader.frames() == [b"x" * 100]


def test_a_frame_over_the_limit_is_a_protocol_error_naming_its_size() -> None:
    reader = FrameReader(max_frame=1000)
    reader.feed(b"\x00\x01\x00\x00")
    with pytest.raises(ProtocolError, match="65536 bytes is over the 1000-byte limit"):
        reader.frames()


def test_frames_before_an_oversized_one_are_not_lost() -> None:
    reader = FrameReader(max_frame=10)
    reader.feed(frame(b"ok") + b"\xff\xff\xff\xff")
    assert reader.frames() == [b"ok"]
    with pytest.raises(ProtocolError):
        reader.frames()

"""The decode benchmark's claims, on a small stream: ratios only, never a wall-clock limit.

Ours must read the stream at least twice as fast as the official client's decoder (driven
inline, no thread) and faster than ib_async's, and all three must deliver the same messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` is not an installed package

from bench.decode import compare, fastest, in_process, make_stream, rate


@pytest.fixture(scope="module")
def results() -> tuple:
    stream = make_stream(50_000, seed=7)
    ours, official, ib_async = fastest(3, in_process(stream.chunks(), stream))
    return stream, ours, official, ib_async


def test_all_readers_deliver_the_same_messages(results: tuple) -> None:
    stream, *readers = results
    assert compare(stream, readers) == []


def test_ours_is_at_least_twice_the_official_decoder(results: tuple) -> None:
    stream, ours, official, _ = results
    assert rate(ours, stream) >= 2 * rate(official, stream)


def test_ours_is_ahead_of_ib_async(results: tuple) -> None:
    stream, ours, _, ib_async = results
    assert rate(ours, stream) > rate(ib_async, stream)

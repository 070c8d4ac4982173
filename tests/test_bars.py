"""consumers.bars' joining of history and live bars, with trades as bytes-free values (sans-IO)."""

from __future__ import annotations

from consumers.bars import PARTIAL, BarBuilder

S = 1_000_000_000  # ns a second
SUBSCRIBED = 100 * S + S // 2  # half way through the bar of second 100; history ends at 100


def joined() -> BarBuilder:
    builder = BarBuilder(seconds=1, grace=0.3)
    builder.join("AMD", SUBSCRIBED, history_end=100)
    return builder


def test_a_trade_after_subscribing_makes_the_first_live_bar_partial_and_no_fill_is_asked() -> None:
    builder = joined()
    assert builder.add("AMD", 99 * S + 5, 10.0, 1) == []  # its bar came from history
    assert builder.add("AMD", 100 * S + S * 3 // 4, 10.5, 2) == []
    (bar,) = builder.add("AMD", 101 * S + 1, 11.0, 1)
    assert (bar.start, bar.note, bar.volume) == (100, PARTIAL, 2)
    assert builder.fills_due(102 * S) == []


def test_without_a_trade_after_subscribing_the_subscription_bar_comes_from_history_once_complete() -> None:
    """Otherwise the trades of that second before the subscription would be in no bar: a gap."""
    builder = joined()
    assert builder.add("AMD", 101 * S + 1, 11.0, 1) == []  # the next bar opens; 100 is still owed
    assert builder.fills_due(101 * S + S // 10) == []  # not before its end plus grace
    assert builder.next_due(101 * S) == 0.3  # the loop wakes for it
    assert builder.fills_due(101 * S + S * 3 // 10) == [("AMD", 100)]
    assert builder.fills_due(102 * S) == []  # asked once
    (bar,) = builder.due(102 * S + S * 3 // 10)
    assert (bar.start, bar.note) == (101, "")


def test_without_history_there_is_nothing_to_fill() -> None:
    builder = BarBuilder(seconds=1, grace=0.3)
    builder.join("AMD", SUBSCRIBED)
    assert builder.fills_due(200 * S) == [] and builder.next_due(200 * S) is None

"""hbars.BarSeries: TWS's backfills and updates in, bars to publish out. Whatever TWS sends, a
consumer that keeps every complete bar has each bar once, in time order, and never sees it change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.hbars import BarSeries, BarSpec

BAR = 5


def row(t: int, close: float = 1.0) -> list[object]:
    return [t, 1.0, max(1.0, close), min(1.0, close), close, 10.0, None, 1]


def test_a_backfill_publishes_its_complete_bars_then_the_forming_one() -> None:
    series = BarSeries()
    series.receive([row(0), row(5)])
    series.receive([row(10)])
    out = series.backfill_end()
    assert [(complete, r[0]) for complete, r in out] == [(True, 0), (True, 5), (False, 10)]
    assert series.backfilled and series.forming == row(10) and series.last(2) == [row(0), row(5)]


def test_the_forming_bar_closes_when_tws_sends_a_later_one_and_never_changes_after() -> None:
    series = BarSeries()
    series.receive([row(0)])
    series.backfill_end()
    assert series.update(row(0, 2.0)) == [(False, row(0, 2.0))]
    assert series.update(row(0, 2.0)) == [], "nothing new: nothing published"
    assert series.update(row(5, 3.0)) == [(True, row(0, 2.0)), (False, row(5, 3.0))]
    assert series.update(row(0, 9.0)) == [], "a late update of a complete bar is dropped"
    assert series.last(5) == [row(0, 2.0)]


def test_a_backfill_after_an_outage_publishes_only_what_consumers_missed() -> None:
    series = BarSeries()
    series.receive([row(0), row(5)])
    series.backfill_end()  # 0 complete, 5 forming when TWS went away
    series.receive([row(0, 7.0), row(5, 2.0), row(10), row(15)])
    out = series.backfill_end()
    assert out == [(True, row(5, 2.0)), (True, row(10)), (False, row(15))]
    assert series.last(10) == [row(0), row(5, 2.0), row(10)], "a bar published complete is never sent again"


def test_a_line_keeps_the_last_bars_it_holds_for_late_joiners() -> None:
    series = BarSeries(keep=3)
    series.receive([row(t) for t in range(0, 50, 5)])
    out = series.backfill_end()
    assert [r[0] for _, r in out] == [30, 35, 40, 45]
    assert [r[0] for r in series.last(100)] == [30, 35, 40] and series.last(0) == []


def test_bar_specs_name_their_topic_and_backfill_reach() -> None:
    assert BarSpec("1 min", "TRADES", False).topic == "1min/TRADES"
    assert BarSpec("5 mins", "MIDPOINT", True).topic == "5mins/MIDPOINT/rth"
    reach = {bar: BarSpec(bar, "TRADES", False).duration for bar in ("5 secs", "1 min", "2 mins", "1 hour", "1 day")}
    assert reach == {"5 secs": "3600 S", "1 min": "1 D", "2 mins": "2 D", "1 hour": "30 D", "1 day": "1 Y"}


# TWS's messages for one line: backfills (bars up to some time) and updates, with times on the bar
# grid that mostly go forward and sometimes repeat or go back (a late or duplicate update).
step = st.one_of(
    st.tuples(st.just("update"), st.integers(-2, 3), st.floats(0.5, 2.0)),
    st.tuples(st.just("backfill"), st.integers(-3, 4), st.floats(0.5, 2.0)),
)


@given(st.lists(step, max_size=60))
def test_whatever_tws_sends_complete_bars_come_once_in_order_and_updates_only_after_them(
    steps: list[tuple[str, int, float]],
) -> None:
    series = BarSeries(keep=1000)
    now = 100
    published: list[tuple[bool, list[object]]] = []
    for what, move, close in steps:
        now = max(0, now + move * BAR)
        if what == "update":
            published += series.update(row(now, close))
        else:
            series.receive([row(t, close) for t in range(max(0, now - 20), now + BAR, BAR)])
            published += series.backfill_end()
    closed = [r[0] for complete, r in published if complete]
    assert closed == sorted(set(closed)), "each complete bar once, in time order"
    last_closed = -1
    for complete, r in published:
        assert r[0] > last_closed, "nothing about a bar after it closed"  # type: ignore[operator]
        if complete:
            last_closed = r[0]  # type: ignore[assignment]
    assert [r[0] for r in series.complete] == closed

"""TWS drops clients that send over 50 messages a second; the pacer keeps us under it with room to spare."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.pacing import Pacer


def drain(pacer: Pacer, count: int, now: float) -> list[float]:
    """Send `count` messages as fast as the pacer allows; their send times."""
    times = []
    for _ in range(count):
        now += pacer.wait(now)
        pacer.sent(now)
        times.append(now)
    return times


def test_a_burst_is_spaced_and_held_to_the_window_budget() -> None:
    pacer = Pacer(limit=3, window=1.0, spacing=0.1)
    times = drain(pacer, 5, 10.0)
    assert times[:3] == pytest.approx([10.0, 10.1, 10.2])
    assert times[3] == pytest.approx(11.0)  # the fourth waits until the first leaves the window
    assert times[4] == pytest.approx(11.1)


def test_clear_forgets_the_last_connection() -> None:
    pacer = Pacer(limit=1)
    pacer.sent(0.0)
    assert pacer.wait(0.0) > 0
    pacer.clear()
    assert pacer.wait(0.0) == 0


def test_the_default_budget_leaves_room_under_tws_50_per_second() -> None:
    times = drain(Pacer(), 500, 0.0)
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst <= 45
    # Even if every message of a 1.2 s stretch arrived at TWS bunched into one second, it stays under 50.
    assert max(sum(1 for t in times if start <= t < start + 1.2) for start in times) <= 45
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.02 - 1e-9


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_no_window_ever_holds_more_than_the_limit_whenever_messages_are_offered(gaps: list[float]) -> None:
    """Messages offered at arbitrary times, each sent as soon as the pacer allows (in order)."""
    pacer = Pacer(limit=45, window=1.2, spacing=0.02)
    now, sent_at = 0.0, []
    for gap in gaps:
        now = max(now, (sent_at[-1] if sent_at else 0.0)) + gap
        now += pacer.wait(now)
        pacer.sent(now)
        sent_at.append(now)
    assert all(sum(1 for t in sent_at if start <= t < start + 1.2) <= 45 for start in sent_at)
    assert all(b - a >= 0.02 - 1e-9 for a, b in itertools.pairwise(sent_at))

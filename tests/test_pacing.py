"""TWS drops clients that send over 50 messages a second; the pacer keeps us under it."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.pacing import Pacer


def test_a_burst_goes_out_up_to_the_limit_and_the_rest_waits_in_order() -> None:
    pacer: Pacer[int] = Pacer(limit=3, window=1.0)
    out = [x for i in range(5) for x in pacer.submit(i, now=10.0)]
    assert out == [0, 1, 2] and pacer.queued == 2
    assert pacer.next_due(10.2) == pytest.approx(0.8)
    assert pacer.due(10.5) == []
    assert pacer.due(11.0) == [3, 4] and pacer.next_due(11.0) is None


def test_clear_forgets_what_waited_for_a_dead_connection() -> None:
    pacer: Pacer[int] = Pacer(limit=1)
    pacer.submit(1, 0.0)
    pacer.submit(2, 0.0)
    pacer.clear()
    assert pacer.queued == 0 and pacer.submit(3, 0.0) == [3]


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_no_window_ever_holds_more_than_the_limit(gaps: list[float]) -> None:
    pacer: Pacer[int] = Pacer(limit=45, window=1.0)
    now, sent_at, submitted = 0.0, [], 0
    for gap in gaps:
        now += gap
        sent_at += [now] * len(pacer.submit(submitted, now))
        submitted += 1
    while pacer.queued:
        now = now + (pacer.next_due(now) or 0.0)
        sent_at += [now] * len(pacer.due(now))
    assert len(sent_at) == submitted
    assert all(sum(1 for t in sent_at if start <= t < start + 1.0) <= 45 for start in sent_at)

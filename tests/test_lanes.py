"""The fair queue in front of the pacer, and the memory of refused instruments (bridge/fairness.py)."""

from hypothesis import given
from hypothesis import strategies as st

from bridge.fairness import SYSTEM, Lanes, RefusalCache


def test_lanes_take_turns_and_urgent_goes_first() -> None:
    lanes: Lanes[str] = Lanes()
    for i in range(3):
        lanes.push(b"flood", f"f{i}")
    lanes.push(SYSTEM, "restore")
    lanes.push(b"other", "o0")
    lanes.push(b"flood", "hb", urgent=True)
    assert lanes.ahead_of(b"other", "o0") == 3  # hb, f0, restore
    order = [lanes.pop() for _ in range(len(lanes))]
    assert order == ["hb", "f0", "restore", "o0", "f1", "f2"]
    assert lanes.pop() is None and len(lanes) == 0


def test_a_withdrawn_entry_is_gone_and_the_rest_keep_their_order() -> None:
    lanes: Lanes[str] = Lanes()
    for item in ("a", "b", "c"):
        lanes.push(1, item)
    assert lanes.remove(1, "b") and not lanes.remove(1, "b") and not lanes.remove(2, "a")
    assert lanes.ahead_of(1, "b") == -1 and lanes.ahead_of(1, "c") == 1
    assert lanes.drain() == ["a", "c"] and len(lanes) == 0


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=60))
def test_ahead_of_is_exactly_how_many_go_before(pushes: list[tuple[int, bool]]) -> None:
    lanes: Lanes[object] = Lanes()
    items = []
    for lane, urgent in pushes:
        item = object()
        lanes.push(lane, item, urgent)
        items.append((lane, item, urgent))
    expected = {
        id(item): lanes.ahead_of(lane, item) for lane, item, urgent in items if not urgent
    }  # urgent entries are not in a lane
    served = [lanes.pop() for _ in range(len(lanes))]
    for place, item in enumerate(served):
        if id(item) in expected:
            assert expected[id(item)] == place


def test_refusals_are_remembered_for_their_ttl_only() -> None:
    cache: RefusalCache[str] = RefusalCache(ttl=600)
    cache.remember("NOPE", 200, "No security definition", now=100.0)
    hit = cache.get("NOPE", now=699.0)
    assert hit is not None and hit.code == 200 and hit.at == 100.0
    assert cache.get("NOPE", now=700.0) is None and cache.get("NOPE", now=701.0) is None


def test_a_zero_ttl_remembers_nothing_and_the_size_is_bounded() -> None:
    off: RefusalCache[str] = RefusalCache(ttl=0)
    off.remember("X", 200, "no", now=0.0)
    assert off.get("X", 0.0) is None
    cache: RefusalCache[int] = RefusalCache(ttl=10, size=3)
    for key in range(5):
        cache.remember(key, 200, "no", now=0.0)
    assert [cache.get(k, 1.0) is not None for k in range(5)] == [False, False, True, True, True]

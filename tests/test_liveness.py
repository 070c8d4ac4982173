"""The heartbeat and backoff clocks, and the outage bookkeeping, driven with plain numbers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bridge.liveness import Backoff, Failure, Liveness, Verdict
from bridge.outages import MARKET_FARM, Outages, farm_change


def verdicts(liveness: Liveness, start: float, end: float, step: float = 0.25) -> list[tuple[float, Verdict]]:
    out, t = [], start
    while t <= end:
        v = liveness.check(t)
        if v is not Verdict.OK:
            out.append((t, v))
        t = round(t + step, 6)
    return out


def test_a_silent_tws_is_probed_then_stalled_then_down() -> None:
    lv = Liveness(probe_after=2, stalled_after=5, down_after=10, now=0)
    seen = verdicts(lv, 0, 10)
    assert seen[0] == (2.0, Verdict.PROBE)
    assert (5.0, Verdict.STALLED) in seen and seen[-1] == (10.0, Verdict.DOWN)
    assert [v for _, v in seen].count(Verdict.STALLED) == 1, "stalled is said once"
    probes = [t for t, v in seen if v is Verdict.PROBE]
    assert all(b - a >= 2 for a, b in itertools.pairwise(probes)), "one probe per 2 s of silence"


def test_a_tws_that_answers_the_probe_is_never_stalled() -> None:
    lv = Liveness(probe_after=2, stalled_after=5, down_after=10, now=0)
    for t in range(0, 60):
        if lv.check(t) is Verdict.PROBE:
            lv.heard(t + 0.01)  # TWS answers reqCurrentTime at once
        assert lv.check(t) in (Verdict.OK, Verdict.PROBE)


def test_bytes_after_a_stall_end_it() -> None:
    lv = Liveness(probe_after=2, stalled_after=5, down_after=10, now=0)
    verdicts(lv, 0, 6)
    assert lv.stalled and lv.heard(6.5) and not lv.stalled
    assert not lv.heard(7)


@given(st.lists(st.floats(min_value=0.01, max_value=3), max_size=60))
def test_down_comes_exactly_after_the_timeout_of_silence(gaps: list[float]) -> None:
    lv = Liveness(probe_after=1, stalled_after=2.5, down_after=5, now=0)
    t = 0.0
    for gap in gaps:  # TWS talks with gaps under 5 s: never down
        t += gap
        assert lv.check(t) is not Verdict.DOWN
        lv.heard(t)
    assert lv.check(t + 4.99) is not Verdict.DOWN
    assert lv.check(t + 5.001) is Verdict.DOWN


def fixed(r: float) -> Backoff:
    return Backoff(now=0, rand=lambda: r)


def test_an_unreachable_tws_expected_back_is_polled_fast() -> None:
    b = fixed(0.5)
    b.up(100)
    waits = [b.failed(100 + t, Failure.DROPPED if t == 0 else Failure.UNREACHABLE) for t in range(0, 120, 2)]
    assert waits[0] <= 0.5, "a drop after a working session is retried at once"
    assert all(w == 1.0 for w in waits[1:]), "TWS's restart window is polled every second"


def test_an_unreachable_tws_long_gone_backs_off_to_the_cap() -> None:
    b = fixed(1.0)
    waits = [b.failed(400 + t, Failure.UNREACHABLE) for t in range(12)]
    assert waits[:4] == [0.5, 1.0, 2.0, 4.0] and waits[-1] == 30.0


def test_sessions_that_break_at_once_back_off_and_a_stable_one_resets_it() -> None:
    b = fixed(1.0)
    t, waits = 0.0, []
    for _ in range(6):
        b.up(t)
        t += 0.1  # the session breaks (protocol error, 326, handshake timeout) right after starting
        waits.append(b.failed(t, Failure.BROKEN))
        t += waits[-1]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    b.up(t)
    assert b.failed(t + 60, Failure.DROPPED) == 0.5, "after an hour-long session the count starts again"


@given(st.floats(min_value=0, max_value=1), st.lists(st.sampled_from(list(Failure)), min_size=1, max_size=40))
def test_every_wait_is_jittered_within_bounds(r: float, failures: list[Failure]) -> None:
    b = Backoff(now=0, rand=lambda: r)
    for i, how in enumerate(failures):
        wait = b.failed(float(i), how)
        assert 0.25 <= wait <= 30.0


def test_farm_notices_name_the_farm_and_only_market_farms_stop_data() -> None:
    o = Outages()
    change = farm_change(2103, "Market data farm connection is broken:usfarm")
    assert change is not None and (change.kind, change.name, change.state) == ("market", "usfarm", "broken")
    assert o.farm(change) == (True, False) and o.causes == [MARKET_FARM]
    eu = farm_change(2103, "Market data farm connection is broken:eufarm")
    assert eu is not None and o.farm(eu) == (False, False)
    usok = farm_change(2104, "Market data farm connection is OK:usfarm")
    assert usok is not None and o.farm(usok) == (False, False), "eufarm is still broken"
    euok = farm_change(2104, "Market data farm connection is OK:eufarm")
    assert euok is not None and o.farm(euok) == (False, True) and not o.stale
    hmds = farm_change(2105, "HMDS data farm connection is broken:ushmds")
    assert hmds is not None and o.farm(hmds) == (False, False) and not o.farm_up("historical")
    evil = farm_change(2104, "OK:\x1b[31mevil\nfarm")
    assert evil is not None and evil.name == "31mevilfarm", "no control characters from TWS text"


@given(st.integers(2000, 2200), st.text(max_size=200))
def test_any_farm_text_gives_a_bounded_clean_name(code: int, text: str) -> None:
    change = farm_change(code, text)
    if change is not None:
        assert 0 < len(change.name) <= 32 and all(ch.isalnum() or ch in "._-" for ch in change.name)

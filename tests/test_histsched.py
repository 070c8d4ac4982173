"""The one historical scheduler: IB's pacing kept for every asker together, fair queueing,
identical requests served once, waits said up front (issue 12, point 2). Simulated clock."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.histcache import AnswerCache, Cached
from bridge.histkey import OK, Freshness, HistoryKey, Outcome, fresh_until, tws_outcome
from bridge.histpacing import Limits, minimum_seconds
from bridge.histrules import BadRequest
from bridge.histsched import Scheduler, Started, Ticket

PAST = 1_700_000_000  # a fixed end well before the clock: complete bars
WALL = 1_800_000_000.0  # the simulated clock's UTC epoch at 0
IB = Limits.ib()


def bars(contract: object = 1, what: str = "TRADES", end: float | None = PAST, span: str = "1 D") -> HistoryKey:
    return HistoryKey.bars(contract, "SMART", what, "1 min", span, end=end)


def run(sched: Scheduler, now: float) -> list[Started]:
    """Start what may start now, sent at once."""
    return sched.ready(now)


def answer(sched: Scheduler, started: Started, now: float, outcome: Outcome = OK) -> list[Ticket]:
    return sched.finished(started, outcome, now, answer=f"bars of {started.key.contract}", size=100, wall=WALL + now)


def drain(sched: Scheduler, now: float) -> list[Started]:
    """Start all that may start now, each answered at once (so the 50-open rule does not bind)."""
    out = []
    while started := run(sched, now):
        for one in started:
            answer(sched, one, now)
        out += started
    return out


# -- the rules, one at a time, with IB's own numbers


def test_the_61st_request_starts_when_the_first_leaves_the_ten_minute_window() -> None:
    sched = Scheduler(IB)
    tickets = [sched.submit(bars(i), "a", 0.0) for i in range(61)]
    assert len(drain(sched, 0.0)) == 60
    assert tickets[60].position == 60
    assert tickets[60].eta == pytest.approx(600.0)
    assert run(sched, 599.9) == []
    assert sched.next_wakeup(1.0) == pytest.approx(600.0)
    assert [s.key for s in run(sched, sched.next_wakeup(1.0))] == [bars(60)]


def test_a_bid_ask_request_counts_twice() -> None:
    sched = Scheduler(IB)
    for i in range(31):
        sched.submit(bars(i, "BID_ASK"), "a", 0.0)
    assert len(drain(sched, 0.0)) == 30
    assert sched.next_wakeup(0.0) == pytest.approx(600.0)


def test_six_requests_for_one_contract_exchange_and_data_type_are_two_seconds_apart() -> None:
    sched = Scheduler(IB)
    for day in range(6):
        sched.submit(bars(7, end=PAST + day * 86_400), "a", 0.0)
    sched.submit(bars(8), "b", 0.0)  # another asker's other contract is not held up
    assert len(run(sched, 0.0)) == 6
    assert sched.next_wakeup(0.0) == pytest.approx(2.0)
    assert [s.key.end for s in run(sched, 2.0 + 1e-5)] == [PAST + 5 * 86_400]


def test_an_identical_request_waits_15_seconds_after_the_last_one() -> None:
    sched = Scheduler(IB)
    sched.submit(bars(), "a", 0.0)
    (started,) = run(sched, 0.0)
    answer(sched, started, 1.0, Outcome("error", 10197, "competing session"))  # errors are not cached
    again = sched.submit(bars(), "a", 2.0)
    assert again.state == "queued" and again.eta == pytest.approx(15.0)
    assert run(sched, 14.9) == []
    assert len(run(sched, 15.0 + 1e-5)) == 1


def test_head_timestamps_and_historical_ticks_count_toward_the_same_budget() -> None:
    sched = Scheduler(IB)
    for i in range(20):
        sched.submit(bars(i), "a", 0.0)
        sched.submit(HistoryKey.ticks(i, "SMART", "TRADES", end=PAST, count=1000), "b", 0.0)
        sched.submit(HistoryKey.head_timestamp(i, "SMART", "TRADES"), "c", 0.0)
    assert len(drain(sched, 0.0)) == 60
    late = sched.submit(HistoryKey.head_timestamp("late", "SMART", "MIDPOINT"), "d", 1.0)
    assert late.state == "queued" and late.eta == pytest.approx(600.0)


def test_the_stats_count_what_the_bridge_exports() -> None:
    sched = Scheduler(IB)
    sched.submit(bars(1), "a", 0.0)
    sched.submit(bars(1), "b", 0.0)
    sched.submit(bars(2), "a", 0.0)
    one, _ = run(sched, 2.0)
    answer(sched, one, 3.0)
    sched.submit(bars(1), "c", 4.0)
    stats = sched.stats(4.0)
    assert (stats.submitted, stats.cache_hits, stats.attached, stats.started, stats.answered) == (4, 1, 1, 2, 3)
    assert (stats.queued, stats.in_flight, stats.open, stats.budget_used) == (0, 1, 1, 2)
    assert stats.wait_seconds == pytest.approx(6.0) and stats.cache_entries == 1 and stats.cache_bytes == 100


def test_limits_that_cannot_take_one_bid_ask_request_are_refused() -> None:
    with pytest.raises(ValueError, match="BID_ASK"):
        Limits(burst=1)
    with pytest.raises(ValueError, match="positive"):
        Limits(burst_window=0)


def test_no_more_than_50_are_open_and_an_answer_frees_a_slot() -> None:
    sched = Scheduler(IB)
    for i in range(51):
        sched.submit(bars(i), "a", 0.0)
    first = run(sched, 0.0)
    assert len(first) == 50
    assert sched.next_wakeup(0.0) is None  # only an answer frees a slot
    answer(sched, first[0], 3.0)
    assert len(run(sched, 3.0)) == 1


def test_the_default_limits_keep_a_margin_under_ibs() -> None:
    safe = Limits()
    assert safe.budget < IB.budget and safe.budget_window > IB.budget_window
    assert safe.identical_window > IB.identical_window and safe.burst_window > IB.burst_window
    assert safe.max_open < IB.max_open
    scaled = safe.scaled(0.01)
    assert scaled.budget_window == pytest.approx(6.1) and scaled.budget == safe.budget


def test_the_message_pacer_delay_is_counted_from_the_actual_send() -> None:
    sched = Scheduler(IB)
    sched.submit(bars(), "a", 0.0)
    (started,) = run(sched, 0.0)
    sched.sent(started, 3.0)
    answer(sched, started, 4.0, Outcome("error"))
    assert sched.submit(bars(), "a", 5.0).eta == pytest.approx(18.0)


# -- fairness and bounds


def test_one_asker_queueing_100_does_not_hold_another_behind_all_of_them() -> None:
    sched = Scheduler(IB)
    for i in range(100):
        sched.submit(bars(i), "flood", 0.0)
    drain(sched, 0.0)
    single = sched.submit(bars("other"), "single", 2.0)
    assert single.position <= 1
    assert single.eta == pytest.approx(600.0)
    now = sched.next_wakeup(2.0)
    assert single in run(sched, now)[1].tickets  # the flood's next one, then ours


def test_each_askers_own_requests_start_in_the_order_asked() -> None:
    sched = Scheduler(IB)
    for i in range(5):
        sched.submit(bars(i), "a", 0.0)
        sched.submit(bars(100 + i), "b", 0.0)
    order = [s.key.contract for s in run(sched, 0.0)]
    assert order == [0, 100, 1, 101, 2, 102, 3, 103, 4, 104]


def test_a_full_queue_refuses_with_a_reason() -> None:
    sched = Scheduler(IB, asker_queue=2, queue_max=3)
    assert [sched.submit(bars(i), "a", 0.0).state for i in range(3)] == ["queued", "queued", "refused"]
    assert sched.submit(bars(9), "a", 0.0).refusal == "asker_queue_full"
    assert sched.submit(bars(10), "b", 0.0).state == "queued"
    full = sched.submit(bars(11), "c", 0.0)
    assert (full.refusal, full.message) == ("queue_full", "the bridge has 3 history requests queued; try again later")


def test_a_request_that_would_wait_past_the_askers_limit_is_refused_up_front() -> None:
    sched = Scheduler(IB)
    for i in range(60):
        sched.submit(bars(i), "a", 0.0)
    drain(sched, 0.0)
    late = sched.submit(bars(60), "b", 0.0, max_wait=30.0)
    assert (late.state, late.refusal) == ("refused", "too_long")
    assert "10 minutes" in late.message
    assert sched.stats(0.0).queued == 0


def test_a_long_wait_is_said_with_its_length() -> None:
    sched = Scheduler(IB, long_wait=60.0)
    tickets = [sched.submit(bars(i), "a", 0.0) for i in range(200)]
    assert not tickets[59].long_wait
    assert tickets[199].long_wait
    assert tickets[199].eta == pytest.approx(1800.0)  # 60 now, then 60 every 10 minutes
    assert tickets[199].message == "199 requests ahead: IB's pacing starts this in about 30 minutes"


# -- once


def test_two_askers_of_the_same_history_cost_one_request_and_both_get_the_answer() -> None:
    sched = Scheduler(IB)
    first = sched.submit(bars(), "a", 0.0)
    second = sched.submit(bars(), "b", 0.0)
    assert second.attached
    (started,) = run(sched, 0.0)
    late = sched.submit(bars(), "c", 0.5)  # joins the request in flight
    assert late.attached and late.state == "started"
    assert set(answer(sched, started, 1.0)) == {first, second, late}
    assert first.answer == second.answer == late.answer == "bars of 1"


def test_a_complete_past_answer_is_served_from_memory_long_after() -> None:
    sched = Scheduler(IB)
    sched.submit(bars(), "a", 0.0)
    (started,) = run(sched, 0.0)
    answer(sched, started, 1.0)
    hit = sched.submit(bars(), "b", 86_400.0)
    assert (hit.state, hit.cached, hit.answer) == ("answered", True, "bars of 1")
    assert run(sched, 86_400.0) == []
    assert sched.stats(86_400.0).cache_hits == 1


def test_an_answer_up_to_now_is_fresh_for_15_seconds_only() -> None:
    sched = Scheduler(IB)
    sched.submit(bars(end=None), "a", 0.0)
    (started,) = run(sched, 0.0)
    answer(sched, started, 1.0)
    assert sched.submit(bars(end=None), "a", 15.9).cached
    assert not sched.submit(bars(end=None), "a", 16.1).cached


def test_equivalent_spellings_are_one_request_but_an_open_end_is_not_a_fixed_one() -> None:
    assert HistoryKey.bars(1, "smart", "trades", "5 min", "1d", end=PAST + 0.7) == HistoryKey.bars(
        1, "SMART", "TRADES", "5 mins", "1 D", end=PAST
    )
    assert bars(end=None) != bars(end=WALL)


@pytest.mark.parametrize(
    ("key", "answered", "fresh"),
    [
        (bars(end=PAST), WALL, math.inf),  # complete bars never change
        (bars(end=WALL - 30), WALL, WALL + 15),  # its last bar closed only just: like up to now
        (bars(end=None), WALL, WALL + 15),
        (HistoryKey.bars(1, "SMART", "TRADES", "5 secs", "60 S"), WALL, WALL + 5),  # no longer than a bar
        (HistoryKey.head_timestamp(1, "SMART", "TRADES"), WALL, WALL + 3600),
        (HistoryKey.ticks(1, "SMART", "TRADES", end=PAST, count=1000), WALL, math.inf),
    ],
)
def test_the_freshness_rule(key: HistoryKey, answered: float, fresh: float) -> None:
    assert fresh_until(key, answered, "ok", Freshness()) == fresh


def test_errors_and_subscriptions_are_never_cached_and_no_data_only_briefly() -> None:
    rule = Freshness()
    assert fresh_until(bars(), WALL, "refused", rule) == WALL
    live = HistoryKey.bars(1, "SMART", "TRADES", "1 min", "1 D", keep_up_to_date=True)
    assert fresh_until(live, WALL, "ok", rule) == WALL
    assert fresh_until(bars(end=PAST), WALL, "no_data", rule) == WALL + 15


def test_the_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    cache = AnswerCache(max_bytes=100)
    for name in ("a", "b"):
        cache.put(name, Cached(OK, name, 40, 0.0, math.inf))
    cache.get("a", 1.0)
    cache.put("c", Cached(OK, "c", 40, 0.0, math.inf))
    assert (cache.get("b", 1.0), cache.get("a", 1.0) is not None, cache.bytes) == (None, True, 80)
    assert not cache.put("huge", Cached(OK, "x", 101, 0.0, math.inf))


def test_bad_shapes_are_refused_before_the_queue() -> None:
    with pytest.raises(BadRequest, match="what_to_show 'QUOTES'"):
        HistoryKey.bars(1, "SMART", "QUOTES", "1 min", "1 D")
    with pytest.raises(BadRequest, match="exactly one of start and end"):
        HistoryKey.ticks(1, "SMART", "TRADES")
    with pytest.raises(BadRequest, match="1 to 1000"):
        HistoryKey.ticks(1, "SMART", "TRADES", end=PAST, count=1001)
    with pytest.raises(BadRequest, match="keep_up_to_date takes no end"):
        HistoryKey.bars(1, "SMART", "TRADES", "1 min", "1 D", end=PAST, keep_up_to_date=True)


# -- what TWS says


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (162, "Historical Market Data Service error message:Historical data request pacing violation", "pacing"),
        (162, "Historical Market Data Service error message:HMDS query returned no data: DELL@SMART Trades", "no_data"),
        (162, "Historical Market Data Service error message:API historical data query cancelled: 28", "cancelled"),
        (162, "Historical Market Data Service error message:invalid step: 1", "refused"),
        (366, "No historical data query found for ticker id:5", "not_found"),
        (321, "Error validating request.-'bK' : cause - Historical data bar size setting is invalid.", "invalid"),
        (10197, "No market data during competing live session", "error"),
    ],
)
def test_tws_errors_map_to_outcomes_by_code_and_text(code: int, text: str, kind: str) -> None:
    outcome = tws_outcome(code, text)
    assert (outcome.kind, outcome.code, outcome.message) == (kind, code, text)


def test_a_pacing_violation_from_tws_pauses_every_start_and_retries_later() -> None:
    sched = Scheduler(IB, max_attempts=2)
    ticket = sched.submit(bars(1), "a", 0.0)
    sched.submit(bars(2), "b", 0.0)
    first, _ = run(sched, 0.0)
    violation = tws_outcome(162, "Historical data request pacing violation")
    assert answer(sched, first, 1.0, violation) == []
    assert ticket.state == "queued"
    assert sched.next_wakeup(1.0) == pytest.approx(31.0)  # 30 s pause
    assert run(sched, 30.0) == []
    (retry,) = run(sched, 31.0)
    assert retry.attempt == 2
    assert answer(sched, retry, 32.0, violation) == [ticket]  # attempts spent: the asker is told
    assert ticket.outcome.kind == "pacing"
    assert sched.stats(32.0).tws_pacing == 2 and sched.stats(32.0).paused_for == pytest.approx(60.0)


def test_requests_in_flight_when_tws_drops_go_again_after_the_reconnect() -> None:
    sched = Scheduler(IB)
    ticket = sched.submit(bars(), "a", 0.0)
    (lost,) = run(sched, 0.0)
    sched.lost(5.0)
    assert answer(sched, lost, 6.0) == []  # a stale request's late answer is ignored
    (again,) = run(sched, 15.0 + 1e-5)  # still no identical request within 15 s
    assert answer(sched, again, 16.0) == [ticket]


def test_a_cancelled_request_never_starts_and_an_orphan_in_flight_is_handed_back() -> None:
    sched = Scheduler(IB)
    queued = sched.submit(bars(1), "a", 0.0)
    assert sched.cancel(queued, 0.0) is None
    sched.submit(bars(2), "b", 0.0)
    sched.submit(bars(3), "b", 0.0)
    (started, _) = run(sched, 0.0)
    assert sched.forget("b", 1.0)[0] is started
    assert sched.stats(1.0).queued == 0


# -- figures


def test_the_scheduler_reaches_the_theoretical_minimum_with_ibs_numbers() -> None:
    sched = Scheduler(IB)
    for i in range(250):
        sched.submit(bars(i), "backfill", 0.0)
    now, last = 0.0, 0.0
    while (wake := sched.next_wakeup(now)) is not None:
        now = wake
        for started in run(sched, now):
            last = started.at
            answer(sched, started, now)
    assert minimum_seconds(250) == 2400.0
    assert last == pytest.approx(minimum_seconds(250))
    assert minimum_seconds(31, weight=2) == 600.0 and minimum_seconds(0) == 0.0


# -- properties: any submissions and answers, checked against the rules by brute force


@dataclass
class Log:
    starts: list[tuple[float, HistoryKey, int]] = field(default_factory=list)
    ends: dict[int, float] = field(default_factory=dict)  # index in starts -> answered at


def violations(log: Log, rules: Limits) -> list[str]:
    """Every break of IB's rules in a log of starts, by brute force (closed windows: stricter than IB)."""
    found = []
    weight = [w for _, _, w in log.starts]
    for i, (at, key, _) in enumerate(log.starts):
        window = [j for j, (t, _, _) in enumerate(log.starts) if at <= t <= at + rules.budget_window]
        if sum(weight[j] for j in window) > rules.budget:
            found.append(f"budget from {at}")
        burst = [
            j for j in window if log.starts[j][0] - at <= rules.burst_window and log.starts[j][1].group == key.group
        ]
        if sum(weight[j] for j in burst) > rules.burst:
            found.append(f"burst from {at}")
        if any(log.starts[j][1] == key and log.starts[j][0] - at <= rules.identical_window for j in window if j > i):
            found.append(f"identical at {at}")
        open_now = [j for j, (t, _, _) in enumerate(log.starts) if t <= at and log.ends.get(j, math.inf) > at]
        if sum(weight[j] for j in open_now) > rules.max_open:
            found.append(f"open at {at}")
    return found


submission = st.tuples(
    st.floats(0, 30),  # gap before it
    st.integers(0, 3),  # asker
    st.integers(0, 8),  # contract
    st.sampled_from(["TRADES", "BID_ASK", "MIDPOINT"]),
    st.sampled_from(["1 D", "28800 S", "1800 S"]),
    st.booleans(),  # up to now (else a complete past end)
)
answers = st.lists(st.sampled_from([0.2, 1.0, 5.0, 40.0, "pacing", "no_data"]), min_size=1, max_size=20)


def simulate(sched: Scheduler, plan: list, replies: list) -> tuple[Log, list[Ticket]]:
    """Submit per `plan`, answer each start after the next of `replies`, until everything ended."""
    log, tickets, pending = Log(), [], []  # pending: (due, index, started, outcome)
    arrivals, t = [], 0.0
    for gap, asker, contract, what, span, open_end in plan:
        t += gap
        key = HistoryKey.bars(contract, "SMART", what, "1 min" if span != "1800 S" else "1 secs", span,
                              end=None if open_end else PAST)  # fmt: skip
        arrivals.append((t, key, asker))
    now, n = 0.0, 0
    for _ in range(100_000):
        for due, index, started, outcome in sorted(p for p in pending if p[0] <= now):
            pending.remove((due, index, started, outcome))
            log.ends[index] = now
            sched.finished(started, outcome, now, answer="x", size=10, wall=WALL + now)
        while arrivals and arrivals[0][0] <= now:
            _, key, asker = arrivals.pop(0)
            tickets.append(sched.submit(key, asker, now))
        for started in sched.ready(now):
            reply = replies[n % len(replies)]
            n += 1
            outcome = tws_outcome(162, "pacing violation") if reply == "pacing" else OK
            outcome = tws_outcome(162, "HMDS query returned no data") if reply == "no_data" else outcome
            delay = reply if isinstance(reply, float) else 0.5
            log.starts.append((now, started.key, started.job.weight))
            pending.append((now + delay, len(log.starts) - 1, started, outcome))
        times = [p[0] for p in pending] + [a[0] for a in arrivals[:1]]
        wake = sched.next_wakeup(now)
        times += [wake] if wake is not None else []
        if not times:
            return log, tickets
        now = max(now, min(times))
    raise AssertionError("the simulation did not end")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(submission, min_size=1, max_size=120), answers)
def test_no_sequence_of_submissions_and_answers_breaks_ibs_rules(plan: list, replies: list) -> None:
    sched = Scheduler(Limits(), max_attempts=2)
    log, tickets = simulate(sched, plan, replies)
    assert violations(log, IB) == []
    assert all(t.state in ("answered", "refused") for t in tickets), [t.state for t in tickets]
    assert sched.stats(1e9).queued == 0 and sched.stats(1e9).in_flight == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(submission, min_size=1, max_size=100))
def test_with_ibs_own_numbers_the_rules_hold_exactly(plan: list) -> None:
    log, _ = simulate(Scheduler(IB), plan, [0.5])
    assert violations(log, IB) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(submission, min_size=1, max_size=100))
def test_identical_complete_requests_start_once(plan: list) -> None:
    plan = [(*p[:5], False) for p in plan]  # complete past bars: cached until evicted
    log, tickets = simulate(Scheduler(IB), plan, [0.5, 3.0])
    counts = defaultdict(int)
    for _, key, _ in log.starts:
        counts[key] += 1
    assert set(counts.values()) <= {1}
    assert all(t.state == "answered" and t.outcome == OK for t in tickets)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 150), st.floats(0, 900), st.integers(0, 3))
def test_a_single_request_waits_behind_at_most_one_of_a_floods(flood: int, arrival: float, others: int) -> None:
    sched = Scheduler(IB)
    for i in range(flood):
        sched.submit(bars(("flood", i)), "flood", 0.0)
    now, single, ahead = 0.0, None, 0
    for _ in range(10_000):
        if single is None and now >= arrival:
            single = sched.submit(bars(("single", others)), "single", now)
            estimate = single.position
        for started in run(sched, now):
            if single is not None and single.state == "queued":
                ahead += 1
            answer(sched, started, now)
        if single is not None and single.state == "answered":
            break
        wake = sched.next_wakeup(now)
        now = arrival if single is None and (wake is None or wake > arrival) else wake
    assert single is not None and single.state == "answered"
    assert ahead <= 1 and estimate <= 1


def test_the_brute_force_checker_catches_a_scheduler_looser_than_ib() -> None:
    spans = ["1 D", "28800 S", "1800 S"]
    plan = [(0.0, 0, i // 6, "TRADES", spans[i % 3], i % 6 < 3) for i in range(80)]  # 6 distinct per contract
    log, _ = simulate(Scheduler(Limits(budget=70, burst=6, max_open=50), asker_queue=100), plan, [0.1])
    found = violations(log, IB)
    assert any(v.startswith("budget") for v in found) and any(v.startswith("burst") for v in found)

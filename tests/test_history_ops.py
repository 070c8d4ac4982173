"""The history and reference ops read outside input: anything is a checked request or a refusal
that names what was wrong; a span is planned into requests TWS takes; TWS's answers become rows
with UTC epoch times whatever form TWS wrote them in."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import history_ops as hops
from bridge.history_rows import bar_rows, merge_bars, sessions, tws_text, tws_time
from bridge.histrules import BAR_SIZES, check_bars, duration_seconds
from bridge.ops import RequestError
from bridge.protocol import events as ev

NOW = 1_796_000_000.0
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=20)
    | st.sampled_from(["1 min", "1 D", "5 mins", "1 day", "AAPL", "TRADES", "BID_ASK", "abc"])
    | st.integers(int(NOW) - 40 * 86400, int(NOW) + 100),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
keys = st.sampled_from(["instrument", "bar", "duration", "start", "end", "what", "rth", "count", "skip", "ticket",
                        "page", "exchange", "pattern"])  # fmt: skip
requests = st.dictionaries(keys, values, max_size=7)
PARSERS = {
    "history": lambda r: hops.history_args(r, NOW),
    "ticks": lambda r: hops.ticks_args(r, NOW),
    "head_timestamp": hops.head_args,
    "ticket": hops.ticket_args,
    "option_chain": hops.exchange_arg,
    "search": hops.search_args,
}


@settings(max_examples=400, deadline=None)
@given(op=st.sampled_from(sorted(PARSERS)), request=requests)
def test_any_arguments_are_valid_or_refused_by_name(op: str, request: dict[str, Any]) -> None:
    try:
        PARSERS[op](request)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message and exc.reason in ("bad_field", "bad_text")


@settings(max_examples=200, deadline=None)
@given(
    bar=st.sampled_from(sorted(BAR_SIZES)),
    start=st.integers(int(NOW) - 400 * 86400, int(NOW) - 1),
    end=st.none() | st.integers(int(NOW) - 300 * 86400, int(NOW)),
)
def test_a_span_is_covered_by_requests_ib_takes(bar: str, start: int, end: int | None) -> None:
    request = {"instrument": "AAPL", "bar": bar, "start": start, "end": end}
    try:
        args = hops.history_args(request, NOW)
    except RequestError as exc:
        assert "MAX_PARTS" in exc.message or "is not before" in exc.message
        return
    stop = end if end is not None else NOW
    for part in args.parts:
        assert check_bars(part.duration, bar)  # every piece passes IB's step sizes as sent
    covered_from = min((p.end if p.end is not None else NOW) - duration_seconds(p.duration) for p in args.parts)
    assert covered_from <= start
    assert args.parts[-1].end == end  # the last piece ends where the span does (open: up to now)
    assert all(p.end is not None and p.end <= stop for p in args.parts[:-1])


def test_one_minute_bars_for_five_days_are_five_or_six_pieces_on_a_utc_day_grid() -> None:
    midnight = int(NOW) // 86400 * 86400
    aligned = hops.history_args({"instrument": "AAPL", "bar": "1 min", "start": midnight - 5 * 86400,
                                 "end": midnight}, NOW)  # fmt: skip
    assert [p.end for p in aligned.parts] == [midnight - d * 86400 for d in (4, 3, 2, 1, 0)]
    assert {p.duration for p in aligned.parts} == {"1 D"}
    ragged = hops.history_args({"instrument": "AAPL", "bar": "1 min", "start": int(NOW) - 5 * 86400}, NOW)
    assert len(ragged.parts) == 6 and ragged.parts[-1].end is None


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        ({"instrument": "AAPL", "bar": "1 secs", "duration": "1 D"}, "1 secs bars cover at most 1800 S"),
        ({"instrument": "AAPL", "bar": "7 mins", "duration": "1 D"}, "not one IB takes"),
        ({"instrument": "AAPL", "bar": "1 min"}, "either 'duration'"),
        ({"instrument": "AAPL", "bar": "1 min", "duration": "1 D", "start": NOW - 10}, "not both"),
        ({"instrument": "AAPL", "bar": "1 min", "start": NOW - 10, "end": NOW - 20}, "is not before"),
        ({"instrument": "AAPL", "bar": "1 min", "start": NOW + 3600}, "in the future"),
        ({"instrument": "AAPL", "bar": "1 secs", "start": NOW - 86400 * 30}, "MAX_PARTS"),
        ({"instrument": "AAPL", "bar": "1 min", "duration": "1 D", "what": "BIDS"}, "not one of"),
        ({"instrument": "AAPL", "bar": "1 min", "duration": "1 D", "rth": 1}, "rth is true or false"),
        ({"bar": "1 min", "duration": "1 D"}, "needs 'instrument'"),
    ],
)
def test_history_refusals_say_what_is_allowed(request_: dict[str, Any], says: str) -> None:
    with pytest.raises(RequestError) as caught:
        hops.history_args(request_, NOW)
    assert caught.value.code == "bad_request" and says in caught.value.message


def test_ticks_take_a_start_or_an_end_and_at_most_a_thousand() -> None:
    with pytest.raises(RequestError, match="'start'"):
        hops.ticks_args({"instrument": "AAPL"}, NOW)
    with pytest.raises(RequestError, match="1 to 1000"):
        hops.ticks_args({"instrument": "AAPL", "end": NOW, "count": 1001}, NOW)
    with pytest.raises(RequestError, match="what 'TRADE'"):
        hops.ticks_args({"instrument": "AAPL", "end": NOW, "what": "TRADE"}, NOW)
    assert hops.ticks_args({"instrument": "AAPL", "start": NOW - 5, "skip": 3}, NOW).skip == 3


def test_bar_times_are_utc_epochs_whatever_form_tws_wrote() -> None:
    assert tws_time("1796000000") == 1796000000
    assert tws_time("20261203") == int(dt.datetime(2026, 12, 3, tzinfo=dt.UTC).timestamp())
    assert tws_time("20261203 09:30:00 US/Eastern") == int(dt.datetime(2026, 12, 3, 14, 30, tzinfo=dt.UTC).timestamp())
    assert tws_time("20260703 09:30:00 US/Eastern") == int(dt.datetime(2026, 7, 3, 13, 30, tzinfo=dt.UTC).timestamp())
    assert tws_time(tws_text(1796000000).replace("-", " ")) == 1796000000
    with pytest.raises(ValueError):
        tws_time("yesterday")


def test_bars_without_trades_carry_nil_not_minus_one() -> None:
    rows = bar_rows([ev.HistoricalBar("1796000000", 1.0, 2.0, 0.5, 1.5, -1.0, -1.0, -1)])
    assert rows == [[1796000000, 1.0, 2.0, 0.5, 1.5, None, None, None]]


def test_overlapping_answers_merge_into_one_series_clipped_to_the_span() -> None:
    first = [[t, 1, 1, 1, 1, 0, 0, 0] for t in range(0, 600, 60)]
    second = [[t, 2, 2, 2, 2, 0, 0, 0] for t in range(300, 900, 60)]
    merged = merge_bars([first, second], start=120, end=780, bar_seconds=60)
    assert [r[0] for r in merged] == list(range(120, 780, 60))
    assert merged[-1][1] == 2 and merged[0][1] == 1


def test_trading_hours_become_utc_sessions_in_both_of_tws_layouts() -> None:
    new = "20261203:0930-20261203:1600;20261205:CLOSED;20261206:1700-20261207:1600"
    got = sessions(new, "US/Eastern")
    utc = dt.UTC
    assert got[0] == [int(dt.datetime(2026, 12, 3, 14, 30, tzinfo=utc).timestamp()),
                      int(dt.datetime(2026, 12, 3, 21, 0, tzinfo=utc).timestamp())]  # fmt: skip
    assert len(got) == 2 and got[1][1] - got[1][0] == 23 * 3600
    old = sessions("20090507:0700-1830,1830-2330;20090508:CLOSED", "EST5EDT")
    assert len(old) == 2 and old[0][1] == old[1][0]
    assert sessions("20261203:2200-0500", "UTC")[0][1] - sessions("20261203:2200-0500", "UTC")[0][0] == 7 * 3600

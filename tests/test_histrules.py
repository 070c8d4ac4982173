"""A history request TWS would refuse for its shape is refused by the bridge first, naming what is allowed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.histrules import (
    BAR_SIZES,
    STEP_SIZES,
    BadRequest,
    bar_size,
    check_bars,
    duration,
    duration_seconds,
    longest_duration,
    step_range,
)


@pytest.mark.parametrize(
    ("text", "spelling"),
    [
        ("1 min", "1 min"),
        ("5 min", "5 mins"),
        ("5mins", "5 mins"),
        ("1 sec", "1 secs"),
        ("30 seconds", "30 secs"),
        ("1 hours", "1 hour"),
        ("4 hour", "4 hours"),
        ("1 day", "1 day"),
        ("1W", "1 week"),
        ("1M", "1 month"),
        ("  15 MINS ", "15 mins"),
    ],
)
def test_bar_sizes_are_read_in_any_common_spelling_and_written_in_ibs(text: str, spelling: str) -> None:
    assert bar_size(text) == spelling


@pytest.mark.parametrize("text", ["7 mins", "2 days", "1 year", "minute", "", "1.5 min", "-1 min"])
def test_a_bar_size_ib_does_not_have_is_refused_naming_the_legal_ones(text: str) -> None:
    with pytest.raises(BadRequest, match="1 secs, 5 secs, 10 secs") as refusal:
        bar_size(text)
    assert repr(text) in str(refusal.value)


@pytest.mark.parametrize(("text", "spelling"), [("60 S", "60 S"), ("5d", "5 D"), ("2 W", "2 W"), ("1 y", "1 Y")])
def test_durations_are_a_count_and_one_of_ibs_units(text: str, spelling: str) -> None:
    assert duration(text) == spelling


@pytest.mark.parametrize("text", ["5", "0 D", "5 days", "1 H", "D 5", None])
def test_a_malformed_duration_is_refused_with_the_form_that_works(text: str) -> None:
    with pytest.raises(BadRequest, match="'<count> <unit>' with unit S, D, W, M or Y"):
        duration(text)


@pytest.mark.parametrize(
    ("span", "bar"),
    [
        ("1800 S", "1 secs"),
        ("60 S", "1 min"),
        ("3600 S", "5 secs"),
        ("1 D", "1 min"),
        ("1 D", "1 day"),
        ("2 D", "2 mins"),
        ("1 W", "1 hour"),
        ("1 M", "1 day"),
        ("1 Y", "1 day"),
        ("10 Y", "1 month"),
        ("5 D", "5 mins"),
    ],
)
def test_combinations_in_ibs_step_size_table_pass(span: str, bar: str) -> None:
    assert check_bars(span, bar) == (duration(span), bar_size(bar))


def test_one_second_bars_stop_at_1800_seconds_and_the_refusal_says_so() -> None:
    with pytest.raises(BadRequest) as refusal:
        check_bars("3600 S", "1 secs")
    assert str(refusal.value) == (
        "duration 3600 S takes bar sizes from 5 secs to 1 hour (IB's step sizes); "
        "1 secs bars cover at most 1800 S per request: page a longer span, or take larger bars"
    )


def test_five_days_of_one_minute_bars_is_paged_a_day_at_a_time() -> None:
    with pytest.raises(BadRequest, match="1 min bars cover at most 1 D per request"):
        check_bars("5 D", "1 min")
    assert longest_duration("1 min") == "1 D"


def test_a_bar_longer_than_its_duration_allows_names_the_shortest_duration_for_it() -> None:
    with pytest.raises(BadRequest, match="1 hour bars need a duration of at least 3600 S"):
        check_bars("1800 S", "1 hour")


def test_a_duration_between_listed_ones_takes_the_next_longer_row() -> None:
    assert step_range("5 D") == ("3 mins", "1 week")
    assert step_range("3 W") == ("30 mins", "1 month")
    assert step_range("5 Y") == ("1 day", "1 month")


def test_daily_bars_have_no_longest_duration() -> None:
    assert longest_duration("1 day") is None


def test_a_looser_table_can_be_passed() -> None:
    loose = (*STEP_SIZES[:6], ("1 W", "1 min", "1 week"), *STEP_SIZES[9:])
    assert check_bars("5 D", "1 min", loose) == ("5 D", "1 min")


@given(st.sampled_from(sorted(BAR_SIZES)), st.integers(1, 100_000), st.sampled_from("SDWMY"))
def test_every_bar_size_and_duration_either_passes_or_names_its_allowed_range(bar: str, count: int, unit: str) -> None:
    span = f"{count} {unit}"
    try:
        check_bars(span, bar)
    except BadRequest as refusal:
        smallest, largest = step_range(span)
        assert f"from {smallest} to {largest}" in str(refusal)
        assert not BAR_SIZES[smallest] <= BAR_SIZES[bar] <= BAR_SIZES[largest]
    else:
        longest = longest_duration(bar)
        assert longest is None or duration_seconds(span) <= duration_seconds(longest)

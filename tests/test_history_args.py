"""Bar sizes and times typed on a consumer's command line: IB's spelling or short, epoch or ISO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.history_args import BAR_SECONDS, bar_for_seconds, bar_size, when

SHORT = {"1s": "1 secs", "30s": "30 secs", "1min": "1 min", "1m": "1 min", "5mins": "5 mins", "5 min": "5 mins",
         "20minutes": "20 mins", "1h": "1 hour", "4H": "4 hours", "8 hours": "8 hours", "1d": "1 day",
         "1 day": "1 day", "1w": "1 week", "1mo": "1 month", " 2 MINS ": "2 mins"}  # fmt: skip


@pytest.mark.parametrize(("typed", "ib"), SHORT.items())
def test_a_bar_size_reads_short_or_as_ib_writes_it(typed: str, ib: str) -> None:
    assert bar_size(typed) == ib


@given(st.sampled_from(sorted(BAR_SECONDS)))
def test_ib_spelling_reads_as_itself(ib: str) -> None:
    assert bar_size(ib) == ib


@given(st.text(max_size=20))
def test_any_text_is_an_ib_bar_size_or_a_refusal_that_says_what_is_accepted(text: str) -> None:
    try:
        ib = bar_size(text)
    except ValueError as exc:
        assert "1min" in str(exc) or "IB has no" in str(exc)
    else:
        assert ib in BAR_SECONDS


def test_a_bar_ib_does_not_have_is_refused_naming_those_it_has() -> None:
    with pytest.raises(ValueError, match="IB has no 7 mins bars; it has 1s 5s"):
        bar_size("7min")


def test_seconds_map_back_to_ib_bars_only_where_ib_has_them() -> None:
    assert bar_for_seconds(60) == "1 min" and bar_for_seconds(5) == "5 secs" and bar_for_seconds(3600) == "1 hour"
    assert bar_for_seconds(7) is None and bar_for_seconds(2700) is None


@given(st.integers(min_value=0, max_value=253402300799))
def test_epoch_seconds_read_as_themselves(seconds: int) -> None:
    assert when(str(seconds)) == seconds


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
       st.one_of(st.none(), st.integers(min_value=-14 * 60, max_value=14 * 60)))  # fmt: skip
def test_an_iso_time_reads_as_its_utc_epoch_and_without_a_zone_is_utc(moment: datetime, offset: int | None) -> None:
    moment = moment.replace(microsecond=0)
    zone = UTC if offset is None else timezone(timedelta(minutes=offset))
    typed = moment.isoformat() if offset is None else moment.replace(tzinfo=zone).isoformat()
    assert when(typed) == int(moment.replace(tzinfo=zone).timestamp())


def test_a_date_is_its_utc_midnight() -> None:
    assert when("2026-12-01") == int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    assert when("2026-12-01T14:30Z") == when("2026-12-01") + 14 * 3600 + 30 * 60


@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_refusal_that_gives_examples(text: str) -> None:
    try:
        seconds = when(text)
    except ValueError as exc:
        assert "epoch seconds" in str(exc) or "year 9999" in str(exc)
    else:
        assert isinstance(seconds, int)

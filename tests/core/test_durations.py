"""ISO 8601 durations: parsing, calendar arithmetic and comparison."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.durations import MAX_YEARS, parse_duration
from auditor.retention.deadline import DeadlineOutOfRangeError, retention_deadline


class TestParse:
    @pytest.mark.parametrize(
        ("text", "months", "days", "seconds"),
        [
            ("P2Y", 24, 0, 0),
            ("P14M", 14, 0, 0),
            ("P30D", 0, 30, 0),
            ("P2W", 0, 14, 0),
            ("P1Y6M", 18, 0, 0),
            ("PT1H", 0, 0, 3600),
            ("PT1H30M", 0, 0, 5400),
            ("p3d", 0, 3, 0),
        ],
    )
    def test_parses_calendar_and_clock_units(
        self, text: str, months: int, days: int, seconds: int
    ) -> None:
        """Years and months stay calendar units; weeks become days; clock units become seconds."""
        duration = parse_duration(text)

        assert (months, days, seconds) == (duration.total_months, duration.days, duration.seconds)

    @pytest.mark.parametrize(
        "text", ["", "P", "2Y", "P2", "PT", "P0D", "P1.5Y", "P-1D", "P1DT", "forever"]
    )
    def test_rejects_malformed_and_zero(self, text: str) -> None:
        """Anything that is not a positive ISO 8601 duration is a ValueError naming the text."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)


class TestArithmetic:
    def test_month_end_clamps(self) -> None:
        """31 January plus one month is the last day of February."""
        assert date(2024, 2, 29) == parse_duration("P1M").after(date(2024, 1, 31))
        assert date(2025, 2, 28) == parse_duration("P1M").after(date(2025, 1, 31))

    def test_before_is_the_inverse_of_after_on_ordinary_days(self) -> None:
        """Two years before 2026-11-22 is 2024-11-22."""
        assert date(2024, 11, 22) == parse_duration("P2Y").before(date(2026, 11, 22))

    def test_exceeds_compares_from_the_same_start(self) -> None:
        """Ten years exceeds two; fourteen months exceeds one year; thirty days does not exceed a month of 31."""
        anchor = date(2026, 1, 1)

        assert parse_duration("P10Y").exceeds(parse_duration("P2Y"), anchor)
        assert parse_duration("P14M").exceeds(parse_duration("P1Y"), anchor)
        assert not parse_duration("P30D").exceeds(parse_duration("P1M"), anchor)
        assert not parse_duration("P2Y").exceeds(parse_duration("P2Y"), anchor)

    @given(
        st.integers(0, 50),
        st.integers(0, 30),
        st.integers(0, 400),
        st.dates(date(1990, 1, 1), date(2090, 1, 1)),
    )
    def test_after_never_goes_backwards(
        self, years: int, months: int, days: int, start: date
    ) -> None:
        """Adding a positive duration always moves forward in time."""
        if years == months == days == 0:
            days = 1
        text = f"P{years}Y{months}M{days}D"

        assert parse_duration(text).after(start) > start


class TestBounds:
    @pytest.mark.parametrize("text", ["P1000Y", "P12000M", "P999Y12M", "P365242D", "P0000001000Y"])
    def test_up_to_a_thousand_years_is_accepted(self, text: str) -> None:
        parse_duration(text)

    @pytest.mark.parametrize(
        "text", ["P1001Y", "P3000Y", "P12001M", "P365243D", "P1000YT1S", "P" + "9" * 5000 + "Y"]
    )
    def test_longer_is_an_error_saying_the_bound(self, text: str) -> None:
        """Beyond a thousand years no date arithmetic is safe; Python's int limit never shows."""
        with pytest.raises(ValueError, match=f"^duration longer than {MAX_YEARS} years") as caught:
            parse_duration(text)
        assert len(str(caught.value)) < 100

    @given(
        st.integers(0, MAX_YEARS),
        st.integers(0, 11),
        st.integers(0, 31),
        st.integers(0, 86399),
        st.dates(),
    )
    def test_every_accepted_duration_moves_any_date_without_error(
        self, years: int, months: int, days: int, seconds: int, day: date
    ) -> None:
        """From the year 1 to 9999, forwards and backwards: the calendar's ends clamp."""
        text = f"P{years}Y{months}M{days}DT{seconds}S"
        try:
            duration = parse_duration(text)
        except ValueError:
            return  # zero, or just past the thousand years
        moment = datetime.combine(day, time(12), tzinfo=UTC)

        assert duration.before(day) <= day <= duration.after(day)
        try:
            deadline = retention_deadline(moment, duration)
        except DeadlineOutOfRangeError:  # the project's error, naming the period and the day
            assert duration.before(day) == date.min or day.year <= MAX_YEARS + 1
            return
        assert deadline <= moment

"""Retention deadlines: the exact boundary, month ends, and properties over any clock and period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.durations import Duration, parse_duration
from auditor.retention import is_overdue, retention_deadline
from auditor.retention.deadline import DeadlineOutOfRangeError

NOW = datetime(2026, 11, 22, 10, 30, 15, 250_000, tzinfo=UTC)


def test_the_deadline_is_the_clock_minus_the_period_to_the_whole_second() -> None:
    """P2Y back from 2026-11-22 10:30:15.25 is 2024-11-22 10:30:15, fractions dropped."""
    assert datetime(2024, 11, 22, 10, 30, 15, tzinfo=UTC) == retention_deadline(
        NOW, parse_duration("P2Y")
    )


def test_a_record_exactly_at_the_deadline_is_not_overdue_and_one_second_older_is() -> None:
    """Strictly before the deadline is overdue: exactly `keep_for` old is still allowed."""
    deadline = retention_deadline(NOW, parse_duration("P30D"))

    assert not is_overdue(deadline, deadline)
    assert is_overdue(deadline - timedelta(seconds=1), deadline)
    assert not is_overdue(deadline + timedelta(seconds=1), deadline)
    assert not is_overdue(None, deadline)


def test_a_naive_timestamp_is_read_as_utc_and_an_offset_is_honoured() -> None:
    """A timestamp without a time zone is UTC; one with an offset is the instant it names."""
    deadline = datetime(2024, 1, 1, 12, tzinfo=UTC)
    paris = timezone(timedelta(hours=1))

    assert is_overdue(datetime(2024, 1, 1, 11, 59, 59), deadline)  # noqa: DTZ001  (the point)
    assert not is_overdue(datetime(2024, 1, 1, 13, 0, tzinfo=paris), deadline)
    assert is_overdue(datetime(2024, 1, 1, 12, 30, tzinfo=paris), deadline)


def test_a_date_is_overdue_only_once_its_whole_day_is_before_the_deadline() -> None:
    """A DATE is overdue when the day before the deadline's day or earlier, never on that day."""
    deadline = datetime(2024, 1, 10, 0, 0, tzinfo=UTC)
    midday = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)

    assert is_overdue(date(2024, 1, 9), deadline)
    assert not is_overdue(date(2024, 1, 10), deadline)
    assert not is_overdue(date(2024, 1, 10), midday)


@pytest.mark.parametrize(
    ("now", "period", "deadline"),
    [
        (datetime(2026, 3, 28, 10, tzinfo=UTC), "P1M", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (datetime(2026, 3, 29, 0, tzinfo=UTC), "P1M", datetime(2026, 3, 1, 0, tzinfo=UTC)),
        (datetime(2026, 3, 31, 23, tzinfo=UTC), "P1M", datetime(2026, 3, 1, 0, tzinfo=UTC)),
        (datetime(2028, 2, 29, 9, tzinfo=UTC), "P1Y", datetime(2027, 3, 1, 0, tzinfo=UTC)),
        (datetime(2026, 3, 31, 23, tzinfo=UTC), "P1M1D", datetime(2026, 2, 28, 0, tzinfo=UTC)),
        (
            datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
            "PT1H",
            datetime(2025, 12, 31, 23, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_day_the_earlier_month_lacks_stands_for_the_end_of_that_month(
    now: datetime, period: str, deadline: datetime
) -> None:
    """31 March minus P1M is 1 March 00:00 (the end of February), never a time on 28 February."""
    assert deadline == retention_deadline(now, parse_duration(period))


def test_the_clock_must_be_timezone_aware() -> None:
    """A naive audit time is refused rather than guessed."""
    with pytest.raises(ValueError, match="timezone-aware"):
        retention_deadline(datetime(2026, 1, 1), parse_duration("P1Y"))  # noqa: DTZ001


def test_a_zero_period_cannot_give_a_deadline() -> None:
    """A deadline at (or after) the audit time is refused: it would make every record overdue."""
    with pytest.raises(ValueError, match="longer than zero"):
        retention_deadline(NOW, Duration())


# Hypothesis takes naive bounds and attaches the time zone itself.
instants = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2090, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
periods = st.builds(
    Duration,
    years=st.integers(0, 12),
    months=st.integers(0, 30),
    days=st.integers(0, 800),
    seconds=st.integers(0, 200_000),
).filter(lambda d: d.total_months or d.days or d.seconds)
gaps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800))


@given(now=instants, period=periods)
def test_the_deadline_is_never_in_the_future_of_the_clock(now: datetime, period: Duration) -> None:
    """Whatever the period, the deadline is before the audit time and in whole seconds."""
    deadline = retention_deadline(now, period)

    assert deadline < now
    assert 0 == deadline.microsecond
    assert deadline.tzinfo is not None


@given(now=instants, later_by=gaps, period=periods)
def test_a_later_clock_never_gives_an_earlier_deadline(
    now: datetime, later_by: timedelta, period: Duration
) -> None:
    """The deadline moves forward (or stays) as the audit clock moves forward, month ends included."""
    assert retention_deadline(now, period) <= retention_deadline(now + later_by, period)


@given(
    now=instants,
    later_by=gaps,
    period=periods,
    records=st.lists(st.one_of(instants, st.dates(date(1980, 1, 1), date(2090, 12, 31)))),
)
def test_a_later_date_never_shrinks_the_overdue_set(
    now: datetime, later_by: timedelta, period: Duration, records: list[datetime | date]
) -> None:
    """Every record overdue at one audit time is overdue at every later one."""
    earlier = retention_deadline(now, period)
    later = retention_deadline(now + later_by, period)

    overdue_then = {index for index, value in enumerate(records) if is_overdue(value, earlier)}
    overdue_later = {index for index, value in enumerate(records) if is_overdue(value, later)}

    assert overdue_then <= overdue_later


@given(now=instants, period=periods)
def test_a_record_kept_exactly_the_period_is_at_the_deadline_and_not_overdue(
    now: datetime, period: Duration
) -> None:
    """The record at the deadline is never overdue; the one a second before always is."""
    deadline = retention_deadline(now, period)

    assert not is_overdue(deadline, deadline)
    assert is_overdue(deadline - timedelta(seconds=1), deadline)


@given(
    years=st.integers(0, 10**6),
    months=st.integers(0, 10**7),
    days=st.integers(0, 10**10),
    seconds=st.integers(0, 10**12),
)
def test_any_period_gives_a_deadline_in_the_past_or_the_out_of_range_error(
    years: int, months: int, days: int, seconds: int
) -> None:
    """However long the period (P3000Y, P99999999D), the deadline is computed or refused with
    DeadlineOutOfRangeError: never an OverflowError or another ValueError."""
    if not (years or months or days or seconds):
        return
    period = Duration(years=years, months=months, days=days, seconds=seconds, text="P")
    try:
        deadline = retention_deadline(NOW, period)
    except DeadlineOutOfRangeError:
        return
    assert deadline < NOW


def test_a_period_reaching_before_year_one_is_an_error() -> None:
    """The longest period a file may give (P1000Y) back from the year 900 is no date: the error
    says so (P3000Y itself is refused when the duration is read)."""
    with pytest.raises(
        DeadlineOutOfRangeError, match="P1000Y back from 0900-06-01 reaches before the year 1"
    ):
        retention_deadline(datetime(900, 6, 1, tzinfo=UTC), parse_duration("P1000Y"))

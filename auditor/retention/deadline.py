"""Retention deadlines from the audit clock and a keep-for period, and when a record is overdue; pure.

The **deadline** is the audit time minus `keep_for`, to the whole second (rounded down):

- years and months go back on the calendar to the same day and time; a day that month does not
  have (30 February) stands for the end of that month, so 31 March 10:00 minus P1M is 1 March
  00:00, not 28 February 10:00 (which 28 March 10:00 minus P1M already is);
- then weeks, days, hours, minutes and seconds go back exactly.

So a later audit time never gives an earlier deadline, and the overdue set never shrinks as time
passes (a later audit date only ever adds overdue records). As `keep_for` is never zero, the
deadline is always in the past of the audit clock, never in its future.

A record is **overdue** when its timestamp is strictly before the deadline. A record whose
timestamp is exactly at the deadline has been kept exactly `keep_for` and is not overdue yet; one
second older, it is. A timestamp without a time zone is read as UTC. A date (a DATE column) is
overdue when its whole day (UTC) is before the deadline, that is when the date is before the
deadline's date: a date never makes a record overdue sooner than any time on that day would. A
record without a timestamp (NULL) is never overdue. A period reaching back before the year 1
(`parse_duration` accepts up to 1000 years) gives the first instant of the year 1: nothing is
overdue.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

from auditor.core.durations import Duration


class DeadlineOutOfRangeError(ValueError):
    """The period reaches back before the first instant a datetime can hold (year 1)."""


def retention_deadline(now: datetime, keep_for: Duration) -> datetime:
    """Return the instant before which records are overdue, as a UTC datetime (whole seconds).

    Raises:
        DeadlineOutOfRangeError: the period reaches back before year 1 (P3000Y).
        ValueError: `now` has no time zone, or the period is zero (`parse_duration` never gives
            one).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the audit clock must give timezone-aware times")
    if not (keep_for.total_months or keep_for.days or keep_for.seconds):
        raise ValueError("a retention period must be longer than zero for a deadline in the past")
    now = now.astimezone(UTC)
    try:
        shifted = _months_before(now, keep_for.total_months)
        deadline = shifted - timedelta(days=keep_for.days, seconds=keep_for.seconds)
    except (OverflowError, ValueError):
        raise DeadlineOutOfRangeError(
            f"{str(keep_for) or 'the period'} back from {now.date().isoformat()} reaches before the "
            "year 1"
        ) from None
    deadline = deadline.replace(microsecond=0)
    if deadline >= now:  # cannot happen with a positive period: a guard, not a branch
        raise ValueError(f"a deadline must be in the past of the audit time, not {deadline}")
    return deadline


def is_overdue(value: datetime | date | None, deadline: datetime) -> bool:
    """Whether a record with this timestamp (or date) is past the deadline, as SQL decides it."""
    if value is None:
        return False
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return instant < deadline
    return value < deadline.astimezone(UTC).date()


def _months_before(now: datetime, months: int) -> datetime:
    if months == 0:
        return now
    index = now.month - 1 - months
    year, month = now.year + index // 12, index % 12 + 1
    if year < 1:
        raise OverflowError(f"year {year}")
    last = calendar.monthrange(year, month)[1]
    if now.day > last:
        # The day does not exist in that month: the end of the month, the first instant after it.
        return datetime.combine(date(year, month, last) + timedelta(days=1), time(), tzinfo=UTC)
    return now.replace(year=year, month=month)

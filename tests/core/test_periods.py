"""Report periods by name, relative to an injected today."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.periods import parse_period


@pytest.mark.parametrize(
    ("text", "today", "first", "last"),
    [
        ("last-month", date(2026, 12, 3), date(2026, 11, 1), date(2026, 11, 30)),
        ("last-month", date(2026, 1, 15), date(2025, 12, 1), date(2025, 12, 31)),
        ("last-month", date(2024, 3, 31), date(2024, 2, 1), date(2024, 2, 29)),
        ("last-quarter", date(2026, 12, 3), date(2026, 7, 1), date(2026, 9, 30)),
        ("last-quarter", date(2026, 2, 28), date(2025, 10, 1), date(2025, 12, 31)),
        ("last-quarter", date(2026, 4, 1), date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q3", date(2020, 1, 1), date(2026, 7, 1), date(2026, 9, 30)),
        ("2026-q1", date(2020, 1, 1), date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q4", date(2020, 1, 1), date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-02", date(2020, 1, 1), date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-12", date(2020, 1, 1), date(2026, 12, 1), date(2026, 12, 31)),
        ("2026", date(2020, 1, 1), date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_named_periods_are_calendar_periods(
    text: str, today: date, first: date, last: date
) -> None:
    """Months and quarters of the calendar; `last-*` the one before today's."""
    assert (first, last) == parse_period(text, today)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-Q5", "expected last-month, last-quarter, YYYY-Qn (2026-Q3)"),
        ("2026-13", "months run from 01 to 12"),
        ("last-week", "got 'last-week'"),
        ("Q3-2026", "got 'Q3-2026'"),
        ("", "got ''"),
    ],
)
def test_other_text_is_an_error_naming_the_forms(text: str, message: str) -> None:
    """Anything else is a ValueError saying which forms there are."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_period(text, date(2026, 12, 3))


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2999, 12, 31)))
def test_last_month_and_quarter_end_before_today_and_touch_its_period(today: date) -> None:
    """`last-month` ends the day before today's month starts; `last-quarter` ends the day
    before today's quarter starts and spans three whole months."""
    first, last = parse_period("last-month", today)
    assert (last.year, last.month) != (today.year, today.month) and last < today
    assert first.day == 1 and (last.toordinal() + 1) == today.replace(day=1).toordinal()
    q_first, q_last = parse_period("last-quarter", today)
    quarter_start = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    assert q_last.toordinal() + 1 == quarter_start.toordinal()
    assert q_first.day == 1 and q_first.month in (1, 4, 7, 10)
    assert (q_last.year * 12 + q_last.month) - (q_first.year * 12 + q_first.month) == 2

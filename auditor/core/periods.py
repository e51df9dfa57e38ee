"""Report periods by name: `last-month`, `last-quarter`, `2026-Q3`, `2026-11`, `2026`."""

from __future__ import annotations

import re
from datetime import date, timedelta

PERIOD_FORMS = "last-month, last-quarter, YYYY-Qn (2026-Q3), YYYY-MM (2026-11) or YYYY (2026)"
"""The forms `parse_period` reads, for messages."""

_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def _month(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _quarter(year: int, quarter: int) -> tuple[date, date]:
    first, _ = _month(year, 3 * quarter - 2)
    _, last = _month(year, 3 * quarter)
    return first, last


def parse_period(text: str, today: date) -> tuple[date, date]:
    """Return the first and the last day (both included) of the period `text` names.

    `last-month` and `last-quarter` are the calendar month and quarter before the one `today`
    is in: on 2026-01-15, `last-month` is December 2025 and `last-quarter` 2025-Q4.

    Raises:
        ValueError: the text is none of PERIOD_FORMS, or names a month that does not exist.
    """
    value = text.strip()
    if value == "last-month":
        end = today.replace(day=1) - timedelta(days=1)
        return _month(end.year, end.month)
    if value == "last-quarter":
        this_quarter = (today.month - 1) // 3 + 1
        if this_quarter == 1:
            return _quarter(today.year - 1, 4)
        return _quarter(today.year, this_quarter - 1)
    if match := _QUARTER.match(value):
        return _quarter(int(match[1]), int(match[2]))
    if match := _MONTH.match(value):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValueError(f"{value!r} names month {month}: months run from 01 to 12")
        return _month(year, month)
    if match := _YEAR.match(value):
        year = int(match[1])
        return date(year, 1, 1), date(year, 12, 31)
    raise ValueError(f"expected {PERIOD_FORMS}, got {text!r}")

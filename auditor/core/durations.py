"""ISO 8601 durations (`P2Y`, `P14M`, `P30D`, `PT1H`) as calendar-aware values."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

_PATTERN = re.compile(
    r"P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)

DURATION_PATTERN = (
    r"^\s*[Pp](?!\s*$)(\d+[Yy])?(\d+[Mm])?(\d+[Ww])?(\d+[Dd])?"
    r"([Tt](?=\d)(\d+[Hh])?(\d+[Mm])?(\d+[Ss])?)?\s*$"
)
"""The JSON Schema form of what `parse_duration` reads (ECMA-262 regex, case-insensitive by
hand): editors validating a file against the published schemas accept every duration the
auditor accepts (the zero and over-long ones it refuses are left to the auditor)."""

MAX_YEARS = 1000
"""The longest duration accepted. No retention, backup or schedule period is longer, and any
date the tool uses (years 1000 to 9999 and more) minus one is still a date."""
_YEAR_SECONDS = 365.2425 * 86400
"""A Gregorian year, as `approx_seconds` counts it (twelve months of 30.436875 days)."""


@dataclass(frozen=True, slots=True, order=False)
class Duration:
    """A duration in calendar units; months and years are added to dates, not counted in days."""

    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0
    text: str = ""

    def __str__(self) -> str:
        return self.text

    @property
    def total_months(self) -> int:
        return self.years * 12 + self.months

    def after(self, start: date) -> date:
        """Return the date this duration after `start` (month ends clamp: 31 Jan + P1M = 28/29 Feb),
        or `date.max` when that is past the year 9999."""
        month_index = start.month - 1 + self.total_months
        year = start.year + month_index // 12
        if year > date.max.year:
            return date.max  # past the calendar's end: no date reaches it
        month = month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        try:
            return date(year, month, day) + timedelta(days=self.days, seconds=self.seconds)
        except OverflowError:
            return date.max

    def before(self, end: date) -> date:
        """Return the date this duration before `end`, clamping month ends the same way, or
        `date.min` when that is before the year 1."""
        month_index = end.month - 1 - self.total_months
        year = end.year + month_index // 12
        if year < date.min.year:
            return date.min  # before the calendar's start: every date is after it
        month = month_index % 12 + 1
        day = min(end.day, calendar.monthrange(year, month)[1])
        try:
            return date(year, month, day) - timedelta(days=self.days, seconds=self.seconds)
        except OverflowError:
            return date.min

    def exceeds(self, other: Duration, anchor: date) -> bool:
        """Whether this duration reaches past `other` when both start at `anchor`."""
        return self.after(anchor) > other.after(anchor)

    def approx_seconds(self) -> float:
        """Seconds, counting a month as 30.44 days: for schedules, never for deadlines."""
        return (self.total_months * 30.436875 + self.days) * 86400 + self.seconds


def parse_duration(text: str) -> Duration:
    """Parse an ISO 8601 duration such as `P2Y`, `P1Y6M`, `P30D`, `P2W` or `PT1H30M`.

    Raises:
        ValueError: the text is not such a duration, it is zero, or it is longer than MAX_YEARS.
    """
    match = _PATTERN.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 duration (such as P2Y, P14M, P30D, PT1H): {text!r}")
    groups = {name: value for name, value in match.groupdict().items() if value is not None}
    if any(len(value.lstrip("0")) > 9 for value in groups.values()):
        raise ValueError(f"duration longer than {MAX_YEARS} years: {text.strip()[:40]!r}")
    parts = {name: int(value) for name, value in groups.items()}
    duration = Duration(
        years=parts.get("years", 0),
        months=parts.get("months", 0),
        days=parts.get("weeks", 0) * 7 + parts.get("days", 0),
        seconds=parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0),
        text=text.strip().upper(),
    )
    if duration.total_months == 0 and duration.days == 0 and duration.seconds == 0:
        raise ValueError(f"duration must be longer than zero: {text!r}")
    if duration.approx_seconds() > MAX_YEARS * _YEAR_SECONDS:
        raise ValueError(f"duration longer than {MAX_YEARS} years: {text.strip()!r}")
    return duration


parsed_duration = functools.lru_cache(maxsize=1024)(parse_duration)
"""`parse_duration`, remembered: a file repeats a few dozen durations thousands of times, and
each is parsed once (errors are not kept, so each bad value is reported where it stands)."""


def _checked(text: str) -> str:
    parsed_duration(text)
    return text


DURATION_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "description": "An ISO 8601 duration: P2Y, P14M, P30D, P2W, PT1H (at most 1000 years).",
}

DurationText = Annotated[str, AfterValidator(_checked), WithJsonSchema(DURATION_JSON_SCHEMA)]
"""A duration as written in a YAML file: checked by `parse_duration`, kept as its text."""

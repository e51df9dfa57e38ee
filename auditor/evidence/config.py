"""The `reports:` configuration section: where the report job writes, in which formats, and
the period each report covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from auditor.core.durations import Duration, DurationText, parse_duration
from auditor.core.validation import Strict


class ReportsModel(Strict):
    """The `reports:` configuration section as written."""

    directory: str = "reports"
    formats: list[Literal["html", "json", "csv"]] = Field(default=["html", "json"], min_length=1)
    period: DurationText = "P1M"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Where the report job writes, in which formats, and the period each report covers."""

    directory: Path
    formats: tuple[str, ...] = ("html", "json")
    period: Duration = field(default_factory=lambda: parse_duration("P1M"))


def report_settings(model: ReportsModel, base: Path) -> ReportSettings:
    """The validated section as settings; the directory is relative to `base`."""
    return ReportSettings(
        directory=base / Path(model.directory).expanduser(),
        formats=tuple(dict.fromkeys(model.formats)),
        period=parse_duration(model.period),
    )

"""The `jobs:` configuration section: when each of the daemon's jobs runs (an interval or a cron
expression, jitter, enabled), validated with the rest of the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import field_validator, model_validator

from auditor.core.durations import Duration, DurationText, parse_duration
from auditor.core.validation import Strict


class JobModel(Strict):
    """One job under `jobs:` as written."""

    interval: DurationText | None = None
    cron: str | None = None
    jitter: DurationText | None = None  # default: a tenth of the interval, at most PT5M
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"not a five-field cron expression: {value!r} ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> JobModel:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("set exactly one of interval and cron")
        return self


class JobsModel(Strict):
    """The `jobs:` section as written: each job the daemon knows, the audit on by default."""

    audit: JobModel = JobModel(interval="PT1H")
    retention: JobModel | None = None
    consent: JobModel | None = None  # scheduled only when set and consent mappings exist
    report: JobModel | None = None  # writes the evidence report of the last `reports.period`
    discovery: JobModel | None = None  # scheduled only when `discovery:` names domains or pages
    web: JobModel | None = None  # scheduled only when `websites:` names sites


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """When a job runs: every `interval`, or on a cron expression, with jitter in seconds."""

    interval: Duration | None
    cron: str | None
    jitter_seconds: float
    enabled: bool = True

    @property
    def interval_seconds(self) -> float:
        """The interval, or for cron the typical gap between runs (for the staleness alert)."""
        if self.interval is not None:
            return self.interval.approx_seconds()
        return cron_period_seconds(self.cron or "")


def job_schedule(job: JobModel) -> JobSchedule:
    """The validated job as a schedule; jitter defaults to a tenth of the period, at most 5 min."""
    interval = parse_duration(job.interval) if job.interval else None
    if job.jitter is not None:
        jitter = parse_duration(job.jitter).approx_seconds()
    else:
        period = interval.approx_seconds() if interval else cron_period_seconds(job.cron or "")
        jitter = min(period / 10, 300.0)
    return JobSchedule(interval, job.cron, jitter, job.enabled)


def cron_period_seconds(expression: str) -> float:
    """A rough period of a five-field cron expression: hourly, daily or weekly and so on."""
    fields = expression.split()
    if len(fields) != 5:
        return 86400.0
    minute, hour, day, _, weekday = fields
    if minute == "*" or minute.startswith("*/"):
        step = int(minute[2:]) if minute.startswith("*/") and minute[2:].isdigit() else 1
        return 60.0 * step
    if hour == "*" or hour.startswith("*/"):
        step = int(hour[2:]) if hour.startswith("*/") and hour[2:].isdigit() else 1
        return 3600.0 * step
    if weekday != "*":
        return 7 * 86400.0
    if day != "*":
        return 30 * 86400.0
    return 86400.0

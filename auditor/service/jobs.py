"""Scheduled work: a runner that records every job's runs and failures, and APScheduler triggers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import structlog
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from auditor.core.errors import AuditorError
from auditor.core.jobs import JobCancelled, JobContext, Work
from auditor.core.ports import Clock
from auditor.service.schedules import JobSchedule
from auditor.service.snapshot import JobHealth

log = structlog.get_logger("auditor.jobs")


class Heartbeat:
    """When a scheduler job last ran: proof that the scheduler is alive, for the watchdog and /healthz."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._last


class JobRunner:
    """Runs named jobs for the scheduler, one record per job; never lets an exception escape.

    `blocked` says why jobs may not run now (a standby replica), or None when they may. Once
    `stop_accepting` is called, no run starts and running ones are asked to stop.
    """

    def __init__(self, clock: Clock, blocked: Callable[[], str | None]) -> None:
        self._clock = clock
        self._blocked = blocked
        self._work: dict[str, Work] = {}
        self._records: dict[str, JobHealth] = {}
        self._running: set[str] = set()
        self._stopping = False
        self._lock = threading.Condition()

    def add(self, job_id: str, work: Work, interval_seconds: float) -> None:
        """Register a job, keeping its record if it was registered before (a reload)."""
        with self._lock:
            self._work[job_id] = work
            record = self._records.get(job_id, JobHealth(job_id, interval_seconds))
            self._records[job_id] = replace(record, interval_seconds=interval_seconds)

    def remove(self, job_id: str) -> None:
        """Forget a job that is no longer configured, record included."""
        with self._lock:
            self._work.pop(job_id, None)
            self._records.pop(job_id, None)

    def health(self) -> tuple[JobHealth, ...]:
        """Every registered job's record, by job id."""
        with self._lock:
            return tuple(self._records[job_id] for job_id in sorted(self._records))

    def running(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._running))

    def run(self, job_id: str) -> None:
        """Run one job now (the scheduler's callable): record it, log and count a failure."""
        with self._lock:
            work = self._work.get(job_id)
            blocked = "stopping" if self._stopping else self._blocked()
            if work is None or blocked is not None or job_id in self._running:
                log.debug("job_skipped", job_id=job_id, reason=blocked or "not runnable")
                return
            self._running.add(job_id)
        started = time.monotonic()
        outcome = "failure"
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            try:
                work(JobContext(job_id, self._stop_reason))
                outcome = "success"
            except JobCancelled as exc:
                outcome = "cancelled"
                log.warning("job_cancelled", reason=exc.reason)
            except AuditorError as exc:
                # The project's own errors say what failed and where; no traceback is needed.
                log.error("job_failed", error=str(exc), error_type=type(exc).__name__)
            except Exception:
                # A job that raises must not take the scheduler thread, or the daemon, with it.
                log.exception("job_failed")
            finally:
                self._finish(job_id, time.monotonic() - started, outcome)

    def _finish(self, job_id: str, seconds: float, outcome: str) -> None:
        now = self._clock()
        with self._lock:
            self._running.discard(job_id)
            record = self._records.get(job_id)
            if record is not None:
                self._records[job_id] = replace(
                    record,
                    runs=record.runs + 1,
                    failures=record.failures + (outcome == "failure"),
                    last_run=now,
                    last_success=now if outcome == "success" else record.last_success,
                    last_duration_seconds=seconds,
                )
            self._lock.notify_all()

    def _stop_reason(self) -> str | None:
        return "the daemon is stopping" if self._stopping else self._blocked()

    def stop_accepting(self) -> None:
        """Start no more runs, and ask running ones to stop at their next check."""
        with self._lock:
            self._stopping = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs, at most `timeout` seconds; return whether none runs."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True


def trigger_for(schedule: JobSchedule) -> BaseTrigger:
    """The APScheduler trigger for a schedule: an interval or a cron expression, UTC, with jitter."""
    jitter = schedule.jitter_seconds or None
    if schedule.interval is not None:
        seconds = max(schedule.interval.approx_seconds(), 1.0)
        return IntervalTrigger(seconds=seconds, timezone="UTC", jitter=jitter)
    minute, hour, day, month, weekday = (schedule.cron or "").split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone="UTC",
        jitter=jitter,
    )


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """Translate a crontab day-of-week field (0 and 7 are Sunday) into weekday names.

    APScheduler 3.x counts 0 as Monday, so "0 3 * * 0" would run on Mondays if passed through;
    names mean the same to both. Raises ValueError for a field crontab would reject.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _weekday_number(low)
            last = _weekday_number(high) if high else (6 if step_text else first)
        if step < 1 or last < first:
            raise ValueError(f"bad day-of-week field {field!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday_number(text: str) -> int:
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise ValueError(f"bad day of week {text!r}")


def misfire_grace(schedule: JobSchedule) -> int:
    """How late a run may start and still run: half the interval, at least a second."""
    return max(1, int(schedule.interval_seconds / 2))

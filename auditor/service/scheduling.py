"""The daemon's schedule and leadership: which work runs, when, and only on the leader.

A part of `Daemon` (its main thread alone calls these); `daemon.py` registers each kind of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from auditor.core.errors import StoreError
from auditor.core.jobs import Work
from auditor.service.generation import Generation
from auditor.service.jobs import Heartbeat, JobRunner, misfire_grace, trigger_for
from auditor.service.leader import Leadership
from auditor.service.schedules import JobSchedule
from auditor.service.sdnotify import Notifier
from auditor.store import StateStore

log = structlog.get_logger("auditor.daemon")

LEADER_POLL_SECONDS = 2.0
"""How often a standby asks for the lock, and the leader checks it still holds it."""
SNAPSHOT_REFRESH_SECONDS = 15.0
"""How often the metrics snapshot is re-read from the store (a standby's, or after a CLI waiver)."""
WorkFactory = Callable[[Any], Work]
"""Builds a kind of work's body from the daemon."""
WORK: dict[str, WorkFactory] = {}
"""Each kind of work by its name under `jobs:` in the configuration (registered by daemon.py)."""
NEEDED: dict[str, Callable[[Generation], bool]] = {}
"""Work scheduled only when the configuration gives it something to do, by name."""


class Scheduling:
    """The daemon's schedule and leadership."""

    generation: Generation
    scheduler: BackgroundScheduler
    runner: JobRunner
    heartbeat: Heartbeat
    heartbeat_seconds: float
    leadership: Leadership
    notifier: Notifier
    store: StateStore
    clock: Callable[[], datetime]
    _active: bool
    _next_leader_poll: float

    def refresh_snapshot(self) -> None:
        raise NotImplementedError

    # -- scheduling -----------------------------------------------------------------------------

    def _work_jobs(self) -> dict[str, JobSchedule]:
        """The configured jobs this code knows how to run, enabled ones only."""
        jobs = self.generation.config.jobs
        return {
            name: jobs[name]
            for name in jobs
            if name in WORK
            and jobs[name].enabled
            and (name not in NEEDED or NEEDED[name](self.generation))
        }

    def _add_internal_jobs(self) -> None:
        self.scheduler.add_job(
            self.heartbeat.beat,
            "interval",
            seconds=self.heartbeat_seconds,
            id="heartbeat",
            misfire_grace_time=None,
        )
        self.scheduler.add_job(
            self.refresh_snapshot,
            "interval",
            seconds=SNAPSHOT_REFRESH_SECONDS,
            id="snapshot-refresh",
            misfire_grace_time=None,
        )
        self._register_work()

    def _register_work(self) -> None:
        wanted = self._work_jobs()
        for name, schedule in wanted.items():
            self.runner.add(name, WORK[name](self), schedule.interval_seconds)
        for job in self.runner.health():
            if job.job_id not in wanted:
                self.runner.remove(job.job_id)

    def _schedule_work(self, previous: Mapping[str, JobSchedule], run_now: bool) -> None:
        """Bring the scheduler's work jobs in line with the configuration (on the leader)."""
        wanted = self._work_jobs()
        for name, schedule in wanted.items():
            if self.scheduler.get_job(name) is not None and previous.get(name) == schedule:
                continue
            options: dict[str, object] = {}
            if run_now or self.scheduler.get_job(name) is None:
                options["next_run_time"] = self.clock()
            self.scheduler.add_job(
                self.runner.run,
                trigger_for(schedule),
                args=[name],
                id=name,
                name=name,
                misfire_grace_time=misfire_grace(schedule),
                replace_existing=True,
                **options,
            )
            log.info("job_scheduled", job_id=name, schedule=_describe(schedule))
        for job in self.scheduler.get_jobs():
            if job.id in WORK and job.id not in wanted:
                self._unschedule(job.id)

    def _unschedule(self, name: str) -> None:
        try:
            self.scheduler.remove_job(name)
        except JobLookupError:
            return
        log.info("job_unscheduled", job_id=name)

    # -- leadership -----------------------------------------------------------------------------

    def _poll_leadership(self) -> None:
        self._next_leader_poll = time.monotonic() + LEADER_POLL_SECONDS
        leader = self.leadership.poll()
        if leader and not self._active:
            self._become_leader()
        elif self._active and not leader:
            self._become_standby()

    def _become_leader(self) -> None:
        self._active = True
        if not self.leadership.single_replica:
            log.info("leadership_acquired")
        try:
            # Only the leader runs audits, so a run still marked running is a dead process's.
            interrupted = self.store.mark_interrupted(self.clock())
        except StoreError as exc:
            log.error("mark_interrupted_failed", error=str(exc))
        else:
            if interrupted:
                log.warning("runs_interrupted", runs=interrupted)
        self._schedule_work({}, run_now=True)
        self.notifier.status(self._status())

    def _become_standby(self) -> None:
        # A running job sees the change at its next check and stops; none starts from now on.
        self._active = False
        log.warning("leadership_lost", reason=self.leadership.last_error or "lock not held")
        for name in WORK:
            self._unschedule(name)
        self.notifier.status(self._status())

    def _standby_reason(self) -> str | None:
        return None if self.leadership.is_leader else "this replica is on standby"

    def _status(self, text: str | None = None) -> str:
        role = "active" if self.leadership.is_leader else "standby"
        return text or f"{role}; {len(self.generation.integrations)} integrations"


def _describe(schedule: JobSchedule) -> str:
    when = f"every {schedule.interval}" if schedule.interval else f"cron {schedule.cron}"
    return f"{when}, jitter up to {schedule.jitter_seconds:g} s"

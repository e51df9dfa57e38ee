"""The daemon's composition root: adapters from config, the scheduler, signals, reload and leadership."""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from auditor import __version__
from auditor.config import Config, JobSchedule, load_config
from auditor.consent.check import check_sources, run_consent_job
from auditor.core.durations import parse_duration
from auditor.core.errors import AuditUnavailableError, InvalidInputError, StoreError
from auditor.core.inventory import load_inventory
from auditor.core.jobs import JobCancelled, JobContext, Work
from auditor.core.model import Integration
from auditor.core.policies import PolicyData, load_policies
from auditor.core.ports import GeoLocator
from auditor.discovery.job import DiscoveryJob, discovery_needed
from auditor.evidence.scheduled import ReportJob
from auditor.probes.dns import FAILURE_STATUSES, DnsResolver
from auditor.retention import load_retention_policies
from auditor.retention.job import RetentionJob
from auditor.retention.plan import RetentionPlan, retention_findings
from auditor.service.httpserver import MetricsServer
from auditor.service.inputs import Inputs
from auditor.service.jobs import Heartbeat, JobRunner, misfire_grace, trigger_for
from auditor.service.leader import Leadership, leadership_for
from auditor.service.log import configure_logging
from auditor.service.metrics import Exposition
from auditor.service.notify import deliver, prepare
from auditor.service.sdnotify import Notifier, Watchdog
from auditor.service.snapshot import ConsentStatus, Snapshot
from auditor.service.wiring import build_locator, build_resolver, database_url
from auditor.store import (
    SnapshotCounts,
    StateStore,
    StoredCoverage,
    describe_error,
    display_url,
    evidence_key,
    prune_cutoff,
)
from auditor.transfers.audit import run_audit

log = structlog.get_logger("auditor.daemon")

STOP_WAIT_SECONDS = 20.0
"""How long SIGTERM waits for a running job; systemd's TimeoutStopSec must be longer."""
HEARTBEAT_SECONDS = 5.0
"""How often the scheduler proves it is alive; shorter when the watchdog period asks for it."""
LEADER_POLL_SECONDS = 2.0
"""How often a standby asks for the lock, and the leader checks it still holds it."""
SNAPSHOT_REFRESH_SECONDS = 15.0
"""How often the metrics snapshot is re-read from the store (a standby's, or after a CLI waiver)."""
KEEP_OBSERVATIONS = parse_duration("P30D")
"""How long observations are kept when the configuration names no database (and so no period)."""
LOOP_SECONDS = 0.5
"""The main loop's tick: signals are handled and the watchdog pinged at least this often."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Generation:
    """One loaded and valid set of inputs; a reload swaps in a new one, jobs read it at start."""

    config: Config
    policies: PolicyData
    integrations: tuple[Integration, ...]
    resolver: DnsResolver
    locator: GeoLocator


def load_generation(config_path: Path) -> Generation:
    """Load config, policy data and inventory, and build the resolver and geolocator from them.

    Raises:
        InvalidInputError: the configuration, inventory or policy data is invalid.
        AuditUnavailableError: a GeoIP database, range file or zone file cannot be used.
    """
    config = load_config(config_path)
    policies = load_policies(config.policies)
    integrations = tuple(load_inventory(config.inventory, policies, display=config.base))
    needs_geo = any(integration.endpoints for integration in integrations)
    return Generation(
        config=config,
        policies=policies,
        integrations=integrations,
        resolver=build_resolver(config),
        locator=build_locator(config, policies, needed=needs_geo),
    )


WorkFactory = Callable[["Daemon"], Work]
WORK: dict[str, WorkFactory] = {"audit": lambda daemon: daemon.audit}
"""Each kind of work by its name under `jobs:` in the configuration; consent, retention and
discovery jobs plug in here."""
WORK["consent"] = lambda daemon: daemon.consent
NEEDED: dict[str, Callable[[Generation], bool]] = {
    "consent": lambda generation: bool(generation.config.sources.consent),
}
"""Work scheduled only when the configuration gives it something to do, by name."""
WORK["retention"] = lambda daemon: daemon.retention.work
NEEDED["retention"] = lambda generation: bool(generation.config.retention)
WORK["report"] = lambda daemon: daemon.reports.work
# Without a database nothing is recorded beyond the process's life: there is nothing to report.
NEEDED["report"] = lambda generation: generation.config.database is not None
WORK["discovery"] = lambda daemon: daemon.discovery.work
NEEDED["discovery"] = lambda generation: discovery_needed(generation.config.discovery)


class Daemon:
    """Runs the scheduled jobs on the leader, serves metrics everywhere, reloads and stops cleanly.

    Only the main thread changes the schedule and leadership, and the generation on reload (an
    audit only swaps in GeoIP data re-read from changed files); jobs run in the scheduler's
    threads and read `generation` once when they start.
    """

    def __init__(
        self,
        config_path: Path,
        generation: Generation,
        store: StateStore,
        leadership: Leadership,
        notifier: Notifier,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config_path = config_path
        self.generation = generation
        self.store = store
        self.leadership = leadership
        self.notifier = notifier
        self.clock = clock
        self.heartbeat = Heartbeat()
        self.watchdog = Watchdog(notifier, self.heartbeat.age)
        self.runner = JobRunner(clock, self._standby_reason)
        self.server: MetricsServer | None = None
        self.exposition = Exposition(self.snapshot)
        self.retention: RetentionJob = RetentionJob(
            policies=lambda: load_retention_policies(
                self.generation.config.retention, display=self.generation.config.base
            ),
            data_sources=lambda: self.generation.config.sources.data_sources,
            ledger=store,
            clock=clock,
            environ=os.environ,
            record=self._record_retention,
        )
        self.reports: ReportJob = ReportJob(self._inputs, store, clock)
        self.discovery: DiscoveryJob = DiscoveryJob(self._inputs, store, clock)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=len(WORK) + 2)},
            job_defaults={"max_instances": 1, "coalesce": True},
        )
        self.reload_ok = True
        self.reload_at: datetime | None = clock()
        self._stored = Snapshot()
        self._dns = (0, 0)  # queries, failed lookups: over every completed run
        self._dns_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._generation_lock = threading.Lock()
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._stopping = False
        self._active = False  # leader, with the work scheduled
        self._next_leader_poll = 0.0
        self.heartbeat_seconds = min(HEARTBEAT_SECONDS, (self.watchdog.period or 60.0) / 4)

    # -- what the metrics endpoint reads -------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The stored results with the live job records, leadership and reload state."""
        queries, failures = self._dns
        return replace(
            self._stored,
            jobs=self.runner.health(),
            dns_queries=queries,
            dns_failures=failures,
            config_reload_ok=self.reload_ok,
            config_reload_at=self.reload_at,
            leader=self.leadership.is_leader,
            version=__version__,
            **self.retention.state.snapshot_fields(),
            report_last_written=self.reports.last_written,
            **self.discovery.snapshot_fields(),
        )

    def health(self) -> tuple[bool, str]:
        """Healthy while the scheduler's heartbeat is fresh and the state database is the one
        opened (a SQLite file deleted or replaced under the daemon loses every write)."""
        age = self.heartbeat.age()
        limit = max(3 * self.heartbeat_seconds, 10.0)
        if age > limit:
            return False, f"the scheduler's heartbeat is {age:.0f} s old (limit {limit:.0f} s)"
        try:
            self.store.check_file()
        except StoreError as exc:
            return False, str(exc)
        return True, "ok"

    def refresh_snapshot(self) -> None:
        """Re-read what the metrics show from the store; on failure keep the last one."""
        # One refresh at a time: an older read must not overwrite the one an audit just made.
        with self._refresh_lock:
            try:
                counts = self.store.snapshot_counts(self.clock().date())
                consent = self.store.consent_coverage()
            except StoreError as exc:
                log.warning("snapshot_refresh_failed", error=str(exc))
                return
            except Exception as exc:  # noqa: BLE001
                # A stored row the store cannot read (a date past the calendar, a bad type): the
                # metrics keep the last snapshot, and the job that asked goes on.
                log.error("snapshot_refresh_failed", error=f"{type(exc).__name__}: {exc}")
                return
            self._stored = replace(_stored_snapshot(counts), consent=_consent_statuses(consent))
            try:
                # Here, in a job's thread, rather than in the first scrape after an audit.
                self.exposition.prerender()
            except Exception:
                log.exception("metrics_prerender_failed")

    # -- start-up, main loop, stop --------------------------------------------------------------

    def start(self) -> None:
        """Serve metrics, settle leadership, start the scheduler, then tell systemd we are ready.

        Raises:
            AuditUnavailableError: the metrics address cannot be bound.
        """
        self.refresh_snapshot()
        host, port = self.generation.config.metrics_listen
        server = MetricsServer(host, port, self.exposition.render, self.health)
        try:
            self.server = server.start()
        except OSError as exc:
            raise AuditUnavailableError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self._install_signal_handlers()
        self._add_internal_jobs()
        self.scheduler.start()
        if self.leadership.single_replica:
            log.info(
                "single_replica",
                database=self.store.url,
                message="SQLite state database: this is the only replica and runs every job; "
                "use PostgreSQL to run an active and a standby replica",
            )
        self._poll_leadership()
        if not self.leadership.is_leader:
            reason = self.leadership.last_error or "another replica holds the leader lock"
            log.info("standby", reason=reason, retry_seconds=LEADER_POLL_SECONDS)
        self.notifier.ready(self._status())
        log.info("daemon_ready", leader=self.leadership.is_leader, jobs=sorted(self._work_jobs()))

    def serve(self) -> None:
        """Handle signals, leadership and the watchdog until SIGTERM or SIGINT."""
        while True:
            try:
                signum: int | None = self._signals.get(timeout=LOOP_SECONDS)
            except queue.Empty:
                signum = None
            if signum == signal.SIGHUP:
                self.reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                log.info("stop_requested", signal=signal.Signals(signum).name)
                return
            if time.monotonic() >= self._next_leader_poll:
                self._poll_leadership()
            self.watchdog.tick()

    def stop(self) -> bool:
        """Stop within a bounded time; return whether every job finished (False: one was abandoned)."""
        self._stopping = True
        self.notifier.stopping("stopping")
        self.runner.stop_accepting()
        running = self.runner.running()
        if running:
            log.info("waiting_for_jobs", jobs=list(running), seconds=STOP_WAIT_SECONDS)
        finished = self.runner.wait_idle(STOP_WAIT_SECONDS)
        if not finished:
            # Its run stays `running` in the store; the next leader marks it interrupted.
            log.warning("jobs_abandoned", jobs=list(self.runner.running()))
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.server is not None:
            self.server.stop()
        self.leadership.release()
        if finished:
            self.store.close()
        log.info("daemon_stopped", clean=finished)
        return finished

    # -- signals and reload ---------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only queue it: the main loop does the work, outside the signal handler.
        if signum in (signal.SIGTERM, signal.SIGINT) and self._stopping:
            os.write(2, b"gdpr-auditor: second stop signal, exiting at once\n")
            os._exit(128 + signum)
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._stopping = True
        self._signals.put(signum)

    def reload(self) -> bool:
        """Reload config, policies and inventory; keep the last good ones if anything is invalid."""
        self.notifier.reloading("reloading the configuration")
        log.info("reload_requested", config=str(self.config_path))
        try:
            new = load_generation(self.config_path)
        except InvalidInputError as exc:
            self._reject_reload([str(issue) for issue in exc.issues])
            return False
        except AuditUnavailableError as exc:
            self._reject_reload([str(exc)])
            return False
        old = self.generation
        self._warn_restart_needed(old.config, new.config)
        with self._generation_lock:
            self.generation = new  # one swap: a job sees the old or the new, never a mix
        if (old.config.log_level, old.config.log_format) != (
            new.config.log_level,
            new.config.log_format,
        ):
            configure_logging(new.config.log_level, new.config.log_format)
        self._register_work()
        if self._active:
            self._schedule_work(old.config.jobs, run_now=False)
        self.reload_ok, self.reload_at = True, self.clock()
        log.info("reload_succeeded", integrations=len(new.integrations))
        self._evidence(
            "config-reload",
            {
                "accepted": True,
                "config_digest": new.config.digest,
                "previous_config_digest": old.config.digest,
                "policy_digest": new.policies.digest,
                "previous_policy_digest": old.policies.digest,
                "integrations": len(new.integrations),
            },
        )
        self.notifier.ready(self._status())
        return True

    def _reject_reload(self, issues: list[str]) -> None:
        self.reload_ok = False
        self._evidence("config-reload", {"accepted": False, "problems": len(issues)})
        log.error(
            "reload_rejected",
            issues=issues,
            message="keeping the last good configuration, inventory and policy data",
        )
        self.notifier.ready(self._status("reload rejected; running on the last good configuration"))

    def _inputs(self) -> Inputs:
        """The current generation's inputs, read by a job when it starts."""
        generation = self.generation
        return Inputs(generation.config, generation.policies, generation.integrations)

    def _record_retention(self, plans: list[RetentionPlan]) -> None:
        found = retention_findings(plans, self.generation.policies)
        changes = self.store.record_job_findings("retention", found, self.clock())
        log.info("retention_findings_recorded", open=changes.open, new=changes.new,
                 resolved=changes.resolved)  # fmt: skip

    def _evidence(self, kind: str, content: dict[str, object]) -> None:
        """Append to the evidence chain; a database hiccup is logged, never fatal to a reload."""
        try:
            self.store.append_evidence(kind, content, self.clock())
        except StoreError as exc:
            log.error("evidence_not_recorded", kind=kind, error=str(exc))

    def _warn_restart_needed(self, old: Config, new: Config) -> None:
        if old.metrics_listen != new.metrics_listen:
            log.warning("restart_needed", setting="metrics.listen")
        if old.database != new.database:
            log.warning("restart_needed", setting="database")

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

    # -- the work -------------------------------------------------------------------------------

    def audit(self, context: JobContext) -> None:
        """One recorded audit: begin the run, audit, record it; then expire waivers and prune.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; the run is recorded as
                interrupted.
            Exception: whatever the audit or the store raised, after recording the run as failed.
        """
        generation = self._with_current_geodata(self.generation)
        clock = self.clock
        started = clock()
        run_id = self.store.begin_run(
            started,
            tool_version=__version__,
            config_digest=generation.config.digest,
            policy_digest=generation.policies.digest,
        )
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            log.info("audit_started", integrations=len(generation.integrations))
            stats_before = _dns_counts(generation.resolver)
            try:
                result = run_audit(
                    generation.integrations,
                    generation.policies,
                    generation.resolver,
                    generation.locator,
                    started.date(),
                    clock,
                    progress=lambda _phase, _done, _total: context.check(),
                    max_data_age_days=generation.config.geoip_max_age_days,
                )
                summary = self.store.finish_run(run_id, result, clock())
            except BaseException as exc:
                self._record_unfinished(run_id, exc)
                raise
            finally:
                self._count_dns(generation.resolver, stats_before)
            reopened = self.store.expire_waivers(clock())
            keep = generation.config.database
            pruned = 0
            if keep is not None:
                pruned = self.store.prune_observations(
                    prune_cutoff(keep.keep_observations, started)
                )
            self.refresh_snapshot()
            log.info(
                "audit_finished",
                integrations=len(result.integrations),
                hostnames=result.hostnames,
                findings=len(result.findings),
                open=summary.open,
                new=summary.new,
                resolved=summary.resolved,
                reopened=summary.reopened,
                carried=summary.carried,
                probes_failed=len(result.failed_probes),
                waivers_expired=len(reopened),
                observations_pruned=pruned,
                duration_seconds=round((clock() - started).total_seconds(), 3),
            )
            for warning in result.warnings:
                # Ops see it in the log; the GdprAuditorGeoDataStale alert covers dated data.
                log.warning(
                    "data_stale",
                    kind=warning.kind,
                    source=warning.source,
                    age_days=warning.age_days,
                    max_age_days=warning.max_age_days,
                )
            self._notify(generation.config)

    def _with_current_geodata(self, generation: Generation) -> Generation:
        """The generation with its GeoIP databases read anew if their files changed on disk.

        The databases are read into memory, so a file replaced in place does no harm to the data
        in use; a new file that cannot be read (half copied, corrupt) leaves that data in use.
        """
        changed = getattr(generation.locator, "changed", None)
        files: list[str] = changed() if callable(changed) else []
        if not files:
            return generation
        log.warning("geoip_file_changed", files=files, message="reading the new GeoIP data")
        try:
            locator = build_locator(generation.config, generation.policies)
        except AuditUnavailableError as exc:
            log.error(
                "geoip_reload_failed",
                error=str(exc),
                message="auditing with the GeoIP data read before; retried at the next run",
            )
            return generation
        fresh = replace(generation, locator=locator)
        with self._generation_lock:
            # A reload in the meantime brought its own, newer data: keep that one.
            if self.generation is generation:
                self.generation = fresh
        return fresh

    def _notify(self, config: Config) -> None:
        """Post new and resolved critical findings to the webhook, if configured; never raise."""
        if config.notify is None:
            return
        try:
            deliver(self.store, config.notify, os.environ, self.clock)
        except (InvalidInputError, StoreError) as exc:
            # The audit is recorded: a notification problem must not fail it. It is retried
            # after the next audit, as the events stay pending.
            log.error("notifications_not_delivered", error=str(exc))

    def _record_unfinished(self, run_id: int, exc: BaseException) -> None:
        try:
            if isinstance(exc, JobCancelled):
                # Stopped on purpose (SIGTERM, lost leadership): the audit itself did not fail.
                reason = f"stopped before the run finished: {exc.reason}"
                self.store.interrupt_run(run_id, self.clock(), reason)
            else:
                self.store.fail_run(run_id, self.clock(), describe_error(exc))
        except StoreError as store_exc:
            log.error("run_not_recorded", error=str(store_exc))

    def _count_dns(self, resolver: DnsResolver, before: tuple[int, int]) -> None:
        after = _dns_counts(resolver)
        with self._dns_lock:
            queries, failures = self._dns
            self._dns = (queries + after[0] - before[0], failures + after[1] - before[1])

    def consent(self, context: JobContext) -> None:
        """One consent check of every consent mapping, recorded with its findings (Art. 49(1)(a)).

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; nothing is recorded.
            ConsentCheckError: some mappings could not be checked; the others are recorded, and
                the failed ones keep their last counts, marked stale.
        """
        generation = self.generation
        try:
            run_consent_job(
                generation.config.sources,
                generation.integrations,
                generation.policies,
                self.store,
                clock=self.clock,
                environ=os.environ,
                check=context.check,
            )
        finally:
            # Failed or not, the stored results changed (fresh counts, or stale marks).
            self.refresh_snapshot()


def _stored_snapshot(counts: SnapshotCounts) -> Snapshot:
    last = counts.last_run
    return Snapshot(
        open_findings=counts.open_findings,
        recently_resolved=counts.recently_resolved,
        waived_findings=counts.waived_findings,
        carried_findings=counts.carried_findings,
        waiver_expiry=counts.waiver_expiry,
        integrations_by_category=counts.integrations_by_category,
        places=counts.places,
        data_built=counts.data_built,
        last_audit=last.finished_at if last is not None else None,
    )


def _consent_statuses(stored: Mapping[str, StoredCoverage]) -> dict[str, ConsentStatus]:
    statuses = {}
    for integration, row in stored.items():
        counts = row.coverage
        statuses[integration] = ConsentStatus(
            shared=counts.shared if counts else None,
            missing=counts.missing if counts else None,
            withdrawn=counts.withdrawn if counts else None,
            checked_at=row.checked_at,
            stale=row.stale,
        )
    return statuses


def _dns_counts(resolver: DnsResolver) -> tuple[int, int]:
    stats = resolver.stats
    return stats.queries, sum(stats.statuses[status] for status in FAILURE_STATUSES)


def _describe(schedule: JobSchedule) -> str:
    when = f"every {schedule.interval}" if schedule.interval else f"cron {schedule.cron}"
    return f"{when}, jitter up to {schedule.jitter_seconds:g} s"


def run_daemon(config_path: Path, environ: Mapping[str, str] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; return the exit status (0 after a clean stop).

    Raises:
        InvalidInputError: the configuration, inventory or policy data is invalid.
        SchemaVersionError: the state database has another schema version.
        StoreError: the state database cannot be reached.
        AuditUnavailableError: GeoIP data cannot be used, or the metrics address cannot be bound.
    """
    env = os.environ if environ is None else environ
    configure_logging()
    generation = load_generation(config_path)
    config = generation.config
    configure_logging(config.log_level, config.log_format)
    # APScheduler logs every heartbeat run at INFO; its warnings (missed runs) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if config.sources.consent:
        # A misconfigured table or column stops the start (exit 2); a database that is down
        # does not: the consent job fails and is counted until it is back.
        for reason in check_sources(config.sources, env):
            log.warning("consent_source_unreachable", error=reason)
    url = database_url(config, env)
    log.info(
        "daemon_starting",
        version=__version__,
        config=str(config.path),
        database=display_url(url),
        integrations=len(generation.integrations),
    )
    store = StateStore.open(url, evidence_key=evidence_key(env))
    if config.notify is not None:
        prepare(store, utcnow)  # findings from now on are notified, the history before is not
    daemon = Daemon(config_path, generation, store, leadership_for(store.engine.url), Notifier(env))
    try:
        daemon.start()
        daemon.serve()
    finally:
        finished = daemon.stop()
    if not finished:
        # The abandoned job's thread would keep the interpreter from exiting (executor threads
        # are joined at exit); the store is consistent, its run gets marked interrupted later.
        logging.shutdown()
        os._exit(0)
    return 0

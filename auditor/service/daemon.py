"""The daemon's composition root: adapters from config, the scheduler, signals, reload and leadership."""

from __future__ import annotations

import errno
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from auditor import __version__
from auditor.config import Config
from auditor.consent.check import check_sources
from auditor.consent.job import ConsentJob
from auditor.core.collector import collector_paused
from auditor.core.durations import parse_duration
from auditor.core.errors import AuditUnavailableError, InvalidInputError, ListenError, StoreError
from auditor.core.jobs import JobContext
from auditor.discovery.job import DiscoveryJob, discovery_needed
from auditor.discovery.web.job import WebJob, web_needed
from auditor.evidence.scheduled import ReportJob
from auditor.retention.job import RetentionJob
from auditor.retention.job import daemon_job as retention_job
from auditor.service.generation import Generation, load_generation
from auditor.service.httpserver import MetricsServer
from auditor.service.inputs import Inputs
from auditor.service.jobs import Heartbeat, JobRunner
from auditor.service.landing import landing_status, render_landing
from auditor.service.leader import Leadership, leadership_for
from auditor.service.log import configure_logging
from auditor.service.memory import release_freed_memory
from auditor.service.metrics import Exposition
from auditor.service.notify import deliver, prepare
from auditor.service.reload import Reloading
from auditor.service.scheduling import (
    LEADER_POLL_SECONDS,
    NEEDED,
    WORK,
)
from auditor.service.sdnotify import Notifier, Watchdog
from auditor.service.snapshot import Snapshot, consent_statuses, stored_snapshot
from auditor.service.wiring import build_locator, database_url, web_evidence_directory
from auditor.store import (
    StateStore,
    display_url,
    evidence_key,
)
from auditor.transfers.job import AuditJob

log = structlog.get_logger("auditor.daemon")

STOP_WAIT_SECONDS = 20.0
"""How long SIGTERM waits for a running job; systemd's TimeoutStopSec must be longer."""
HEARTBEAT_SECONDS = 5.0
"""How often the scheduler proves it is alive; shorter when the watchdog period asks for it."""
KEEP_OBSERVATIONS = parse_duration("P30D")
"""How long observations are kept when the configuration names no database (and so no period)."""
LOOP_SECONDS = 0.5
"""The main loop's tick: signals are handled and the watchdog pinged at least this often."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# Each kind of work, by its name under `jobs:`, and when it is needed (scheduling.py runs them).
WORK["audit"] = lambda daemon: daemon.audit
WORK["consent"] = lambda daemon: daemon.consents.work
NEEDED["consent"] = lambda generation: bool(generation.config.consent)
WORK["retention"] = lambda daemon: daemon.retention.work
NEEDED["retention"] = lambda generation: bool(generation.config.retention)
WORK["report"] = lambda daemon: daemon.reports.work
# Without a database nothing is recorded beyond the process's life: there is nothing to report.
NEEDED["report"] = lambda generation: generation.config.database is not None
WORK["discovery"] = lambda daemon: daemon.discovery.work
NEEDED["discovery"] = lambda generation: discovery_needed(generation.config.discovery)
WORK["web"] = lambda daemon: daemon.web.work
NEEDED["web"] = lambda generation: web_needed(generation.config.websites)


SWITCH_INTERVAL = 0.001  # s a thread keeps the GIL while another waits: /metrics beside an audit


class Daemon(Reloading):
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
        sys.setswitchinterval(SWITCH_INTERVAL)
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
        self.retention: RetentionJob = retention_job(self._inputs, store, clock, os.environ)
        self.consents = ConsentJob(self._inputs, store, clock, os.environ, self.refresh_snapshot)
        self.reports: ReportJob = ReportJob(self._inputs, store, clock)
        self.discovery: DiscoveryJob = DiscoveryJob(self._inputs, store, clock)
        self.web = WebJob(
            lambda: self._with_current_geodata(self.generation), store, clock,
            root=lambda: web_evidence_directory(self.generation.config, os.environ),
            recorded=self.refresh_snapshot,
        )  # fmt: skip
        self.audits: AuditJob[Generation] = AuditJob(
            lambda: self._with_current_geodata(self.generation),
            store,
            clock,
            recorded=self.refresh_snapshot,
            finished=lambda generation: self._notify(generation.config),
        )
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=len(WORK) + 2)},
            job_defaults={"max_instances": 1, "coalesce": True},
        )
        self.reload_ok = True
        self.reload_at: datetime | None = clock()
        self._stored = Snapshot()
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
        queries, failures = self.audits.dns
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
            **self.web.snapshot_fields(),
        )

    def landing(self) -> str:
        """The landing page at `/`: the stored results, health, role and schedule."""
        status = landing_status(self.generation.config, self.clock(), self.health())
        return render_landing(self.snapshot(), status)

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
            previous = self._stored
            consent_now = consent_statuses(consent)
            stored = replace(
                stored_snapshot(counts, previous),
                consent=previous.consent if consent_now == previous.consent else consent_now,
            )
            del counts, previous  # the copies read, freed before the rendering below
            try:
                # Rendered here, in a job's thread, rather than in the first scrape after an
                # audit; the scrapes meanwhile serve the previous results' rendering.
                with self.exposition.replacing():
                    self._stored = stored
            except Exception:
                log.exception("metrics_prerender_failed")

    # -- start-up, main loop, stop --------------------------------------------------------------

    def start(self) -> None:
        """Serve metrics, settle leadership, start the scheduler, then tell systemd we are ready.

        Raises:
            ListenError: the metrics address cannot be bound.
        """
        self.refresh_snapshot()
        host, port = self.generation.config.metrics_listen
        server = MetricsServer(host, port, self.exposition.render, self.health, self.landing)
        try:
            self.server = server.start()
        except OSError as exc:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = (exc.strerror or str(exc)).lower()
            raise ListenError(address, reason, in_use=exc.errno == errno.EADDRINUSE) from exc
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

    def _inputs(self) -> Inputs:
        """The current generation's inputs, read by a job when it starts."""
        generation = self.generation
        return Inputs(generation.config, generation.policies, generation.integrations)

    # -- the work -------------------------------------------------------------------------------

    def audit(self, context: JobContext) -> None:
        """One recorded audit (see `AuditJob.work`), with the cycle collector paused until the job
        is over and its result freed: turned on amid the result's millions of objects, its
        collections would walk them all, with the /metrics thread stopped too. Then the memory
        the audit freed goes back to the system, rather than stay the daemon's until the next."""
        try:
            with collector_paused():
                self.audits.work(context)
        finally:
            release_freed_memory()

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
    if config.consent:
        # A misconfigured table or column stops the start (exit 2); a database that is down
        # does not: the consent job fails and is counted until it is back.
        for reason in check_sources(config.consent_settings, env):
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

"""The daemon's audit job: one recorded audit of every integration, on a schedule."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import structlog

from auditor import __version__
from auditor.core.collector import collector_paused
from auditor.core.errors import StoreError
from auditor.core.jobs import JobCancelled, JobContext, JobInputs, KeepSettings
from auditor.core.ports import GeoLocator
from auditor.core.results import AuditResult
from auditor.core.staleness import DataWarning
from auditor.probes.dns import FAILURE_STATUSES, DnsResolver
from auditor.store import RunSummary, StateStore, describe_error, prune_cutoff
from auditor.transfers.audit import run_audit
from auditor.transfers.config import BackupChecks

# The audit's log lines have always carried the daemon's logger name; dashboards filter on it.
log = structlog.get_logger("auditor.daemon")


class AuditConfig(Protocol):
    """What the job reads of the configuration (which the daemon composes)."""

    @property
    def digest(self) -> str: ...

    @property
    def geoip_max_age_days(self) -> int: ...

    @property
    def database(self) -> KeepSettings | None: ...

    @property
    def backups(self) -> BackupChecks: ...


class AuditInputs(JobInputs[AuditConfig], Protocol):
    """What the job reads of one loaded, valid set of inputs and the adapters built from it."""

    @property
    def resolver(self) -> DnsResolver: ...

    @property
    def locator(self) -> GeoLocator: ...


Inputs = TypeVar("Inputs", bound=AuditInputs)


class AuditJob(Generic[Inputs]):
    """Runs a recorded audit; counts the DNS queries and failed lookups of every completed run."""

    def __init__(
        self,
        inputs: Callable[[], Inputs],
        store: StateStore,
        clock: Callable[[], datetime],
        *,
        recorded: Callable[[], None],
        finished: Callable[[Inputs], None],
    ) -> None:
        self._inputs = inputs
        self.store = store
        self.clock = clock
        self._recorded = recorded  # after the run is recorded: refresh what the metrics show
        self._finished = finished  # at the very end: notifications
        self._dns = (0, 0)  # queries, failed lookups: over every completed run
        self._dns_lock = threading.Lock()

    @property
    def dns(self) -> tuple[int, int]:
        """DNS queries and failed lookups over every completed run."""
        return self._dns

    def work(self, context: JobContext) -> None:
        """One recorded audit: begin the run, audit, record it; then expire waivers and prune.

        It stays one function of about 70 lines: the run's record, its log lines and the
        cleanup after it read best in the order they happen.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; the run is recorded as
                interrupted.
            Exception: whatever the audit or the store raised, after recording the run as failed.
        """
        generation = self._inputs()
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
            stats_before = dns_counts(generation.resolver)
            try:
                summary, audited = self._audit_and_record(generation, context, run_id, started)
            except BaseException as exc:
                self._record_unfinished(run_id, exc)
                raise
            finally:
                self._count_dns(generation.resolver, stats_before)
            # The result is freed by now: what is made from here on (the store's answers, the
            # metrics' new rendering) reuses its memory rather than growing the heap past it.
            reopened = self.store.expire_waivers(clock())
            keep = generation.config.database
            pruned = 0
            if keep is not None:
                pruned = self.store.prune_observations(
                    prune_cutoff(keep.keep_observations, started)
                )
            self._recorded()
            log.info(
                "audit_finished",
                integrations=audited.integrations,
                hostnames=audited.hostnames,
                findings=audited.findings,
                open=summary.open,
                new=summary.new,
                resolved=summary.resolved,
                reopened=summary.reopened,
                carried=summary.carried,
                probes_failed=audited.probes_failed,
                waivers_expired=len(reopened),
                observations_pruned=pruned,
                duration_seconds=round((clock() - started).total_seconds(), 3),
            )
            for warning in audited.warnings:
                # Ops see it in the log; the GdprAuditorGeoDataStale alert covers dated data.
                log.warning(
                    "data_stale",
                    kind=warning.kind,
                    source=warning.source,
                    age_days=warning.age_days,
                    max_age_days=warning.max_age_days,
                )
            self._finished(generation)

    def _audit_and_record(
        self, generation: Inputs, context: JobContext, run_id: int, started: datetime
    ) -> tuple[RunSummary, Audited]:
        """Audit and record the run; return what it did and the little the log needs of it.

        The result lives only here: the daemon runs for months, and the next audit must not
        find the last one's millions of objects still held (nor its memory spread among them).
        """
        with collector_paused():
            result = run_audit(
                generation.integrations,
                generation.policies,
                generation.resolver,
                generation.locator,
                started.date(),
                self.clock,
                progress=lambda _phase, _done, _total: context.check(),
                max_data_age_days=generation.config.geoip_max_age_days,
                backup_checks=generation.config.backups,
            )
            # Every address is located by now; kept, the locator's cache would hold the last
            # tens of thousands of them (all the audit looks up, on a large inventory, and so
            # of no use to the next one) scattered among the memory the result frees.
            forget = getattr(generation.locator, "forget", None)
            if callable(forget):
                forget()
            summary = self.store.finish_run(run_id, result, self.clock())
            return summary, Audited.of(result)

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
        after = dns_counts(resolver)
        with self._dns_lock:
            queries, failures = self._dns
            self._dns = (queries + after[0] - before[0], failures + after[1] - before[1])


@dataclass(frozen=True, slots=True)
class Audited:
    """What the `audit_finished` log line says of an audit's result, kept once the result is freed."""

    integrations: int
    hostnames: int
    findings: int
    probes_failed: int
    warnings: tuple[DataWarning, ...]

    @classmethod
    def of(cls, result: AuditResult) -> Audited:
        return cls(
            integrations=len(result.integrations),
            hostnames=result.hostnames,
            findings=len(result.findings),
            probes_failed=len(result.failed_probes),
            warnings=result.warnings,
        )


def dns_counts(resolver: DnsResolver) -> tuple[int, int]:
    stats = resolver.stats
    return stats.queries, sum(stats.statuses[status] for status in FAILURE_STATUSES)

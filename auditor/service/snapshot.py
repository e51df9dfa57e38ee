"""What the metrics endpoint shows: a frozen summary of stored results and job health."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from auditor.store import RunRecord, SnapshotCounts, StoredCoverage

K = TypeVar("K")
V = TypeVar("V")
C = TypeVar("C", bound=Collection[object])


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One scheduled job's record, as Prometheus batch-job metrics need it."""

    job_id: str
    interval_seconds: float
    runs: int = 0
    failures: int = 0
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_duration_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    """One integration's latest consent check: the counts of the last successful one (None
    before the first), when it finished, and whether a later check failed (stale)."""

    shared: int | None = None
    missing: int | None = None
    withdrawn: int | None = None
    checked_at: datetime | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything `/metrics` exposes; built from the store and the scheduler, never by auditing.

    Label sets are bounded: rules, severities, integration ids, categories, verdicts and countries
    come from the inventory and policy data, never from observed hostnames or addresses.
    """

    open_findings: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """(rule, severity, integration) -> open, unwaived findings."""
    recently_resolved: frozenset[tuple[str, str, str]] = frozenset()
    """(rule, severity, integration) whose last open finding the last audit resolved or waived.

    Exported as 0 so the series drops to zero instead of vanishing in the same scrape.
    """
    waived_findings: Mapping[tuple[str, str], int] = field(default_factory=dict)
    carried_findings: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(rule, severity) -> open, unwaived findings kept open because a probe they rest on failed."""
    waiver_expiry: Mapping[tuple[str, str], date] = field(default_factory=dict)
    """(rule, severity) -> last day of the soonest-ending active waiver of an open finding."""
    """(rule, severity) -> waived findings."""
    integrations_by_category: Mapping[str, int] = field(default_factory=dict)
    places: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(verdict, country or "") -> places with that verdict."""
    jobs: tuple[JobHealth, ...] = ()
    dns_queries: int = 0
    dns_failures: int = 0
    data_built: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    """(kind, name) -> when a GeoIP database or IP-range file was built."""
    last_audit: datetime | None = None
    last_run: RunRecord | None = None
    """The last successful audit run, as recorded (for the landing page)."""
    config_reload_ok: bool = True
    config_reload_at: datetime | None = None
    leader: bool = True
    version: str = ""
    retention_overdue: Mapping[str, int] = field(default_factory=dict)
    """Retention policy id -> records past their deadline and not on legal hold, as last counted."""
    retention_held: Mapping[str, int] = field(default_factory=dict)
    """Retention policy id -> records past their deadline kept under a legal hold."""
    retention_processed: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(policy id, action) -> records anonymised or deleted since the daemon started."""
    retention_undetermined: Mapping[str, int] = field(default_factory=dict)
    """Retention policy id -> reconciled batches whose records could not be told, since start."""
    retention_last_enforcement: Mapping[str, datetime] = field(default_factory=dict)
    """Retention policy id -> when its last enforcement run finished."""
    consent: Mapping[str, ConsentStatus] = field(default_factory=dict)
    """Integration id -> its latest consent check, as stored by the consent job."""
    report_last_written: datetime | None = None
    """When the report job last wrote the period's report files (None: not since start)."""
    discovery_vendors: Mapping[str, int] = field(default_factory=dict)
    """"declared" / "undeclared" -> catalogue vendors the last discovery run found in use
    (empty before the first successful run since start)."""
    inventory_coverage: float | None = None
    """Declared over discovered vendors in the last discovery run (None: no run since start)."""
    web_third_parties: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """(site id, consent state, verdict) -> third parties active in that state in the last web
    run (empty before the first since start)."""
    web_pages: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(site id, "observed" or "failed") -> pages of the site the last web run visited."""


def stored_snapshot(counts: SnapshotCounts, previous: Snapshot | None = None) -> Snapshot:
    """The part of the snapshot read from the store.

    With `previous`, the snapshot this one replaces, what has not changed is the previous
    snapshot's: an equal mapping is the previous mapping itself (so the metrics' rendering of
    it is reused without a comparison), and the open findings' label tuples both hold are the
    previous ones. A daemon re-reads some 200,000 of them after every audit on a large
    inventory; copies kept each time would be scattered among the audit's freed memory and
    keep the allocator from handing it back.
    """
    last = counts.last_run
    before = previous or Snapshot()
    return Snapshot(
        open_findings=_kept(counts.open_findings, before.open_findings),
        recently_resolved=_same(counts.recently_resolved, before.recently_resolved),
        waived_findings=_same(counts.waived_findings, before.waived_findings),
        carried_findings=_same(counts.carried_findings, before.carried_findings),
        waiver_expiry=_same(counts.waiver_expiry, before.waiver_expiry),
        integrations_by_category=_same(
            counts.integrations_by_category, before.integrations_by_category
        ),
        places=_same(counts.places, before.places),
        data_built=_same(counts.data_built, before.data_built),
        last_audit=last.finished_at if last is not None else None,
        last_run=last,
    )


def _same(fresh: C, previous: C) -> C:
    return previous if fresh == previous else fresh


def _kept(fresh: Mapping[K, V], previous: Mapping[K, V]) -> Mapping[K, V]:
    """`fresh`, or `previous` when equal; otherwise with the key objects both hold taken from
    `previous`."""
    if fresh == previous:
        return previous
    keys = dict(zip(previous, previous, strict=True))  # an equal key -> the previous one
    return {keys.get(key, key): value for key, value in fresh.items()}


def consent_statuses(stored: Mapping[str, StoredCoverage]) -> dict[str, ConsentStatus]:
    """The consent coverage the store keeps, as the metrics show it."""
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

"""The daemon's discovery job: scan, raise `inventory-undeclared` findings, keep the counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import structlog

from auditor.core.errors import AuditUnavailableError
from auditor.core.jobs import JobContext, JobInputs
from auditor.discovery.catalogue import load_catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.dns_signals import dnspython_lookup
from auditor.discovery.results import discover, undeclared_findings
from auditor.store.repository import StateStore

log = structlog.get_logger("auditor.discovery.job")


def discovery_needed(settings: DiscoverySettings) -> bool:
    """Whether the `discovery:` section gives discovery anything to look at (domains or pages)."""
    return bool(settings.domains or settings.pages)


class DnsConfig(Protocol):
    """What the job reads of the `dns:` section."""

    @property
    def nameservers(self) -> Sequence[str]: ...

    @property
    def timeout(self) -> float: ...


class DiscoveryConfig(Protocol):
    """What the job reads of the configuration (which the daemon composes)."""

    @property
    def discovery(self) -> DiscoverySettings: ...

    @property
    def dns(self) -> DnsConfig: ...


WHOLE_RUN = "discovery"
"""The probe scope of a whole discovery run: what findings recorded before each named the
domains and pages that showed it rest on (schema version 3 gave them this one)."""


class DiscoveryJob:
    """Scans the configured domains and pages and records `inventory-undeclared` findings.

    A run where some lookup or page failed records what it saw, carries the open findings that
    rest on a failed domain or page (a vendor hidden by a timeout must not look like a vendor no
    longer in use) and then fails, so that the job's failure counter shows it; the inventory
    coverage is then unknown.
    """

    def __init__(
        self,
        sources: Callable[[], JobInputs[DiscoveryConfig]],
        store: StateStore,
        clock: Callable[[], datetime],
    ) -> None:
        self._sources = sources
        self._store = store
        self._clock = clock
        self.declared: int | None = None  # for the metrics snapshot; None before the first run
        self.undeclared: int | None = None
        self.coverage: float | None = None

    def work(self, context: JobContext) -> None:
        """One discovery run.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; nothing is recorded.
            AuditUnavailableError: some lookups or pages failed; what was seen is recorded, the
                findings resting on what failed are carried.
            InvalidInputError: the local vendor file is invalid.
            StoreError: the findings cannot be recorded.
        """
        sources = self._sources()
        settings = sources.config.discovery
        catalogue = load_catalogue(settings.vendors)
        lookup = dnspython_lookup(sources.config.dns.nameservers, sources.config.dns.timeout)
        context.check()
        result = discover(settings, catalogue, sources.integrations, lookup)
        context.check()
        found = undeclared_findings(result, sources.policies)
        failed = dict(result.failed)
        if not result.complete:
            failed[WHOLE_RUN] = f"{result.failures} lookups or pages failed"
        changes = self._store.record_job_findings("discovery", found, self._clock(), failed)
        self.coverage = result.coverage  # None (unknown) when the run is incomplete
        if not result.complete:
            log.warning("discovery_incomplete", problems=list(result.problems),
                        new=changes.new, resolved=changes.resolved,
                        carried=changes.carried)  # fmt: skip
            raise AuditUnavailableError(
                f"discovery incomplete ({result.failures} lookups or pages failed; "
                f"{changes.carried} findings carried): " + "; ".join(result.problems[:3])
            )
        self.declared, self.undeclared = len(result.declared), len(result.undeclared)
        log.info("discovery_recorded", vendors=len(result.vendors), undeclared=self.undeclared,
                 new=changes.new, resolved=changes.resolved)  # fmt: skip

    def snapshot_fields(self) -> dict[str, Any]:
        """The Snapshot fields this job sets."""
        vendors = {} if self.declared is None else {
            "declared": self.declared, "undeclared": self.undeclared or 0,
        }  # fmt: skip
        return {"discovery_vendors": vendors, "inventory_coverage": self.coverage}

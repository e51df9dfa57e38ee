"""The daemon's discovery job: scan, raise `inventory-undeclared` findings, keep the counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from auditor.config import Config
from auditor.discovery.catalogue import load_catalogue, load_discovery_settings
from auditor.discovery.dns_signals import dnspython_lookup
from auditor.discovery.results import discover, undeclared_findings
from auditor.errors import AuditUnavailableError, InvalidInputError
from auditor.inputs import Inputs
from auditor.jobs import JobContext
from auditor.store.repository import StateStore

log = structlog.get_logger("auditor.discovery.job")


def discovery_needed(config: Config) -> bool:
    """Whether the configuration gives discovery anything to look at (domains or pages)."""
    try:
        settings = load_discovery_settings(config.path)
    except InvalidInputError:  # an invalid section: schedule it, so the job fails and says why
        return True
    return bool(settings.domains or settings.pages)


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
        sources: Callable[[], Inputs],
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
            InvalidInputError: the discovery section or the local vendor file is invalid.
            StoreError: the findings cannot be recorded.
        """
        sources = self._sources()
        settings = load_discovery_settings(sources.config.path)
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

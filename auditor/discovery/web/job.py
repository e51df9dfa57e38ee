"""The daemon's web job (and the `web` command's run): audit the sites in a browser, record the
findings with the run's evidence record, prune old evidence files, keep the counts for metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from auditor.core.durations import parse_duration
from auditor.core.errors import AuditUnavailableError
from auditor.core.jobs import JobContext, JobInputs, KeepSettings
from auditor.core.model import Integration
from auditor.core.policies import PolicyData
from auditor.core.ports import GeoLocator, Resolver
from auditor.discovery.catalogue import load_catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.web.audit import WebAudit, judge_websites, visit_websites
from auditor.discovery.web.config import WebsiteSettings
from auditor.discovery.web.files import prune_runs
from auditor.discovery.web.parties import Attribution
from auditor.probes.browser import Chromium
from auditor.store import StateStore, prune_cutoff

log = structlog.get_logger("auditor.discovery.web")

KEEP_FILES = parse_duration("P30D")
"""How long evidence files are kept when the configuration names no database (and no period)."""
RUN_RECORD = "web-run"
"""The evidence kind of a web run's record (the hashes of its files)."""


class WebConfig(Protocol):
    """What the web audit reads of the configuration (which the daemon composes)."""

    @property
    def websites(self) -> WebsiteSettings: ...

    @property
    def discovery(self) -> DiscoverySettings: ...

    @property
    def database(self) -> KeepSettings | None: ...


class WebInputs(JobInputs[WebConfig], Protocol):
    """One loaded, valid set of inputs, with the resolver and geolocator built from it."""

    @property
    def resolver(self) -> Resolver: ...

    @property
    def locator(self) -> GeoLocator: ...


def web_needed(settings: WebsiteSettings) -> bool:
    """Whether the `websites:` section names any site."""
    return bool(settings.sites)


def audit_websites(
    config: WebConfig,
    policies: PolicyData,
    integrations: Sequence[Integration],
    resolver: Resolver,
    locator: GeoLocator,
    *,
    root: Path,
    as_of: date,
    clock: Callable[[], datetime],
    check: Callable[[], None] = lambda: None,
) -> WebAudit:
    """One web audit of the configured sites in a browser started for it; its files go to a new
    run directory under `root`, and runs older than the kept period are pruned.

    Raises:
        BrowserUnavailableError: Playwright or Chromium is missing, or the browser does not start.
        InvalidInputError: the local vendor file is invalid.
        JobCancelled: `check` asked to stop.
    """
    attribution = Attribution(load_catalogue(config.discovery.vendors), integrations)
    with Chromium(config.websites.browser, clock) as browser:
        visited = visit_websites(
            config.websites, attribution, browser=browser, root=root, clock=clock, check=check
        )
    check()
    audit = judge_websites(
        visited, attribution, policies=policies, resolver=resolver, locator=locator,
        as_of=as_of, clock=clock, root=root,
    )  # fmt: skip
    keep = config.database.keep_observations if config.database is not None else KEEP_FILES
    prune_runs(root, prune_cutoff(keep, audit.started_at), keep=root / audit.directory)
    return audit


def record_web_audit(store: StateStore, audit: WebAudit, at: datetime) -> tuple[int, int, int]:
    """Record the audit's findings and its evidence record; (new, resolved, carried).

    Raises:
        StoreError: the state database cannot be written.
    """
    changes = store.record_job_findings(
        "web", audit.findings, at, audit.failed_probes, records=[(RUN_RECORD, audit.chain_record())]
    )
    return changes.new, changes.resolved, changes.carried


class WebJob:
    """Audits the configured sites and records the web findings.

    A run where some page or host lookup failed records what it saw, carries the open findings
    resting on what failed (a tracker hidden by a page that did not load must not look gone) and
    then fails, so that the job's failure counter shows it.
    """

    def __init__(
        self,
        sources: Callable[[], WebInputs],
        store: StateStore,
        clock: Callable[[], datetime],
        root: Callable[[], Path],
        recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self._sources = sources
        self._store = store
        self._clock = clock
        self._root = root  # the evidence files' directory, under the state directory
        self._recorded = recorded  # after the findings are recorded: refresh the metrics
        self.third_parties: dict[tuple[str, str, str], int] | None = None  # None: no run yet
        self.pages: dict[tuple[str, str], int] | None = None

    def work(self, context: JobContext) -> None:
        """One web run.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; nothing is recorded.
            AuditUnavailableError: the browser cannot run, or some pages or lookups failed (what
                was seen is recorded, the findings resting on what failed are carried).
            InvalidInputError: the local vendor file is invalid.
            StoreError: the findings cannot be recorded.
        """
        sources = self._sources()
        audit = audit_websites(
            sources.config, sources.policies, sources.integrations, sources.resolver,
            sources.locator, root=self._root(), as_of=self._clock().date(), clock=self._clock,
            check=context.check,
        )  # fmt: skip
        context.check()
        new, resolved, carried = record_web_audit(self._store, audit, self._clock())
        self.third_parties, self.pages = audit.third_parties(), audit.pages()
        self._recorded()
        if not audit.complete:
            log.warning("web_incomplete", problems=audit.problems[:10], new=new,
                        resolved=resolved, carried=carried)  # fmt: skip
            raise AuditUnavailableError(
                f"web audit incomplete ({len(audit.failed_probes)} probes failed; {carried} "
                "findings carried): " + "; ".join(audit.problems[:3])
            )
        log.info("web_recorded", directory=audit.directory, new=new, resolved=resolved)

    def snapshot_fields(self) -> dict[str, Any]:
        """The Snapshot fields this job sets."""
        return {"web_third_parties": self.third_parties or {}, "web_pages": self.pages or {}}

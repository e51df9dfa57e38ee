"""One web audit: visit the sites in a browser, then attribute, locate and judge the third
parties. The browser, resolver, geolocator and clock are passed in; the evidence files go to a
new run directory under the evidence root."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from auditor.core.model import Finding, Observation, ProbeOutcome, Verdict
from auditor.core.policies import PolicyData
from auditor.core.ports import Clock, GeoLocator, Resolver
from auditor.core.results import finding_order, probe_failure
from auditor.discovery.web.config import WebsiteSettings
from auditor.discovery.web.crawl import Browser, SiteVisit, visit_sites
from auditor.discovery.web.files import run_directory
from auditor.discovery.web.parties import Attribution, Sighting, sightings
from auditor.discovery.web.places import locate_hosts, party_places, party_verdict
from auditor.discovery.web.records import page_record, run_record
from auditor.discovery.web.rules import (
    JudgedParty,
    host_probe,
    page_probe,
    site_probe,
    web_findings,
)


@dataclass(frozen=True, slots=True)
class WebAudit:
    """Everything one web audit saw and concluded."""

    as_of: date
    started_at: datetime
    finished_at: datetime
    visits: tuple[SiteVisit, ...]
    parties: tuple[JudgedParty, ...]
    observed: Mapping[str, Observation]
    findings: tuple[Finding, ...]
    probes: tuple[ProbeOutcome, ...]
    directory: str  # the run's directory, relative to the evidence root

    @property
    def failed_probes(self) -> dict[str, str]:
        """Probe scope -> why it observed nothing certain (pages, sites, host lookups)."""
        return {p.scope: p.failure for p in self.probes if p.failure is not None}

    @property
    def problems(self) -> list[str]:
        """What could not be observed, for people: sites first, then pages and hosts."""
        return [f"{scope}: {why}" for scope, why in self.failed_probes.items()]

    @property
    def complete(self) -> bool:
        """Whether every page of every site, and every third-party host, was observed."""
        return not self.failed_probes

    @property
    def nothing_observed(self) -> bool:
        """Whether no page loaded at all in any state: the run saw nothing of any site."""
        captures = [s.capture for v in self.visits for p in v.pages for s in p.states]
        return not any(capture.ok for capture in captures)

    def third_parties(self) -> dict[tuple[str, str, str], int]:
        """(site id, consent state, verdict) -> third parties active in that state."""
        counts: dict[tuple[str, str, str], int] = {}
        for judged in self.parties:
            for sighting in judged.sightings:
                for state in sighting.states:
                    key = (sighting.site, state, judged.verdict.value)
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def pages(self) -> dict[tuple[str, str], int]:
        """(site id, "observed" or "failed") -> pages visited."""
        counts: dict[tuple[str, str], int] = {}
        for visit in self.visits:
            for page in visit.pages:
                key = (visit.site.id, "failed" if page.failure else "observed")
                counts[key] = counts.get(key, 0) + 1
        return counts

    def chain_record(self) -> dict[str, Any]:
        """The evidence chain's record of the run (kind `web-run`): pages, states and the hashes
        of their files, the third parties and their verdicts."""
        return run_record(self)


@dataclass(frozen=True, slots=True)
class Visited:
    """What the browser saw of every site, and where its files are."""

    started_at: datetime
    directory: Path
    visits: tuple[SiteVisit, ...]


def visit_websites(
    settings: WebsiteSettings,
    attribution: Attribution,
    *,
    browser: Browser,
    root: Path,
    clock: Clock,
    check: Callable[[], None] = lambda: None,
) -> Visited:
    """Visit every site in the browser; the files go to a new run directory under `root`."""
    started = clock()
    directory = run_directory(root, started)
    record = partial(page_record, attribution=attribution)
    visits = visit_sites(settings, browser, directory, root, record, check)
    return Visited(started, directory, tuple(visits))


def judge_websites(
    visited: Visited,
    attribution: Attribution,
    *,
    policies: PolicyData,
    resolver: Resolver,
    locator: GeoLocator,
    as_of: date,
    clock: Clock,
    root: Path,
) -> WebAudit:
    """Attribute, locate and judge what was seen (after the browser is closed: the resolver
    runs an event loop of its own). Compliance problems are findings; pages that could not be
    observed are failed probes, so their findings are carried, never resolved."""
    by_party: dict[str, list[Sighting]] = {}
    for visit in visited.visits:
        for key, sighting in sightings(visit, attribution).items():
            by_party.setdefault(key, []).append(sighting)
    hosts = sorted({host for seen in by_party.values() for s in seen for host in s.hosts})
    observed = locate_hosts(hosts, resolver, locator, policies)
    judged = []
    for seen in by_party.values():
        party = seen[0].party
        party_hosts = sorted({host for s in seen for host in s.hosts})
        places = party_places(party, party_hosts, observed, policies, as_of)
        verdict = party_verdict(places, party_hosts, observed)
        judged.append(JudgedParty(party, tuple(seen), tuple(places), verdict))
    judged.sort(key=lambda j: j.party.key)
    findings = sorted(web_findings(judged, observed, policies, as_of), key=finding_order)
    return WebAudit(
        as_of=as_of,
        started_at=visited.started_at,
        finished_at=clock(),
        visits=visited.visits,
        parties=tuple(judged),
        observed=observed,
        findings=tuple(findings),
        probes=tuple(_outcomes(visited.visits, observed)),
        directory=visited.directory.relative_to(root).as_posix(),
    )


def _outcomes(
    visits: Sequence[SiteVisit], observed: Mapping[str, Observation]
) -> list[ProbeOutcome]:
    outcomes = []
    for visit in visits:
        failure = visit.failure
        if not visit.pages and failure is None:
            failure = "no page was visited"
        outcomes.append(ProbeOutcome(site_probe(visit.site.id), failure))
        outcomes += [ProbeOutcome(page_probe(visit.site.id, p.url), p.failure) for p in visit.pages]
    outcomes += [ProbeOutcome(host_probe(h), probe_failure(o)) for h, o in sorted(observed.items())]
    return outcomes


VERDICTS = tuple(verdict.value for verdict in Verdict)

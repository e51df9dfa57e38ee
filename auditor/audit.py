"""One audit: plan -> probe -> locate -> evaluate, against the resolver and geolocator interfaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from auditor.model import (
    Finding,
    Integration,
    Location,
    Observation,
    PlaceCheck,
    ProbeOutcome,
    Resolution,
    endpoint_probe,
)
from auditor.policies import PolicyData
from auditor.ports import Clock, DataSet, GeoLocator, Resolver
from auditor.rules import AuditContext, evaluate
from auditor.rules.transfer import place_checks
from auditor.staleness import DEFAULT_MAX_AGE_DAYS, DataWarning, data_warnings

Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total) during long work."""


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Everything one audit found, in a stable order."""

    as_of: date
    started_at: datetime
    finished_at: datetime
    integrations: tuple[Integration, ...]
    observations: tuple[Observation, ...]
    places: tuple[PlaceCheck, ...]
    findings: tuple[Finding, ...]
    policy_digest: str
    datasets: tuple[DataSet, ...] = field(default=())
    # Data too old to trust, measured against the day the audit ran; never findings.
    warnings: tuple[DataWarning, ...] = field(default=())
    probes: tuple[ProbeOutcome, ...] = field(default=())
    """Every probe the audit made, with whether it observed what it looks at."""

    @property
    def failed_probes(self) -> dict[str, str]:
        """Probe scope -> why it observed nothing, for the probes that failed."""
        return {p.scope: p.failure for p in self.probes if p.failure is not None}

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def hostnames(self) -> int:
        return len({observation.hostname for observation in self.observations})


def edge_reason(
    resolution: Resolution, locations: Sequence[Location], policies: PolicyData
) -> str | None:
    """Say why an endpoint is a CDN/anycast edge (by CNAME, range or ASN), or return None."""
    for name in (resolution.hostname, *resolution.cname_chain):
        for suffix, provider in policies.edges.cname_suffixes.items():
            if name == suffix or name.endswith("." + suffix):
                return f"CNAME {name} is a {provider} edge"
    if locations and all(location.edge for location in locations):
        first = locations[0]
        if first.provider is not None:
            return f"address in {first.provider} edge ranges"
        return f"address in an edge network (AS{first.asn} {first.asn_org or ''})".rstrip()
    return None


def probe_failure(observation: Observation) -> str | None:
    """Why resolving and locating an endpoint showed nothing certain, or None when it did.

    NXDOMAIN and an empty answer are observations (the name has no addresses); a timeout, a
    SERVFAIL, a failed lookup of one address family or an address no data set locates are not:
    whatever was observed there before may still be so.
    """
    resolution = observation.resolution
    if resolution.status in ("nxdomain", "no-answer"):
        return None
    if not resolution.ok:
        return f"{resolution.status}: {resolution.reason or 'no reason given'}"
    if resolution.reason is not None:
        return f"partial: {resolution.reason}"
    if observation.edge:
        return None
    unlocated = [location.address for location in observation.locations if location.country is None]
    if unlocated:
        return f"not located: {', '.join(unlocated)}"
    return None


def finding_order(finding: Finding) -> tuple[int, str, str, str, str]:
    """Worst first, then by integration, rule, facet and place."""
    return (
        -finding.severity.rank,
        finding.integration,
        finding.rule,
        finding.facet or "",
        finding.place or "",
    )


def run_audit(
    integrations: Sequence[Integration],
    policies: PolicyData,
    resolver: Resolver,
    locator: GeoLocator,
    as_of: date,
    clock: Clock,
    progress: Progress | None = None,
    max_data_age_days: int = DEFAULT_MAX_AGE_DAYS,
) -> AuditResult:
    """Resolve and locate every endpoint, then run every rule; compliance problems are findings.

    Data sets older than `max_data_age_days` on the clock's day (not `as_of`) are warnings.
    """
    started = clock()
    hostnames = list(dict.fromkeys(h for i in integrations for h in i.endpoints))
    resolutions = resolver.resolve_many(
        hostnames,
        progress=(lambda done, total: progress("resolve", done, total)) if progress else None,
    )
    located: dict[str, Observation] = {}
    for hostname in hostnames:
        resolution = resolutions[hostname]
        locations = tuple(locator.locate(address) for address in resolution.addresses)
        reason = edge_reason(resolution, locations, policies) if resolution.ok else None
        located[hostname] = Observation("", hostname, resolution, locations, reason)
    observations: dict[str, tuple[Observation, ...]] = {}
    flat: list[Observation] = []
    for integration in integrations:
        mine = tuple(
            Observation(
                integration.id,
                h,
                located[h].resolution,
                located[h].locations,
                located[h].edge_reason,
            )
            for h in integration.endpoints
        )
        observations[integration.id] = mine
        flat.extend(mine)
    context = AuditContext(
        integrations={integration.id: integration for integration in integrations},
        observations=observations,
        policies=policies,
        as_of=as_of,
    )
    findings = sorted(evaluate(context), key=finding_order)
    datasets = tuple(locator.datasets())
    return AuditResult(
        as_of=as_of,
        started_at=started,
        finished_at=clock(),
        integrations=tuple(integrations),
        observations=tuple(flat),
        places=place_checks(context),
        findings=tuple(findings),
        policy_digest=policies.digest,
        datasets=datasets,
        warnings=tuple(data_warnings(datasets, policies, started.date(), max_data_age_days)),
        probes=tuple(ProbeOutcome(endpoint_probe(h), probe_failure(located[h])) for h in hostnames),
    )

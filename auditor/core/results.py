"""What an audit found, and the pure checks every capability that looks at a place shares:
whether an endpoint is a CDN/anycast edge, and whether probing it observed anything certain."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from auditor.core.model import (
    Finding,
    Integration,
    Location,
    Observation,
    PlaceCheck,
    Resolution,
)
from auditor.core.policies import PolicyData
from auditor.core.ports import DataSet, GeoLocator, Resolver
from auditor.core.staleness import DataWarning
from auditor.core.wording import with_article


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Everything one audit found, in a stable order."""

    as_of: date
    started_at: datetime
    finished_at: datetime
    integrations: tuple[Integration, ...]
    observations: Collection[Observation]
    """Every integration's endpoints, resolved and located, in inventory order (on a large
    audit, a `Spool`: read in order, a part at a time)."""
    places: Collection[PlaceCheck]
    """Every place with its verdict, in inventory order (a `Spool` too, on a large audit)."""
    findings: tuple[Finding, ...]
    policy_digest: str
    datasets: tuple[DataSet, ...] = field(default=())
    # Data too old to trust, measured against the day the audit ran; never findings.
    warnings: tuple[DataWarning, ...] = field(default=())
    failed_probes: Mapping[str, str] = field(default_factory=dict)
    """Probe scope -> why it observed nothing, for the probes of the audit that failed (every
    other endpoint probe observed what it looks at)."""
    hostnames: int = field(default=-1)
    """Distinct endpoint hostnames audited; counted from the observations when not given."""

    def __post_init__(self) -> None:
        if self.hostnames < 0:
            counted = len({observation.hostname for observation in self.observations})
            object.__setattr__(self, "hostnames", counted)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def edge_reason(
    resolution: Resolution, locations: Sequence[Location], policies: PolicyData
) -> str | None:
    """Say why an endpoint is a CDN/anycast edge (by CNAME, range or ASN), or return None."""
    suffixes = _suffix_order(policies.edges.cname_suffixes)
    for name in (resolution.hostname, *resolution.cname_chain):
        # The name and each of its parent domains, looked up, rather than every edge suffix
        # tried on every name; the first suffix in the policy data's order wins, as listed.
        parts = name.split(".")
        found = [
            suffixes[tail] for i in range(len(parts)) if (tail := ".".join(parts[i:])) in suffixes
        ]
        if found:
            _, provider = min(found)
            return f"CNAME {name} is {with_article(provider)} edge"
    if locations and all(location.edge for location in locations):
        first = locations[0]
        if first.provider is not None:
            return f"address in {first.provider} edge ranges"
        return f"address in an edge network (AS{first.asn} {first.asn_org or ''})".rstrip()
    return None


Probed = tuple[Resolution, tuple[Location, ...]]
"""One hostname resolved, and each of its addresses located (in the resolution's order)."""

ProbeProgress = Callable[[int, int], None]
"""Called back with (done, total) as hostnames are probed."""

HostnameProbe = Callable[[Sequence[str], ProbeProgress | None], Mapping[str, Probed]]
"""Resolves and locates distinct hostnames, all at once (`probe_endpoints`)."""

EndpointProbe = Callable[
    [Sequence[Sequence[str]], ProbeProgress | None], Iterator[Mapping[str, Probed]]
]
"""Resolves and locates parts of a list of distinct hostnames, yielding each part's results in
the order of the parts, as soon as the part is done, with (done, total) over all the parts: in
this process (`probe_in_parts`), or spread over processes by a caller that may fork. An audit
evaluates each part while the next one is probed and lets go of it before the next arrives."""


def probe_endpoints(resolver: Resolver, locator: GeoLocator) -> HostnameProbe:
    """The hostname probe of this process: the resolver, then the locator for each address."""

    def probe(names: Sequence[str], progress: ProbeProgress | None) -> dict[str, Probed]:
        resolutions = resolver.resolve_many(names, progress=progress)
        locate = locator.locate
        probed: dict[str, Probed] = {}
        for name in names:
            resolution = resolutions[name]
            probed[name] = (resolution, tuple(map(locate, resolution.addresses)))
        return probed

    return probe


def probe_in_parts(probe: HostnameProbe) -> EndpointProbe:
    """`probe` called on each part in turn, its progress counted over all the parts."""

    def probe_parts(
        parts: Sequence[Sequence[str]], progress: ProbeProgress | None
    ) -> Iterator[Mapping[str, Probed]]:
        total = sum(map(len, parts))
        done = 0
        for part in parts:
            yield probe(part, None if progress is None else after(progress, done, total))
            done += len(part)

    return probe_parts


def after(progress: ProbeProgress, before: int, total: int) -> ProbeProgress:
    """`progress` of work that comes after `before` of `total` hostnames done already."""
    return lambda done, _: progress(before + done, total)


def observe(
    names: Sequence[str], probed: Mapping[str, Probed], policies: PolicyData
) -> dict[str, Observation]:
    """Name -> its observation (of no integration yet), with the reason it is an edge when it
    resolved."""
    located: dict[str, Observation] = {}
    for name in names:
        resolution, locations = probed[name]
        reason = edge_reason(resolution, locations, policies) if resolution.ok else None
        located[name] = Observation("", name, resolution, locations, reason)
    return located


_SUFFIX_ORDERS: dict[int, tuple[Mapping[str, str], dict[str, tuple[int, str]]]] = {}


def _suffix_order(cname_suffixes: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """Edge suffix -> (its position in the policy data, its provider), per mapping."""
    known = _SUFFIX_ORDERS.get(id(cname_suffixes))
    if known is None or known[0] is not cname_suffixes:
        order = {
            suffix: (index, provider)
            for index, (suffix, provider) in enumerate(cname_suffixes.items())
        }
        known = _SUFFIX_ORDERS[id(cname_suffixes)] = (cname_suffixes, order)
    return known[1]


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

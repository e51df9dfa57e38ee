"""One audit: plan -> probe -> locate -> evaluate, against the resolver and geolocator interfaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import chain

from auditor.core.model import (
    Finding,
    Integration,
    Location,
    Observation,
    PlaceCheck,
    Resolution,
    endpoint_probe,
)
from auditor.core.policies import PolicyData
from auditor.core.ports import Clock, GeoLocator, Resolver
from auditor.core.results import (
    AuditResult,
    EndpointProbe,
    finding_order,
    observe,
    probe_endpoints,
    probe_failure,
    probe_in_parts,
)
from auditor.core.spool import Spool
from auditor.core.staleness import DEFAULT_MAX_AGE_DAYS, data_warnings
from auditor.transfers.config import BackupChecks
from auditor.transfers.rules import AuditContext, evaluate
from auditor.transfers.rules.transfer import place_checks

Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total) during long work."""

PART_SIZE = 12_288
"""A part of a large audit: integrations and the hostnames first probed in it, counted
together, up to this many. Each part is probed, evaluated and written out in turn; memory holds
one part's observations and places (and every finding), not the whole inventory's."""


@dataclass(frozen=True, slots=True)
class _Part:
    integrations: tuple[Integration, ...]
    hostnames: tuple[str, ...]
    """The part's endpoint hostnames that no earlier part probed."""


def run_audit(
    integrations: Sequence[Integration],
    policies: PolicyData,
    resolver: Resolver,
    locator: GeoLocator,
    as_of: date,
    clock: Clock,
    progress: Progress | None = None,
    max_data_age_days: int = DEFAULT_MAX_AGE_DAYS,
    backup_checks: BackupChecks | None = None,
    probe: EndpointProbe | None = None,
    part_size: int = PART_SIZE,
) -> AuditResult:
    """Resolve and locate every endpoint, then run every rule; compliance problems are findings.

    Data sets older than `max_data_age_days` on the clock's day (not `as_of`) are warnings;
    `backup_checks` are the configured restore-test and documentation-review periods; `probe`
    resolves and locates the endpoints (by default `probe_endpoints` of `resolver` and `locator`).
    A large inventory is audited `part_size` at a time (integrations and hostnames), each part's
    observations and places spooled before the next; the result is the same at any part size.

    It stays one function of about 60 lines: plan, probe and evaluate, in order, in one place.
    """
    started = clock()
    parts, reused = _plan(integrations, part_size)
    probed = (probe or probe_in_parts(probe_endpoints(resolver, locator)))(
        [part.hostnames for part in parts],
        (lambda done, total: progress("resolve", done, total)) if progress else None,
    )
    inventory = {integration.id: integration for integration in integrations}
    observations: Spool[Observation] = Spool((Observation, Resolution, Location))
    places: Spool[PlaceCheck] = Spool((PlaceCheck,))
    findings: list[Finding] = []
    failed: dict[str, str] = {}
    carried: dict[str, Observation] = {}  # probed in an earlier part, needed in a later one
    for index, (part, found) in enumerate(zip(parts, probed, strict=True)):
        located = observe(part.hostnames, found, policies)
        del found  # each step lets go of what the next holds in another form: a peak held once
        failed.update(
            (endpoint_probe(hostname), failure)
            for hostname, observed in located.items()
            if (failure := probe_failure(observed)) is not None
        )
        located.update(carried)
        carried = {h: located[h] for h, last in reused.items() if last > index and h in located}
        context = AuditContext(
            integrations={integration.id: integration for integration in part.integrations},
            observations=_observations(part.integrations, located),
            policies=policies,
            as_of=as_of,
            backup_checks=backup_checks or BackupChecks(),
            whole=inventory,
        )
        del located
        findings.extend(evaluate(context))
        places.extend(place_checks(context))
        observations.extend(chain.from_iterable(context.observations.values()))
        del context
    findings.sort(key=finding_order)
    datasets = tuple(locator.datasets())
    return AuditResult(
        as_of=as_of,
        started_at=started,
        finished_at=clock(),
        integrations=tuple(integrations),
        observations=observations,
        places=places,
        findings=tuple(findings),
        policy_digest=policies.digest,
        datasets=datasets,
        warnings=tuple(data_warnings(datasets, policies, started.date(), max_data_age_days)),
        failed_probes=failed,
        hostnames=sum(len(part.hostnames) for part in parts),
    )


def _observations(
    integrations: Sequence[Integration], located: dict[str, Observation]
) -> dict[str, tuple[Observation, ...]]:
    """Each integration's endpoints as its own observations, of the probed ones."""
    return {
        integration.id: tuple(
            Observation(
                integration.id,
                h,
                located[h].resolution,
                located[h].locations,
                located[h].edge_reason,
            )
            for h in integration.endpoints
        )
        for integration in integrations
    }


def _plan(integrations: Sequence[Integration], size: int) -> tuple[list[_Part], dict[str, int]]:
    """The audit's parts in inventory order, each up to `size` integrations and new hostnames
    (one integration with more is a part alone), and hostname -> the last part that needs it,
    for the hostnames a later part than the first to probe them needs again."""
    if size < 1:
        raise ValueError("an audit part holds at least one integration")
    parts: list[_Part] = []
    first: dict[str, int] = {}  # hostname -> the part that probes it
    reused: dict[str, int] = {}
    members: list[Integration] = []
    names: list[str] = []
    for integration in integrations:
        new = [h for h in dict.fromkeys(integration.endpoints) if h not in first]
        if members and len(members) + len(names) + 1 + len(new) > size:
            parts.append(_Part(tuple(members), tuple(names)))
            members, names = [], []
        index = len(parts)
        for hostname in integration.endpoints:
            if first.setdefault(hostname, index) != index:
                reused[hostname] = index
        members.append(integration)
        names.extend(new)
    if members:
        parts.append(_Part(tuple(members), tuple(names)))
    return parts, reused

"""One audit: plan -> probe -> locate -> evaluate, against the resolver and geolocator interfaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from auditor.core.model import Integration, Observation, endpoint_probe
from auditor.core.policies import PolicyData
from auditor.core.ports import Clock, GeoLocator, Resolver
from auditor.core.results import (
    AuditResult,
    EndpointProbe,
    finding_order,
    observe,
    probe_endpoints,
    probe_failure,
)
from auditor.core.staleness import DEFAULT_MAX_AGE_DAYS, data_warnings
from auditor.transfers.config import BackupChecks
from auditor.transfers.rules import AuditContext, evaluate
from auditor.transfers.rules.transfer import place_checks

Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total) during long work."""


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
) -> AuditResult:
    """Resolve and locate every endpoint, then run every rule; compliance problems are findings.

    Data sets older than `max_data_age_days` on the clock's day (not `as_of`) are warnings;
    `backup_checks` are the configured restore-test and documentation-review periods; `probe`
    resolves and locates the endpoints (by default `probe_endpoints` of `resolver` and `locator`).

    It stays one function of about 60 lines: plan, probe and evaluate, in order, in one place.
    """
    started = clock()
    hostnames = list(dict.fromkeys(h for i in integrations for h in i.endpoints))
    probed = (probe or probe_endpoints(resolver, locator))(
        hostnames,
        (lambda done, total: progress("resolve", done, total)) if progress else None,
    )
    located = observe(hostnames, probed, policies)
    del probed  # each step lets go of what the next holds in another form: a peak held once
    failed = {
        endpoint_probe(h): failure
        for h in hostnames
        if (failure := probe_failure(located[h])) is not None
    }
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
    del located
    context = AuditContext(
        integrations={integration.id: integration for integration in integrations},
        observations=observations,
        policies=policies,
        as_of=as_of,
        backup_checks=backup_checks or BackupChecks(),
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
        failed_probes=failed,
    )

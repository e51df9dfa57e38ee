"""The consent check of every consent mapping (GDPR Art. 49(1)(a)): coverage on whichever path
fits, `transfer-consent-missing` findings, and the daemon's consent job that records them.

One mapping failing (its database down, its table renamed) does not stop the others: the job
checks them all, records the fresh counts and the failures (whose last counts are kept and
marked stale, and whose open finding stays open), then raises ConsentCheckError so that the run
counts as failed. Subject keys never reach a log line, a metric or the evidence: only counts do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import structlog

from auditor.consent.config import ConsentMapping, ConsentSettings, check_against_inventory
from auditor.consent.coverage import bind_consent, check_consent, coverage
from auditor.consent.imported import (
    BoundImported,
    ImportedConsentLookup,
    bind_imported,
    imported_coverage,
)
from auditor.consent.imports import SubjectHasher, subject_key
from auditor.consent.statements import BoundConsent
from auditor.core.consents import ConsentCoverage
from auditor.core.errors import AuditorError, InvalidInputError, Issue
from auditor.core.model import Finding, Integration
from auditor.core.policies import PolicyData
from auditor.core.ports import Clock
from auditor.sources.datasources import DataSourceError, DataSources
from auditor.store import FindingChanges, StateStore

log = structlog.get_logger("auditor.consent")

RULE = "transfer-consent-missing"

Bound = BoundConsent | BoundImported


class ConsentCheckError(AuditorError):
    """Some consent mappings could not be checked; `failures` maps their integrations to why."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        listed = "; ".join(f"{ident}: {reason}" for ident, reason in sorted(failures.items()))
        count = len(failures)
        super().__init__(
            f"the consent check failed for {count} integration{'s' if count != 1 else ''}: {listed}"
        )


def uses_imported(settings: ConsentSettings) -> bool:
    """Whether a mapping matches imported consents (which need GDPR_AUDITOR_SUBJECT_KEY)."""
    return any(mapping.imported for mapping in settings.consent.values())


def bind(mapping: ConsentMapping, sources: DataSources) -> Bound:
    """Bind a mapping to its reflected tables, whichever kind its consents are.

    Raises:
        InvalidInputError: a table, column or filter value does not fit.
        DataSourceError: a data source cannot be opened or read.
    """
    return bind_imported(mapping, sources) if mapping.imported else bind_consent(mapping, sources)


def bind_all(mappings: Mapping[str, ConsentMapping], sources: DataSources) -> dict[str, Bound]:
    """Bind every mapping, collecting every mapping's schema problems into one error.

    Raises:
        InvalidInputError: the problems of every mapping that does not fit its schema.
        DataSourceError: a data source cannot be opened or read.
    """
    bound: dict[str, Bound] = {}
    issues: list[Issue] = []
    for ident, mapping in mappings.items():
        try:
            bound[ident] = bind(mapping, sources)
        except InvalidInputError as exc:
            issues += exc.issues
    if issues:
        raise InvalidInputError(issues)
    return bound


def measure(
    bound: Bound,
    as_of: date,
    lookup: ImportedConsentLookup | None,
    hasher: SubjectHasher | None,
) -> ConsentCoverage:
    """Count one mapping's shared, missing and withdrawn subjects on `as_of`.

    Raises:
        DataSourceError: a database cannot be reached or read.
        StoreError: the imported consents cannot be read.
        ValueError: imported consents without a lookup or a hasher.
    """
    if isinstance(bound, BoundConsent):
        return coverage(bound, as_of)
    if lookup is None or hasher is None:
        raise ValueError("imported consents need the state store and the subject key")
    return imported_coverage(bound, as_of, lookup, hasher)


def consent_findings(coverages: Iterable[ConsentCoverage], policies: PolicyData) -> list[Finding]:
    """One `transfer-consent-missing` finding per integration with shared subjects lacking a
    valid consent (Art. 49(1)(a): consent to a transfer must be explicit and specific, and
    counts only until withdrawn); its place is the purpose, its evidence the counts."""
    found = []
    for result in sorted(coverages, key=lambda r: r.integration):
        if result.missing <= 0:
            continue
        withdrawn = (
            f"; {result.withdrawn} of them withdrew their consent and are still shared"
            if result.withdrawn
            else ""
        )
        message = (
            f"{result.missing} of {result.shared} data subjects shared with {result.integration} "
            f"have no valid consent for {result.purpose!r} on {result.as_of.isoformat()}"
            f"{withdrawn}"
        )
        found.append(
            policies.finding(
                RULE,
                result.integration,
                message,
                place=result.purpose,
                evidence={
                    "shared": result.shared,
                    "missing": result.missing,
                    "withdrawn": result.withdrawn,
                    "path": result.path,
                    "as_of": result.as_of.isoformat(),
                },
            )
        )
    return found


def describe(exc: AuditorError) -> str:
    """A one-line reason: an InvalidInputError's issues joined, another error's first line."""
    if isinstance(exc, InvalidInputError):
        return "; ".join(str(issue) for issue in exc.issues)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- start-up ---------------------------------------------------------------------------------


def check_sources(settings: ConsentSettings, environ: Mapping[str, str]) -> list[str]:
    """Check every consent mapping against its reflected schema, for the daemon's start-up.

    Returns the data sources that could not be reached (a database that is down must not stop
    the daemon: the consent job fails and is counted until it is back).

    Raises:
        InvalidInputError: a table, column or filter value does not fit (naming the setting),
            or GDPR_AUDITOR_SUBJECT_KEY is missing while a mapping uses imported consents.
    """
    issues: list[Issue] = []
    if uses_imported(settings):
        try:
            subject_key(environ)
        except InvalidInputError as exc:
            issues += exc.issues
    more, unreachable = schema_issues(settings, environ)
    issues += more
    if issues:
        raise InvalidInputError(issues)
    return sorted({describe(exc) for exc in unreachable})


def schema_issues(
    settings: ConsentSettings, environ: Mapping[str, str]
) -> tuple[list[Issue], list[DataSourceError]]:
    """Every consent mapping checked against its reflected schema: the problems (each naming
    its setting), and the errors of the data sources that could not be opened or read (their
    mappings go unchecked; the others are checked all the same)."""
    issues: list[Issue] = []
    unreachable: list[DataSourceError] = []
    with DataSources(settings.data_sources, environ) as sources:
        for ident, mapping in settings.consent.items():
            try:
                issues += check_consent({ident: mapping}, sources)
            except DataSourceError as exc:
                unreachable.append(exc)
    return issues, unreachable


# --- the daemon's job -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentRun:
    """What one consent job run found and recorded."""

    results: tuple[ConsentCoverage, ...]
    failures: Mapping[str, str]
    changes: FindingChanges


def run_consent_job(
    settings: ConsentSettings,
    integrations: Iterable[Integration],
    policies: PolicyData,
    store: StateStore,
    *,
    clock: Clock,
    environ: Mapping[str, str],
    check: Callable[[], None],
) -> ConsentRun:
    """Check every mapping, record the results and the findings, and return them.

    It stays one function of about 70 lines: one pass over the mappings that records each result
    or failure, in the order the evidence shows them.

    Raises:
        JobCancelled: (from `check`) the daemon is stopping; nothing of this run is recorded.
        ConsentCheckError: some mappings failed; the others' results are recorded.
        StoreError: the results could not be recorded.
    """
    mappings = settings.consent
    for issue in check_against_inventory(mappings, integrations):
        # Checked anyway: the counts are right whatever the inventory says.
        log.warning("consent_mapping_unmatched", problem=str(issue))
    as_of = clock().date()
    results: list[ConsentCoverage] = []
    failures: dict[str, tuple[str, str]] = {}
    hasher: SubjectHasher | None = None
    with DataSources(settings.data_sources, environ) as sources:
        for ident, mapping in mappings.items():
            check()
            try:
                if mapping.imported and hasher is None:
                    hasher = SubjectHasher(subject_key(environ))
                result = measure(bind(mapping, sources), as_of, store, hasher)
            except AuditorError as exc:
                failures[ident] = (mapping.purpose, describe(exc))
                log.error("consent_check_failed", integration=ident, error=failures[ident][1])
                continue
            results.append(result)
            if mapping.imported and store.imported_consent_count(mapping.purpose) == 0:
                log.warning("no_imported_consents", integration=ident, purpose=mapping.purpose)
            log.info(
                "consent_checked",
                integration=ident,
                shared=result.shared,
                missing=result.missing,
                withdrawn=result.withdrawn,
                path=result.path,
                duration_seconds=round(result.duration_seconds, 3),
            )
    check()
    current = {result.integration: result for result in results}
    for ident, stored in store.consent_coverage().items():
        # A mapping that failed keeps its last counts, and so its finding stays open.
        if ident in failures and stored.coverage is not None:
            current[ident] = stored.coverage
    findings = consent_findings(current.values(), policies)
    changes = store.record_consent_check(
        results, failures, findings, at=clock(), keep=list(mappings)
    )
    log.info(
        "consent_check_finished",
        checked=len(results),
        failed=len(failures),
        findings=changes.open,
        new=changes.new,
        resolved=changes.resolved,
        reopened=changes.reopened,
    )
    reasons = {ident: reason for ident, (_, reason) in failures.items()}
    if reasons:
        raise ConsentCheckError(reasons)
    return ConsentRun(tuple(results), reasons, changes)

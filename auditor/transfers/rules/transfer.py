"""Transfer rules (Chapter V): every place the data reaches, and the unlawful ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from auditor.core.adequacy import Assessment, Recipient, assess
from auditor.core.model import (
    Facet,
    Finding,
    Integration,
    Observation,
    Place,
    PlaceCheck,
    Verdict,
    endpoint_probe,
)
from auditor.core.policies import PolicyData
from auditor.core.wording import iso_day
from auditor.transfers.rules import AuditContext, rule

_FACET_NOUN = {
    Facet.HOSTING: "hosting place",
    Facet.BACKUP: "backup region",
    Facet.SUPPORT: "support location",
    Facet.SUBPROCESSOR: "sub-processor place",
    Facet.ENDPOINT: "observed endpoint location",
}


_Assessments = dict[tuple[str | None, str | None, Recipient], Assessment]
"""Assessments already made in this audit, by (country, organisation, recipient): thousands of
integrations send data to a few dozen places under a few dozen kinds of transfer record."""


def _assess(
    known: _Assessments,
    country: str | None,
    recipient: Recipient,
    policies: PolicyData,
    on: date,
    organisation: str | None = None,
) -> Assessment:
    key = (country, organisation, recipient)
    found = known.get(key)
    if found is None:
        found = known[key] = assess(country, recipient, policies, on, organisation=organisation)
    return found


def _declared(
    integration: Integration,
    facet: Facet,
    places: tuple[Place, ...],
    policies: PolicyData,
    on: date,
    known: _Assessments,
    via: Integration | None = None,
) -> Iterator[tuple[PlaceCheck, Assessment]]:
    recipient = Recipient.of(integration, via)
    for place in places:
        assessment = _assess(known, place.country, recipient, policies, on, place.organisation)
        spec = f"{via.id}/{place.spec}" if via is not None else place.spec
        yield (
            PlaceCheck(
                integration=integration.id,
                facet=facet,
                place=spec,
                country=place.country,
                verdict=assessment.verdict,
                basis=assessment.basis,
                via=via.id if via is not None else None,
            ),
            assessment,
        )


def _observed(
    integration: Integration,
    observations: tuple[Observation, ...],
    policies: PolicyData,
    on: date,
    known: _Assessments,
) -> Iterator[tuple[PlaceCheck, Assessment]]:
    by_country: dict[str, list[str]] = {}
    for observation in observations:
        if observation.edge:
            yield (
                PlaceCheck(
                    integration.id,
                    Facet.ENDPOINT,
                    observation.hostname,
                    None,
                    Verdict.EDGE,
                    observation.edge_reason or "edge",
                    via=observation.hostname,
                    probes=(endpoint_probe(observation.hostname),),
                ),
                Assessment(Verdict.EDGE, "edge"),
            )
            continue
        countries = {loc.country for loc in observation.locations if loc.country is not None}
        for country in countries:
            by_country.setdefault(country, []).append(observation.hostname)
    for country, hostnames in sorted(by_country.items()):
        assessment = _assess(known, country, Recipient.of(integration), policies, on)
        names = sorted(set(hostnames))
        yield (
            PlaceCheck(
                integration.id,
                Facet.ENDPOINT,
                country,
                country,
                assessment.verdict,
                assessment.basis,
                via=", ".join(names),
                probes=tuple(endpoint_probe(name) for name in names),
            ),
            assessment,
        )


def assessed_places(context: AuditContext) -> Iterator[tuple[PlaceCheck, Assessment]]:
    """Every place each integration's data reaches, with its verdict on the audit date."""
    return zip(*_places(context), strict=True)


def _places(context: AuditContext) -> tuple[tuple[PlaceCheck, ...], tuple[Assessment, ...]]:
    """The places and their assessments, computed once per audit context and shared by the
    rules and the report: two tuples side by side (no pair per place, on a large audit hundreds
    of thousands of them; equal assessments are one object)."""
    found: tuple[tuple[PlaceCheck, ...], tuple[Assessment, ...]] | None = context.memo.get(_places)
    if found is None:
        checks: list[PlaceCheck] = []
        assessments: list[Assessment] = []
        for check, assessment in _assess_places(context):
            checks.append(check)
            assessments.append(assessment)
        found = context.memo[_places] = (tuple(checks), tuple(assessments))
    return found


def _assess_places(context: AuditContext) -> Iterator[tuple[PlaceCheck, Assessment]]:
    policies, on = context.policies, context.as_of
    known: _Assessments = {}
    for integration in context.integrations.values():
        yield from _declared(integration, Facet.HOSTING, integration.hosting, policies, on, known)
        if integration.backups is not None:
            regions = integration.backups.regions
            yield from _declared(integration, Facet.BACKUP, regions, policies, on, known)
        yield from _declared(integration, Facet.SUPPORT, integration.support, policies, on, known)
        for sub_id in integration.subprocessors:
            sub = context.inventory[sub_id]
            yield from _declared(
                integration, Facet.SUBPROCESSOR, sub.hosting, policies, on, known, via=sub
            )
        observations = context.observations.get(integration.id, ())
        yield from _observed(integration, observations, policies, on, known)


def place_checks(context: AuditContext) -> tuple[PlaceCheck, ...]:
    """Every place with its verdict, for reports and metrics."""
    return _places(context)[0]


def _subject(check: PlaceCheck) -> str:
    """The place in words: "backup region aws:us-west-2 (US)", "sub-processor aws: ..."."""
    noun = _FACET_NOUN[check.facet]
    where = (
        check.place.split("/", 1)[-1]
        if check.via and check.facet is Facet.SUBPROCESSOR
        else check.place
    )
    subject = f"{noun} {where}"
    if check.country is not None and check.country != where:
        subject += f" ({check.country})"
    if check.facet is Facet.SUBPROCESSOR:
        subject = f"sub-processor {check.via}: {subject}"
    elif check.facet is Facet.ENDPOINT:
        subject += f" of {check.via}"
    return subject


def _evidence(check: PlaceCheck, assessment: Assessment, on: date) -> dict[str, object]:
    evidence: dict[str, object] = {"reason": assessment.reason, "as_of": iso_day(on)}
    if check.via is not None:
        evidence["via"] = check.via
    if assessment.decision is not None:
        evidence["decision"] = assessment.decision.id
        if assessment.verdict is Verdict.SCOPE_UNCONFIRMED:
            evidence["scope"] = assessment.decision.scope_note
    if assessment.certifications:
        evidence["certifications"] = [c.describe() for c in assessment.certifications]
        if any(c.shorthand for c in assessment.certifications):
            evidence["note"] = (
                "dpf_certified records a DPF certification without dates: it counts only while "
                "the Data Privacy Framework decision is in force"
            )
    return evidence


def _place_finding(
    context: AuditContext, rule_id: str, check: PlaceCheck, assessment: Assessment, message: str
) -> Finding:
    """A finding about one place, with the evidence of its assessment."""
    return context.finding(
        rule_id,
        context.integrations[check.integration],
        message,
        facet=check.facet,
        place=check.place,
        country=check.country,
        evidence=_evidence(check, assessment, context.as_of),
        probes=check.probes,
    )


@rule("transfer-unsafeguarded")
def transfer_unsafeguarded(context: AuditContext) -> Iterator[Finding]:
    """Art. 44: a place outside the EEA needs adequacy in force and in scope, or a safeguard."""
    for check, assessment in assessed_places(context):
        if check.verdict is Verdict.UNSAFEGUARDED:
            message = (
                f"{_subject(check)} has no adequacy in scope and no safeguard ({assessment.reason})"
            )
            yield _place_finding(context, "transfer-unsafeguarded", check, assessment, message)


@rule("adequacy-scope-unconfirmed")
def adequacy_scope_unconfirmed(context: AuditContext) -> Iterator[Finding]:
    """Art. 45: a limited decision covers a recipient only within its scope, which the DPO confirms."""
    for check, assessment in assessed_places(context):
        decision = assessment.decision
        if check.verdict is not Verdict.SCOPE_UNCONFIRMED or decision is None:
            continue
        # A sub-processor's scope is confirmed on the sub-processor's own entry.
        owner = check.via if check.facet is Facet.SUBPROCESSOR and check.via else check.integration
        message = (
            f"{_subject(check)}: the {decision.name} decision ({decision.id}) covers it only "
            f"if {decision.covers.confirm}; check that, then add {decision.id} to "
            f"transfer.in_scope_of of {owner!r} (or record SCCs)"
        )
        yield _place_finding(context, "adequacy-scope-unconfirmed", check, assessment, message)

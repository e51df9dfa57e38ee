"""Vendor jurisdiction (Art. 48): data resting in the EEA or adequate places, held by a vendor
whose home country has no adequacy for it and whose authorities can compel access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.core.adequacy import Assessment, decisions_in_force
from auditor.core.jurisdiction import VendorJudgement, judge_vendor
from auditor.core.model import Facet, Finding, Integration, VendorCountry, Verdict
from auditor.core.wording import iso_day
from auditor.transfers.rules import AuditContext, rule

RULE = "vendor-foreign-jurisdiction"
EU_PROVIDER = "a provider controlled from the EEA"


@rule(RULE)
def vendor_foreign_jurisdiction(context: AuditContext) -> Iterator[Finding]:
    """A vendor in a country without adequacy can be ordered to hand over data it holds in the
    EEA: a warning naming the laws; an unknown vendor country is said (info), never taken as fine."""
    for integration in context.integrations.values():
        judged = judge_vendor(integration, context.inventory, context.policies, context.as_of)
        if judged is None:
            continue
        home, assessment = judged.country, judged.assessment
        if home is None or assessment is None:
            yield context.finding(
                RULE,
                integration,
                f"the country of {integration.vendor}, the vendor of {integration.name}, is not "
                "known (no vendor_country, and the vendor catalogue does not give it): whether a "
                "foreign law can compel the vendor to give access to the data cannot be judged; "
                "declare vendor_country (headquarters or controlling parent)",
                facet=Facet.VENDOR,
                evidence=_evidence(judged),
                unrecorded=True,
            )
        elif judged.foreign:
            yield context.finding(
                RULE,
                integration,
                _message(context, integration, judged, home, assessment),
                facet=Facet.VENDOR,
                place=home.code,
                country=home.code,
                evidence=_evidence(judged),
            )


def _message(
    context: AuditContext,
    integration: Integration,
    judged: VendorJudgement,
    home: VendorCountry,
    assessment: Assessment,
) -> str:
    """What can reach the data, and what would settle it."""
    code = home.code
    where = f"{code} (from the vendor catalogue)" if home.source == "catalogue" else code
    opening = (
        f"the data of {integration.name} rests only in the EEA or adequate places, but its "
        f"vendor {judged.vendor} is in {where}"
    )
    decision = assessment.decision
    if judged.verdict is Verdict.SCOPE_UNCONFIRMED and decision is not None:
        opening += (
            f", where the {decision.name} decision ({decision.id}) covers it only if "
            f"{decision.covers.confirm}, which is not confirmed"
        )
        settle = (
            "confirming it in transfer.in_scope_of, SCCs with a transfer impact assessment, "
            f"or {EU_PROVIDER}"
        )
    else:
        opening += f", which has no adequacy for it on {context.as_of.isoformat()}"
        settle = f"SCCs with a transfer impact assessment, or {EU_PROVIDER}"
        certified = [
            d
            for d in decisions_in_force(context.policies, context.as_of, country=code)
            if d.scope == "certified"
        ]
        if certified:
            settle = f"certification under the {certified[0].name}, {settle}"
    if judged.laws:
        reach = f"{code} law can reach data the vendor controls: " + "; ".join(
            law.describe() for law in judged.laws
        )
    else:
        reach = (
            f"the policy data names no law of {code} that can compel access; ask the vendor "
            "which laws it answers to"
        )
    return f"{opening}; {reach}. {settle[0].upper()}{settle[1:]} would settle it"


def _evidence(judged: VendorJudgement) -> dict[str, Any]:
    home = judged.country
    evidence: dict[str, Any] = {
        "vendor": judged.vendor,
        "vendor_country": home.code if home else None,
        "vendor_country_source": home.source if home else None,
        "resting": [place.describe() for place in judged.resting],
        "as_of": iso_day(judged.on),
    }
    if home is not None and home.source == "catalogue":
        evidence["catalogue_entry"] = home.catalogue_id
        evidence["catalogue_source"] = home.reference
        evidence["note"] = f"vendor_country {home.describe()}: check it and declare vendor_country"
    assessment = judged.assessment
    if assessment is not None:
        evidence["verdict"] = assessment.verdict.value
        evidence["basis"] = assessment.basis
        evidence["reason"] = assessment.reason
        if assessment.decision is not None:
            evidence["decision"] = assessment.decision.id
        if assessment.certifications:
            evidence["certifications"] = [c.describe() for c in assessment.certifications]
        if assessment.verdict is Verdict.CONSENT:
            evidence["consent"] = (
                "explicit consent covers the transfers the organisation makes; it is not "
                "counted as settling access the vendor can be compelled to give"
            )
    evidence["laws"] = [
        {"id": law.id, "name": law.name, "citation": law.citation, "sources": list(law.sources)}
        for law in judged.laws
    ]
    return evidence

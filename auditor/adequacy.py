"""Decides whether personal data may go to a place on a date: EEA, adequacy, safeguard, consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from auditor.model import Transfer, Verdict
from auditor.policies import Decision, PolicyData

SAFEGUARD_NAMES = {
    "scc": "standard contractual clauses (Art. 46(2)(c))",
    "bcr": "binding corporate rules (Art. 47)",
}


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one place, the legal basis relied on, and why a transfer is unlawful."""

    verdict: Verdict
    basis: str
    decision: Decision | None = None
    reason: str | None = None  # for UNSAFEGUARDED: what is missing, and what would cover it


def decisions_in_force(
    policies: PolicyData, on: date, *, country: str | None = None, organisation: str | None = None
) -> list[Decision]:
    """Return the adequacy decisions for a country or organisation that apply on the day."""
    return [
        decision
        for decision in policies.adequacy.decisions
        if decision.in_force(on)
        and (
            (country is not None and decision.country == country)
            or (organisation is not None and decision.organisation == organisation)
        )
    ]


def assess(
    country: str | None,
    transfer: Transfer,
    policies: PolicyData,
    on: date,
    *,
    organisation: str | None = None,
) -> Assessment:
    """Assess a transfer of an integration's data to a country (or organisation) on a day.

    Order follows Chapter V: no transfer inside the EEA; then an adequacy decision in force and
    in scope (Art. 45); then a recorded safeguard (Art. 46/47); then explicit consent
    (Art. 49(1)(a)), whose coverage is checked separately.
    """
    if organisation is not None:
        for decision in decisions_in_force(policies, on, organisation=organisation):
            return Assessment(Verdict.ADEQUATE, decision.citation(), decision)
        return _without_adequacy(
            transfer, f"no adequacy decision for {organisation} in force on {on}"
        )
    if country is None:
        return Assessment(Verdict.UNKNOWN, "location unknown")
    country = policies.canonical_country(country)
    if policies.in_eea(country, on):
        return Assessment(Verdict.EEA, "EEA")
    out_of_scope: Decision | None = None
    for decision in decisions_in_force(policies, on, country=country):
        # The US decisions cover only organisations certified under the framework in force.
        if decision.scope == "certified" and not transfer.dpf_certified:
            out_of_scope = decision
            continue
        return Assessment(Verdict.ADEQUATE, decision.citation(), decision)
    if out_of_scope is not None:
        reason = (
            f"not certified under the {out_of_scope.name}; certification or SCCs would cover it"
        )
    else:
        reason = f"no adequacy decision for {country} in force on {on}"
    return _without_adequacy(transfer, reason)


def _without_adequacy(transfer: Transfer, reason: str) -> Assessment:
    if transfer.safeguards:
        basis = ", ".join(SAFEGUARD_NAMES.get(name, name) for name in sorted(transfer.safeguards))
        return Assessment(Verdict.SAFEGUARDED, basis)
    if transfer.consent_purpose is not None:
        basis = f"explicit consent (Art. 49(1)(a)) for {transfer.consent_purpose!r}"
        return Assessment(Verdict.CONSENT, basis, reason=reason)
    return Assessment(Verdict.UNSAFEGUARDED, "none", reason=reason)

"""Decides whether personal data may go to a place on a date: EEA, adequacy, safeguard, consent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from auditor.core.model import Certification, Integration, Transfer, Verdict
from auditor.core.policies import PolicyData
from auditor.core.policydocs import Decision

SAFEGUARD_NAMES = {
    "scc": "standard contractual clauses (Art. 46(2)(c))",
    "bcr": "binding corporate rules (Art. 47)",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the inventory says about who receives the data, as far as a decision's scope asks.

    The transfer record (safeguards, certifications, confirmed scopes) is the recipient's own;
    HR data and purposes describe the data and the processing of the integration it comes from.
    """

    transfer: Transfer
    hr_data: bool = False
    purposes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, integration: Integration, via: Integration | None = None) -> Recipient:
        """The recipient of an integration's data, or of its sub-processor `via`.

        A sub-processor's transfer is covered by what is recorded for the sub-processor itself;
        the data, and the purposes it serves, are still the integration's.
        """
        return cls(
            (via or integration).transfer,
            hr_data=integration.hr_data,
            purposes=frozenset(integration.purposes),
        )


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one place, the legal basis relied on, and why a transfer is unlawful."""

    verdict: Verdict
    basis: str
    decision: Decision | None = None  # the decision relied on, or the unconfirmed limited one
    reason: str | None = None  # for UNSAFEGUARDED: what is missing, and what would cover it
    certifications: tuple[Certification, ...] = field(default=())  # those the verdict weighed


class _Cover(Enum):
    YES = "yes"
    UNCONFIRMED = "unconfirmed"  # a limited decision the DPO has not confirmed
    NO = "no"


@dataclass(frozen=True, slots=True)
class _Outcome:
    cover: _Cover
    text: str  # YES: the basis; otherwise why the decision does not cover the recipient
    certifications: tuple[Certification, ...] = ()


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


def covers(decision: Decision, recipient: Recipient, on: date) -> bool:
    """Whether the decision covers this recipient on the day (it must be in force too)."""
    return decision.in_force(on) and _coverage(decision, recipient, on).cover is _Cover.YES


def _coverage(decision: Decision, recipient: Recipient, on: date) -> _Outcome:
    """How far the decision reaches this recipient, judged on what the inventory records."""
    transfer = recipient.transfer
    scope = decision.covers
    excluded = sorted(recipient.purposes & set(scope.excluded_purposes))
    if excluded:
        return _Outcome(
            _Cover.NO, f"the {decision.name} decision excludes the purpose {', '.join(excluded)}"
        )
    sector = transfer.recipient_sector
    if sector is not None and sector not in scope.sectors:
        return _Outcome(
            _Cover.NO,
            f"the {decision.name} decision does not cover {sector}-sector recipients "
            f"({decision.scope_note})",
        )
    if decision.scope == "certified":
        return _certified(decision, recipient, on)
    if decision.scope == "limited" and decision.id not in transfer.in_scope_of:
        return _Outcome(_Cover.UNCONFIRMED, decision.scope_note or decision.name)
    basis = decision.citation()
    if decision.scope == "limited":
        basis += "; scope confirmed (in_scope_of)"
    return _Outcome(_Cover.YES, basis)


def _certified(decision: Decision, recipient: Recipient, on: date) -> _Outcome:
    """A certified decision covers a recipient certified under its framework that day (HR: for HR)."""
    recorded = recipient.transfer.certifications
    valid = [c for c in recorded if c.framework == decision.framework and c.valid_on(on)]
    if not valid:
        held = "; recorded: " + ", ".join(c.describe() for c in recorded) if recorded else ""
        return _Outcome(
            _Cover.NO,
            f"not certified under the {decision.name} on {on.isoformat()}{held}; "
            "certification or SCCs would cover it",
            recorded,
        )
    if recipient.hr_data:
        valid = [c for c in valid if c.hr]
        if not valid:
            return _Outcome(
                _Cover.NO,
                f"HR data (employment) needs an HR certification under the {decision.name}; "
                "the recorded certification covers non-HR data only; an HR certification or "
                "SCCs would cover it",
                recorded,
            )
    relied = valid[0]
    return _Outcome(_Cover.YES, f"{decision.citation()}; certified: {relied.describe()}", (relied,))


def assess(
    country: str | None,
    recipient: Recipient | Transfer,
    policies: PolicyData,
    on: date,
    *,
    organisation: str | None = None,
) -> Assessment:
    """Assess a transfer of an integration's data to a country (or organisation) on a day.

    Order follows Chapter V: no transfer inside the EEA; then an adequacy decision in force and
    covering this recipient (Art. 45); then a recorded safeguard (Art. 46/47); then explicit
    consent (Art. 49(1)(a)), whose coverage is checked separately. A limited decision the DPO has
    not confirmed is no basis: without another, the place is `scope-unconfirmed`.
    """
    if isinstance(recipient, Transfer):
        recipient = Recipient(recipient)
    if organisation is not None:
        decisions = decisions_in_force(policies, on, organisation=organisation)
        nothing = f"no adequacy decision for {organisation} in force on {on.isoformat()}"
    elif country is None:
        return Assessment(Verdict.UNKNOWN, "location unknown")
    else:
        country = policies.canonical_country(country)
        if policies.in_eea(country, on):
            return Assessment(Verdict.EEA, "EEA")
        decisions = decisions_in_force(policies, on, country=country)
        nothing = f"no adequacy decision for {country} in force on {on.isoformat()}"
    return _judge(decisions, recipient, on, nothing)


def _judge(
    decisions: Iterable[Decision], recipient: Recipient, on: date, nothing: str
) -> Assessment:
    unconfirmed: Decision | None = None
    gaps: list[str] = []
    weighed: list[Certification] = []
    for decision in decisions:
        outcome = _coverage(decision, recipient, on)
        weighed.extend(c for c in outcome.certifications if c not in weighed)
        if outcome.cover is _Cover.YES:
            return Assessment(
                Verdict.ADEQUATE, outcome.text, decision, certifications=outcome.certifications
            )
        if outcome.cover is _Cover.UNCONFIRMED:
            unconfirmed = unconfirmed or decision
        else:
            gaps.append(outcome.text)
    transfer = recipient.transfer
    certifications = tuple(weighed)
    if transfer.safeguards:
        basis = ", ".join(SAFEGUARD_NAMES.get(name, name) for name in sorted(transfer.safeguards))
        return Assessment(Verdict.SAFEGUARDED, basis, certifications=certifications)
    if unconfirmed is not None:
        reason = f"{unconfirmed.name}: {unconfirmed.scope_note}"
        if transfer.consent_purpose is None:
            return Assessment(
                Verdict.SCOPE_UNCONFIRMED,
                f"{unconfirmed.citation()}, scope not confirmed",
                unconfirmed,
                reason=reason,
            )
        gaps.append(f"{reason} (not confirmed in in_scope_of)")
    reason = "; ".join(gaps) if gaps else nothing
    if transfer.consent_purpose is not None:
        basis = f"explicit consent (Art. 49(1)(a)) for {transfer.consent_purpose!r}"
        return Assessment(Verdict.CONSENT, basis, reason=reason, certifications=certifications)
    return Assessment(Verdict.UNSAFEGUARDED, "none", reason=reason, certifications=certifications)

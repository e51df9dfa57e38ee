"""Judges a vendor's home country for an integration whose data rests only in the EEA or adequate
places: a vendor in a country without adequacy can be compelled to give access where nothing is
transferred yet (Art. 48). Pure; used by the rule and by the register."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from auditor.core.adequacy import Assessment, Recipient, assess
from auditor.core.model import Integration, Place, VendorCountry, Verdict
from auditor.core.policies import PolicyData
from auditor.core.policydocs import Law

RESTING = frozenset({Verdict.EEA, Verdict.ADEQUATE})
"""Verdicts of places where data rests without leaving the law's protection."""
SETTLED = frozenset({Verdict.EEA, Verdict.ADEQUATE, Verdict.SAFEGUARDED})
"""Verdicts of the vendor's country that settle its jurisdiction: in the EEA, adequate for this
recipient (a US vendor certified under the DPF), or covered by recorded SCCs or BCRs (recorded
after a transfer impact assessment, as the rules' remedies ask)."""


@dataclass(frozen=True, slots=True)
class RestingPlace:
    """A place the data rests in, and its verdict: hosting, backup, or a sub-processor's hosting."""

    facet: str  # hosting | backup | subprocessor
    place: str
    verdict: Verdict

    def describe(self) -> str:
        return f"{self.facet} {self.place}: {self.verdict.value}"


@dataclass(frozen=True, slots=True)
class VendorJudgement:
    """The vendor's country judged like a place for this recipient on the audit date.

    `assessment` is None when the country is unknown (not declared and not in the catalogue).
    """

    integration: str
    vendor: str
    country: VendorCountry | None
    assessment: Assessment | None
    laws: tuple[Law, ...]
    resting: tuple[RestingPlace, ...]
    on: date

    @property
    def verdict(self) -> Verdict:
        return Verdict.UNKNOWN if self.assessment is None else self.assessment.verdict

    @property
    def foreign(self) -> bool:
        """Whether the vendor's country leaves the data within reach of laws without adequacy."""
        return self.assessment is not None and self.verdict not in SETTLED


def _resting(
    integration: Integration, by_id: Mapping[str, Integration], policies: PolicyData, on: date
) -> tuple[RestingPlace, ...]:
    """The declared places the data rests in, each judged as the transfer rules judge it."""
    found: list[RestingPlace] = []

    def judge(facet: str, places: tuple[Place, ...], via: Integration | None = None) -> None:
        recipient = Recipient.of(integration, via)
        for place in places:
            verdict = assess(
                place.country, recipient, policies, on, organisation=place.organisation
            ).verdict
            spec = f"{via.id}/{place.spec}" if via is not None else str(place)
            found.append(RestingPlace(facet, spec, verdict))

    judge("hosting", integration.hosting)
    if integration.backups is not None:
        judge("backup", integration.backups.regions)
    for sub_id in integration.subprocessors:
        if sub_id in by_id:
            judge("subprocessor", by_id[sub_id].hosting, by_id[sub_id])
    return tuple(found)


def judge_vendor(
    integration: Integration,
    by_id: Mapping[str, Integration],
    policies: PolicyData,
    on: date,
) -> VendorJudgement | None:
    """The vendor's country judged for this integration, or None where the question does not
    arise: no personal data, no declared hosting (contract-location-undisclosed says so), data
    resting somewhere that is neither EEA nor adequate (the transfer rules judge it there), or
    support given from the vendor's own country (that access is a transfer, judged as one).
    """
    if not integration.data_categories or not integration.hosting:
        return None
    resting = _resting(integration, by_id, policies, on)
    if any(place.verdict not in RESTING for place in resting):
        return None
    home = integration.vendor_country
    if home is None:
        return VendorJudgement(integration.id, integration.vendor, None, None, (), resting, on)
    country = policies.canonical_country(home.code)
    if any(place.country == country for place in integration.support):
        return None
    assessment = assess(country, Recipient.of(integration), policies, on)
    laws = policies.jurisdictions.laws(country)
    return VendorJudgement(integration.id, integration.vendor, home, assessment, laws, resting, on)

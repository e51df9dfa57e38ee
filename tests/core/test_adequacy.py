"""Adequacy as of a date: the EEA, decisions in force and in scope, safeguards and consent."""

from __future__ import annotations

import functools
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.adequacy import assess
from auditor.core.errors import InvalidInputError
from auditor.core.model import Certification, Transfer, Verdict
from auditor.core.policies import PolicyData, load_policies, shipped_policies

cached_policies = functools.cache(load_policies)
NONE = Transfer()
DPF = Transfer(certifications=(Certification("dpf", shorthand=True),))
# Certified under each US framework in turn, each certification from before its decision.
EVERY_US_FRAMEWORK = Transfer(
    certifications=(
        Certification("safe-harbour", date(2000, 1, 1)),
        Certification("privacy-shield", date(2016, 1, 1)),
        Certification("dpf", date(2023, 1, 1)),
    )
)


@pytest.fixture(scope="module", name="policies")
def _policies() -> PolicyData:
    return cached_policies()


class TestUnitedStates:
    @pytest.mark.parametrize(
        ("day", "verdict"),
        [
            (date(2015, 10, 5), Verdict.ADEQUATE),  # Safe Harbour, its last day
            (date(2015, 10, 6), Verdict.UNSAFEGUARDED),  # Schrems I
            (date(2016, 7, 12), Verdict.ADEQUATE),  # Privacy Shield adopted
            (date(2020, 7, 15), Verdict.ADEQUATE),
            (date(2020, 7, 16), Verdict.UNSAFEGUARDED),  # Schrems II
            (date(2023, 7, 9), Verdict.UNSAFEGUARDED),
            (date(2023, 7, 10), Verdict.ADEQUATE),  # DPF
            (date(2026, 11, 22), Verdict.ADEQUATE),
        ],
    )
    def test_certified_organisation_across_decision_dates(
        self, policies: PolicyData, day: date, verdict: Verdict
    ) -> None:
        """A certified US organisation is covered only while a US framework is in force."""
        assert verdict == assess("US", EVERY_US_FRAMEWORK, policies, day).verdict

    def test_uncertified_organisation_is_never_covered_by_the_dpf(
        self, policies: PolicyData
    ) -> None:
        """The DPF covers only certified organisations; the reason says what would cover the transfer."""
        assessment = assess("US", NONE, policies, date(2026, 11, 22))

        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert assessment.reason is not None
        assert "certif" in assessment.reason
        assert "SCC" in assessment.reason

    @given(st.dates(date(2020, 7, 16), date(2023, 7, 9)))
    def test_nothing_covers_the_us_between_schrems_ii_and_the_dpf(self, day: date) -> None:
        """From 16 July 2020 to 9 July 2023 a US place needs a safeguard, certified or not."""
        policies = cached_policies()

        assert Verdict.UNSAFEGUARDED == assess("US", EVERY_US_FRAMEWORK, policies, day).verdict
        assert Verdict.UNSAFEGUARDED == assess("US", DPF, policies, day).verdict
        assert (
            Verdict.SAFEGUARDED
            == assess("US", Transfer(safeguards=frozenset({"scc"})), policies, day).verdict
        )


class TestOtherDecisions:
    def test_brazil_from_26_january_2026(self, policies: PolicyData) -> None:
        """Brazil's decision applies from its adoption day, not before (once its scope is confirmed)."""
        confirmed = Transfer(in_scope_of=frozenset({"br-2026"}))
        assert Verdict.UNSAFEGUARDED == assess("BR", confirmed, policies, date(2026, 1, 25)).verdict
        assert Verdict.ADEQUATE == assess("BR", confirmed, policies, date(2026, 1, 26)).verdict

    def test_united_kingdom_renewal_and_expiry(self, policies: PolicyData) -> None:
        """The UK is covered through the renewal and until 27 December 2031, not after."""
        assert Verdict.ADEQUATE == assess("GB", NONE, policies, date(2025, 12, 20)).verdict
        assert Verdict.ADEQUATE == assess("GB", NONE, policies, date(2031, 12, 27)).verdict
        assert Verdict.UNSAFEGUARDED == assess("GB", NONE, policies, date(2031, 12, 28)).verdict

    def test_uk_alias_and_greek_alias(self, policies: PolicyData) -> None:
        """EU documents' UK and EL mean GB and GR."""
        assert Verdict.ADEQUATE == assess("UK", NONE, policies, date(2026, 1, 1)).verdict
        assert Verdict.EEA == assess("EL", NONE, policies, date(2026, 1, 1)).verdict

    def test_european_patent_organisation_is_an_organisation(self, policies: PolicyData) -> None:
        """The EPO is covered from 15 July 2025 as an organisation."""
        org = "european-patent-organisation"

        assert (
            Verdict.ADEQUATE
            == assess(None, NONE, policies, date(2025, 7, 15), organisation=org).verdict
        )
        assert (
            Verdict.UNSAFEGUARDED
            == assess(None, NONE, policies, date(2025, 7, 14), organisation=org).verdict
        )

    @pytest.mark.parametrize("country", ["RS", "IN", "CN", "SG", "AU"])
    def test_countries_without_a_decision(self, policies: PolicyData, country: str) -> None:
        """Serbia, India, China, Singapore and Australia have no adequacy decision."""
        assert Verdict.UNSAFEGUARDED == assess(country, NONE, policies, date(2026, 11, 22)).verdict

    @pytest.mark.parametrize("country", ["RE", "GF", "AX"])
    def test_outermost_regions_are_in_the_eea(self, policies: PolicyData, country: str) -> None:
        """French outermost regions and Åland are parts of member states."""
        assert Verdict.EEA == assess(country, NONE, policies, date(2026, 11, 22)).verdict

    def test_switzerland_is_adequate_not_eea(self, policies: PolicyData) -> None:
        """Switzerland is outside the EEA with its own decision."""
        assert Verdict.ADEQUATE == assess("CH", NONE, policies, date(2026, 11, 22)).verdict


class TestSafeguardsAndConsent:
    def test_scc_covers_a_country_without_decision(self, policies: PolicyData) -> None:
        """A recorded safeguard makes the transfer safeguarded and names it."""
        assessment = assess(
            "IN", Transfer(safeguards=frozenset({"scc"})), policies, date(2026, 11, 22)
        )

        assert Verdict.SAFEGUARDED == assessment.verdict
        assert "standard contractual clauses" in assessment.basis

    def test_consent_is_recognised_as_the_basis(self, policies: PolicyData) -> None:
        """A transfer relying on consent is not reported as unsafeguarded."""
        assessment = assess("SG", Transfer(consent_purpose="survey"), policies, date(2026, 11, 22))

        assert Verdict.CONSENT == assessment.verdict
        assert "Art. 49(1)(a)" in assessment.basis

    def test_adequacy_wins_over_safeguard(self, policies: PolicyData) -> None:
        """Where a decision covers the recipient, it is the basis even if SCCs are recorded."""
        transfer = Transfer(safeguards=frozenset({"scc"}), in_scope_of=frozenset({"jp-2019"}))

        assert Verdict.ADEQUATE == assess("JP", transfer, policies, date(2026, 11, 22)).verdict

    def test_safeguard_is_the_basis_where_a_limited_scope_is_unconfirmed(
        self, policies: PolicyData
    ) -> None:
        """An unconfirmed limited decision is no basis; the recorded SCCs are."""
        assessment = assess(
            "JP", Transfer(safeguards=frozenset({"scc"})), policies, date(2026, 11, 22)
        )

        assert Verdict.SAFEGUARDED == assessment.verdict


@given(
    st.dates(date(2019, 1, 1), date(2040, 1, 1)),
    st.sampled_from(["DE", "FR", "IE", "NO", "IS", "LI", "GR"]),
)
def test_eea_members_are_never_a_transfer(day: date, country: str) -> None:
    """Data in an EEA member state is never a transfer, whatever the date."""
    assert Verdict.EEA == assess(country, NONE, cached_policies(), day).verdict


def test_great_britain_was_eea_until_the_end_of_the_transition(policies: PolicyData) -> None:
    """The UK counts as EEA until 31 December 2020, then the bridge, then adequacy."""
    assert Verdict.EEA == assess("GB", NONE, policies, date(2020, 12, 31)).verdict
    assert (
        Verdict.ADEQUATE
        == assess("GB", NONE, policies, date(2020, 12, 31) + timedelta(days=1)).verdict
    )


# Each dated territory: its first day inside (None: inside since before 2000), its last day
# inside (None: still inside), and the code GeoIP returns for it.
DATED_TERRITORIES = [
    ("YT", date(2014, 1, 1), None),  # Mayotte became an outermost region
    ("BL", None, date(2011, 12, 31)),  # Saint-Barthelemy became an overseas territory
    ("GI", None, date(2020, 12, 31)),  # Gibraltar left with the UK
]


def _edges(first: date | None, last: date | None) -> list[tuple[date, bool]]:
    days: list[tuple[date, bool]] = []
    if first is not None:
        days += [(first - timedelta(days=1), False), (first, True)]
    if last is not None:
        days += [(last, True), (last + timedelta(days=1), False)]
    return days


@pytest.mark.parametrize(
    ("territory", "day", "inside"),
    [
        (code, day, inside)
        for code, first, last in DATED_TERRITORIES
        for day, inside in _edges(first, last)
    ],
)
def test_dated_territories_are_eea_only_between_their_dates(
    policies: PolicyData, territory: str, day: date, inside: bool
) -> None:
    """A territory is in the EEA from its first day to its last, inclusive, and not a day beyond."""
    assert inside == policies.in_eea(territory, day)
    assert inside == (Verdict.EEA == assess(territory, NONE, policies, day).verdict)


def test_saint_martin_has_been_eea_throughout(policies: PolicyData) -> None:
    """Saint Martin was part of Guadeloupe, then an outermost region: inside the EU throughout."""
    for day in (date(2000, 7, 26), date(2007, 7, 14), date(2007, 7, 15), date(2026, 11, 22)):
        assert policies.in_eea("MF", day)


def test_gibraltar_needs_a_safeguard_after_the_transition(policies: PolicyData) -> None:
    """Gibraltar has no adequacy decision of its own: from 2021 it needs a safeguard."""
    assert Verdict.UNSAFEGUARDED == assess("GI", NONE, policies, date(2021, 1, 1)).verdict


def test_mayotte_was_a_third_country_before_2014(policies: PolicyData) -> None:
    """Before it became an outermost region, Mayotte was outside the EU, with no decision."""
    assert Verdict.UNSAFEGUARDED == assess("YT", NONE, policies, date(2013, 12, 31)).verdict


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("commission_document", "C 2000/2304"),
        ("commission_document", "2000/518/EC"),
        ("official_journal", "OJ L 215 25.8.2000"),
        ("official_journal", "Official Journal L 215, 25.8.2000, p. 1"),
    ],
)
def test_malformed_citations_are_rejected_naming_the_field(
    tmp_path: Path, key: str, value: str
) -> None:
    """A citation that is not a Commission document number or OJ reference is an invalid file."""
    copy = tmp_path / "policies"
    shutil.copytree(shipped_policies(), copy)
    text = (copy / "adequacy.yaml").read_text(encoding="utf-8")
    text = text.replace('commission_document: "C(2000) 2304"', f"{key}: {value!r}", 1)
    if key == "official_journal":
        text = text.replace('official_journal: "OJ L 215, 25.8.2000, p. 1"', "", 1)
    (copy / "adequacy.yaml").write_text(text, encoding="utf-8")

    with pytest.raises(InvalidInputError) as raised:
        load_policies(copy)

    assert key in str(raised.value)


def test_citation_names_the_commission_document_where_known(policies: PolicyData) -> None:
    """The basis of an adequate verdict cites the instrument, its date and its document number."""
    basis = assess("CH", NONE, policies, date(2026, 11, 22)).basis
    assert basis == "Commission Decision 2000/518/EC of 2000-07-26, C(2000) 2304"

"""Adequacy only for recipients a decision covers: limited scopes, certifications, purposes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from auditor.core.adequacy import Assessment, Recipient, assess, covers
from auditor.core.errors import Issue
from auditor.core.inventory import parse_inventory
from auditor.core.model import Certification, Facet, Finding, Severity, Transfer, Verdict
from auditor.core.policydocs import Decision
from auditor.core.yamlsource import parse_yaml
from auditor.transfers.rules import AuditContext, evaluate
from tests.helpers import integrations_from, minimal, shipped_policies

DAY = date(2026, 11, 22)
POLICIES = shipped_policies()
DECISIONS = POLICIES.adequacy.decisions
LIMITED = [d for d in DECISIONS if d.scope == "limited"]


def fitting(decision: Decision) -> Recipient:
    """A recipient inside the decision's scope, for every day the decision is in force."""
    certifications: tuple[Certification, ...] = ()
    if decision.framework is not None:
        certifications = (Certification(decision.framework, date(1990, 1, 1), None, hr=True),)
    transfer = Transfer(certifications=certifications, in_scope_of=frozenset({decision.id}))
    return Recipient(transfer, hr_data=True)


def assess_for(decision: Decision, recipient: Recipient, day: date) -> Assessment:
    return assess(decision.country, recipient, POLICIES, day, organisation=decision.organisation)


@pytest.mark.parametrize("decision", DECISIONS, ids=lambda d: d.id)
def test_every_decision_covers_its_first_and_last_day_and_not_the_day_after(
    decision: Decision,
) -> None:
    """A decision is the basis from its first day to its last, and never the day after."""
    recipient = fitting(decision)
    first = assess_for(decision, recipient, decision.adopted)
    assert Verdict.ADEQUATE == first.verdict
    assert covers(decision, recipient, decision.adopted)
    day_before = decision.adopted - timedelta(days=1)
    assert not covers(decision, recipient, day_before)

    last = decision.last_day()
    if last is None:
        assert covers(decision, recipient, DAY)
        return
    assert covers(decision, recipient, last)
    after = assess_for(decision, recipient, last + timedelta(days=1))
    assert not covers(decision, recipient, last + timedelta(days=1))
    assert after.decision is None or decision.id != after.decision.id


class TestLimitedScopes:
    @pytest.mark.parametrize("decision", LIMITED, ids=lambda d: d.id)
    def test_unconfirmed_limited_decision_is_never_adequate(self, decision: Decision) -> None:
        """Without the DPO's confirmation a limited decision gives `scope-unconfirmed`."""
        assessment = assess(decision.country, Transfer(), POLICIES, DAY)

        assert Verdict.SCOPE_UNCONFIRMED == assessment.verdict
        assert assessment.decision is decision
        assert decision.scope_note is not None
        assert decision.scope_note in (assessment.reason or "")

    @pytest.mark.parametrize("decision", LIMITED, ids=lambda d: d.id)
    def test_confirmed_limited_decision_is_adequate(self, decision: Decision) -> None:
        """Listing the decision in in_scope_of makes it the basis."""
        transfer = Transfer(in_scope_of=frozenset({decision.id}))
        assessment = assess(decision.country, transfer, POLICIES, DAY)

        assert Verdict.ADEQUATE == assessment.verdict
        assert decision.instrument in assessment.basis

    def test_confirming_another_countrys_decision_does_not_help(self) -> None:
        """A confirmation is for one decision: Canada's does not cover Japan."""
        transfer = Transfer(in_scope_of=frozenset({"ca-2001"}))

        assert Verdict.SCOPE_UNCONFIRMED == assess("JP", transfer, POLICIES, DAY).verdict

    def test_canadian_public_sector_is_outside_pipeda(self) -> None:
        """A public-sector recipient in Canada is not covered, even if confirmed by mistake."""
        transfer = Transfer(in_scope_of=frozenset({"ca-2001"}), recipient_sector="public")
        assessment = assess("CA", transfer, POLICIES, DAY)

        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "public-sector" in (assessment.reason or "")

    def test_korean_public_sector_is_inside_pipa(self) -> None:
        """The Korean decision covers public authorities subject to the PIPA too."""
        transfer = Transfer(in_scope_of=frozenset({"kr-2021"}), recipient_sector="public")

        assert Verdict.ADEQUATE == assess("KR", transfer, POLICIES, DAY).verdict

    def test_japanese_press_processing_is_outside_the_decision(self) -> None:
        """Processing for journalism by the press is outside the Japan decision."""
        recipient = Recipient(
            Transfer(in_scope_of=frozenset({"jp-2019"})), purposes=frozenset({"journalism"})
        )

        assert Verdict.UNSAFEGUARDED == assess("JP", recipient, POLICIES, DAY).verdict

    def test_unconfirmed_scope_with_consent_relies_on_consent(self) -> None:
        """Consent is another basis; the scope gap stays in the reason."""
        assessment = assess("CA", Transfer(consent_purpose="newsletter"), POLICIES, DAY)

        assert Verdict.CONSENT == assessment.verdict
        assert "PIPEDA" in (assessment.reason or "")


class TestUnitedKingdomImmigrationExclusion:
    def test_ordinary_recipient_needs_no_confirmation(self) -> None:
        """The UK decision covers every recipient whose processing is not for immigration control."""
        assert Verdict.ADEQUATE == assess("GB", Transfer(), POLICIES, date(2022, 6, 1)).verdict

    def test_immigration_control_was_excluded_by_the_2021_decision(self) -> None:
        """An integration serving UK immigration control had no adequacy under 2021/1772."""
        recipient = Recipient(Transfer(), purposes=frozenset({"immigration-control"}))
        assessment = assess("GB", recipient, POLICIES, date(2022, 6, 1))

        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "immigration-control" in (assessment.reason or "")

    def test_the_renewal_covers_immigration_control(self) -> None:
        """The 2025 renewal repealed the exclusion."""
        recipient = Recipient(Transfer(), purposes=frozenset({"immigration-control"}))

        assert Verdict.ADEQUATE == assess("GB", recipient, POLICIES, DAY).verdict


class TestCertifications:
    def test_certification_that_began_after_the_audit_date(self) -> None:
        """A DPF certification from 2024 does not cover a day in 2023."""
        transfer = Transfer(certifications=(Certification("dpf", date(2024, 3, 1)),))

        assessment = assess("US", transfer, POLICIES, date(2023, 9, 1))
        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "not certified" in (assessment.reason or "")
        assert Verdict.ADEQUATE == assess("US", transfer, POLICIES, date(2024, 3, 1)).verdict

    def test_lapsed_certification(self) -> None:
        """A certification covers up to and including its `until` day."""
        transfer = Transfer(certifications=(Certification("dpf", date(2023, 9, 1), DAY),))

        assert Verdict.ADEQUATE == assess("US", transfer, POLICIES, DAY).verdict
        later = DAY + timedelta(days=1)
        assert Verdict.UNSAFEGUARDED == assess("US", transfer, POLICIES, later).verdict

    def test_privacy_shield_in_2019_and_in_2024(self) -> None:
        """A Privacy Shield certification covered 2019, and covers nothing after Schrems II."""
        transfer = Transfer(certifications=(Certification("privacy-shield", date(2017, 1, 1)),))

        assert Verdict.ADEQUATE == assess("US", transfer, POLICIES, date(2019, 5, 1)).verdict
        assessment = assess("US", transfer, POLICIES, date(2024, 5, 1))
        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "Data Privacy Framework" in (assessment.reason or "")

    def test_dpf_certification_never_covers_privacy_shield_days(self) -> None:
        """A certification counts only under its own framework's decision."""
        transfer = Transfer(certifications=(Certification("dpf", date(2000, 1, 1)),))

        assert Verdict.UNSAFEGUARDED == assess("US", transfer, POLICIES, date(2019, 5, 1)).verdict

    def test_hr_data_under_a_non_hr_certification(self) -> None:
        """HR data needs an HR certification."""
        non_hr = Transfer(certifications=(Certification("dpf", date(2023, 9, 1)),))
        hr = Transfer(certifications=(Certification("dpf", date(2023, 9, 1), hr=True),))

        assessment = assess("US", Recipient(non_hr, hr_data=True), POLICIES, DAY)
        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "HR" in (assessment.reason or "")
        assert Verdict.ADEQUATE == assess("US", Recipient(hr, hr_data=True), POLICIES, DAY).verdict
        assert Verdict.ADEQUATE == assess("US", Recipient(non_hr), POLICIES, DAY).verdict

    def test_shorthand_covers_the_dpf_period_only(self) -> None:
        """`dpf_certified: true` is a DPF certification with unknown dates."""
        shorthand = Transfer(certifications=(Certification("dpf", shorthand=True),))

        assert Verdict.ADEQUATE == assess("US", shorthand, POLICIES, DAY).verdict
        assessment = assess("US", shorthand, POLICIES, date(2019, 5, 1))
        assert Verdict.UNSAFEGUARDED == assessment.verdict
        assert "dates not recorded" in (assessment.reason or "")


# -- the property: adequate only when a decision in force covers the recipient -----------------


def oracle_covers(decision: Decision, recipient: Recipient, day: date) -> bool:
    """Does the decision cover the recipient that day? Written from the design, not the code."""
    in_force = (
        decision.adopted <= day
        and (decision.ended is None or day < decision.ended)
        and (decision.expires is None or day <= decision.expires)
    )
    if not in_force or recipient.purposes & set(decision.covers.excluded_purposes):
        return False
    sector = recipient.transfer.recipient_sector
    if sector is not None and sector not in decision.covers.sectors:
        return False
    if decision.scope == "whole":
        return True
    if decision.scope == "limited":
        return decision.id in recipient.transfer.in_scope_of
    return any(
        c.framework == decision.framework
        and (c.since is None or c.since <= day)
        and (c.until is None or day <= c.until)
        and (c.hr or not recipient.hr_data)
        for c in recipient.transfer.certifications
    )


_days = st.dates(date(1999, 1, 1), date(2035, 12, 31))
_certification = st.builds(
    lambda framework, since, length, hr, shorthand: Certification(
        framework,
        None if shorthand else since,
        None if shorthand or length is None else since + timedelta(days=length),
        hr=hr and not shorthand,
        shorthand=shorthand,
    ),
    st.sampled_from(sorted(POLICIES.adequacy.frameworks)),
    _days,
    st.none() | st.integers(0, 4000),
    st.booleans(),
    st.booleans(),
)
_recipient = st.builds(
    lambda certs, scopes, sector, scc, consent, hr, purposes: Recipient(
        Transfer(
            safeguards=frozenset({"scc"}) if scc else frozenset(),
            certifications=tuple(certs),
            in_scope_of=frozenset(scopes),
            recipient_sector=sector,
            consent_purpose="research" if consent else None,
        ),
        hr_data=hr,
        purposes=frozenset(purposes),
    ),
    st.lists(_certification, max_size=3),
    st.sets(st.sampled_from([d.id for d in LIMITED])),
    st.sampled_from([None, "private", "public"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sets(st.sampled_from(sorted(POLICIES.adequacy.purposes)), max_size=2),
)
_countries = sorted({d.country for d in DECISIONS if d.country} | {"DE", "IN", "SJ"})


@given(st.sampled_from(_countries), _recipient, _days)
def test_adequate_exactly_when_a_decision_in_force_covers_the_recipient(
    country: str, recipient: Recipient, day: date
) -> None:
    """For any recipient and date, `adequate` iff some decision in force that day covers it."""
    assessment = assess(country, recipient, POLICIES, day)
    covering = [d for d in DECISIONS if d.country == country and oracle_covers(d, recipient, day)]
    if POLICIES.in_eea(country, day):
        assert Verdict.EEA == assessment.verdict
        return
    assert (Verdict.ADEQUATE == assessment.verdict) == bool(covering)
    if assessment.verdict is Verdict.SCOPE_UNCONFIRMED:
        transfer = recipient.transfer
        assert not transfer.safeguards and transfer.consent_purpose is None
        assert assessment.decision is not None and assessment.decision.scope == "limited"
        assert assessment.decision.id not in transfer.in_scope_of


# -- the inventory keys and the rule ---------------------------------------------------------


def issues_for(entry: dict[str, object]) -> list[Issue]:
    text = yaml.safe_dump({"integrations": [entry]}, sort_keys=False)
    _, issues = parse_inventory(parse_yaml(text, "inv.yaml"), POLICIES)
    return issues


class TestInventoryKeys:
    def test_keys_load(self) -> None:
        """Certifications, confirmed scopes, sector and purposes reach the model."""
        [entry] = integrations_from(
            """
            integrations:
              - id: hr-tool
                name: HR tool
                category: other
                role: processor
                data_categories: [employment]
                hosting: [US, CA]
                purposes: [immigration-control]
                transfer:
                  certifications:
                    - {framework: dpf, since: 2023-09-01, until: null, hr: true}
                    - {framework: privacy-shield, since: 2017-01-01, until: 2020-07-16}
                  in_scope_of: [ca-2001]
                  recipient_sector: private
            """
        )

        assert entry.hr_data
        assert ("immigration-control",) == entry.purposes
        assert frozenset({"ca-2001"}) == entry.transfer.in_scope_of
        assert "private" == entry.transfer.recipient_sector
        assert [("dpf", True), ("privacy-shield", False)] == [
            (c.framework, c.hr) for c in entry.transfer.certifications
        ]

    def test_shorthand_is_a_dateless_non_hr_dpf_certification(self) -> None:
        """`dpf_certified: true` still loads, as a certification with unknown dates."""
        [entry] = integrations_from(
            yaml.safe_dump({"integrations": [minimal("x", transfer={"dpf_certified": True})]})
        )

        [cert] = entry.transfer.certifications
        assert ("dpf", None, None, False, True) == (
            cert.framework,
            cert.since,
            cert.until,
            cert.hr,
            cert.shorthand,
        )

    @pytest.mark.parametrize(
        ("transfer", "field", "fragment"),
        [
            ({"in_scope_of": ["xx-2001"]}, "transfer.in_scope_of[0]", "unknown adequacy decision"),
            ({"in_scope_of": ["us-dpf"]}, "transfer.in_scope_of[0]", "not a limited-scope"),
            (
                {"certifications": [{"framework": "cbpr", "since": "2024-01-01"}]},
                "transfer.certifications[0].framework",
                "unknown framework 'cbpr'",
            ),
            (
                {
                    "certifications": [
                        {"framework": "dpf", "since": "2024-01-01", "until": "2023-01-01"}
                    ]
                },
                "transfer.certifications[0]",
                "until must not be before since",
            ),
            (
                {"certifications": [{"framework": "dpf"}]},
                "transfer.certifications[0].since",
                "required",
            ),
            (
                {
                    "dpf_certified": True,
                    "certifications": [{"framework": "dpf", "since": "2024-01-01"}],
                },
                "transfer",
                "shorthand",
            ),
            (
                {"recipient_sector": "government"},
                "transfer.recipient_sector",
                "expected one of 'private' or 'public', got 'government'",
            ),
        ],
    )
    def test_bad_transfer_records_are_named(
        self, transfer: dict[str, object], field: str, fragment: str
    ) -> None:
        """Unknown decisions and frameworks, bad dates and conflicts name file, entry and line."""
        text = yaml.safe_dump({"integrations": [minimal("crm", transfer=transfer)]})
        [issue] = issues_for(minimal("crm", transfer=transfer))

        assert ("inv.yaml", "integration 'crm'", field) == (issue.source, issue.entry, issue.field)
        assert fragment in issue.message
        assert issue.line is not None
        assert issue.line <= len(text.splitlines())

    def test_unknown_purpose_is_named(self) -> None:
        """Only purposes some decision excludes are recorded; others are errors."""
        [issue] = issues_for(minimal("crm", purposes=["marketing"]))

        assert "purposes[0]" == issue.field
        assert "unknown purpose 'marketing'" in issue.message


def audit(entries: list[dict[str, object]], day: date = DAY) -> list[Finding]:
    """The findings above info level (the entries record no vendor country or restore test,
    which info findings say; tests/transfers/test_rules.py covers those)."""
    integrations = integrations_from(yaml.safe_dump({"integrations": entries}))
    context = AuditContext({i.id: i for i in integrations}, {}, POLICIES, day)
    return [f for f in evaluate(context) if f.severity is not Severity.INFO]


class TestScopeRule:
    def test_unconfirmed_scope_is_a_warning_saying_what_to_confirm(self) -> None:
        """One warning per place, naming the decision, its scope and how to confirm it."""
        findings = audit([minimal("shop", hosting=["CA"], support=["JP"])])

        scoped = sorted(
            (f for f in findings if f.rule == "adequacy-scope-unconfirmed"),
            key=lambda f: f.facet,
        )
        assert [Facet.HOSTING, Facet.SUPPORT] == [f.facet for f in scoped]
        hosting, support = scoped
        assert "warning" == hosting.severity.value
        assert "PIPEDA" in hosting.message
        assert "commercial activities" in hosting.message
        assert "ca-2001" in hosting.message and "in_scope_of" in hosting.message
        assert "jp-2019" in support.message
        assert "ca-2001" == hosting.evidence["decision"]
        assert not [f for f in findings if f.rule == "transfer-unsafeguarded"]

    def test_confirmed_scope_raises_nothing(self) -> None:
        """Once confirmed, the place is adequate and nothing is reported."""
        entry = minimal("shop", hosting=["CA"], transfer={"in_scope_of": ["ca-2001"]})

        assert [] == audit([entry])

    def test_subprocessor_scope_is_confirmed_on_the_subprocessor(self) -> None:
        """The sub-processor's own record counts; the message names where to confirm it."""
        sub = minimal("ca-host", hosting=["CA"], transfer={"in_scope_of": ["ca-2001"]})
        unconfirmed = minimal("jp-host", hosting=["JP"])
        crm = minimal("crm", subprocessors=["ca-host", "jp-host"])

        findings = [f for f in audit([sub, unconfirmed, crm]) if f.integration == "crm"]
        [finding] = findings
        assert "adequacy-scope-unconfirmed" == finding.rule
        assert "'jp-host'" in finding.message

    def test_us_finding_lists_the_certifications_weighed(self) -> None:
        """The evidence says which certifications were considered, and the shorthand's limit."""
        entry = minimal("mail", hosting=["US"], transfer={"dpf_certified": True})

        [finding] = [
            f for f in audit([entry], day=date(2019, 5, 1)) if f.rule == "transfer-unsafeguarded"
        ]
        evidence = finding.evidence
        assert ["dpf (dpf_certified: dates not recorded)"] == evidence["certifications"]
        assert "Data Privacy Framework" in evidence["note"]

    def test_hr_data_in_the_us_under_a_non_hr_certification(self) -> None:
        """An HR integration with a non-HR DPF certification is an unlawful transfer."""
        entry = minimal(
            "payroll",
            data_categories=["employment"],
            hosting=["US"],
            transfer={"certifications": [{"framework": "dpf", "since": "2023-09-01"}]},
        )

        [finding] = audit([entry])
        assert "transfer-unsafeguarded" == finding.rule
        assert "HR certification" in finding.message


@pytest.mark.parametrize("decision", LIMITED, ids=lambda d: d.id)
def test_every_limited_decision_says_what_to_confirm(decision: Decision) -> None:
    """The warning can tell the DPO what the scope requires and how to confirm it."""
    assert decision.covers.confirm
    assert decision.scope_note

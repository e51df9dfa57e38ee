"""Every rule with a passing and a failing case, on the pure core (observations given as data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import yaml

from auditor.core.durations import parse_duration
from auditor.core.model import Facet, Finding, Location, Observation, Resolution, Severity
from auditor.core.results import edge_reason
from auditor.core.vendors import CatalogueHome, with_vendor_countries
from auditor.transfers.config import BackupChecks
from auditor.transfers.rules import AuditContext, evaluate, registered
from tests.helpers import integrations_from, minimal, shipped_policies

DAY = date(2026, 11, 22)


def audit(
    entries: Sequence[dict[str, object]],
    observations: dict[str, list[Observation]] | None = None,
    day: date = DAY,
    *,
    unrecorded: bool = False,
    checks: BackupChecks | None = None,
) -> list[Finding]:
    """The findings of the entries on the day; the info-level ones (nothing recorded: vendor
    country, restore test, backup documentation) only with `unrecorded`, as most tests are
    about other rules and leave those keys out."""
    integrations = integrations_from(yaml.safe_dump({"integrations": list(entries)}))
    context = AuditContext(
        integrations={i.id: i for i in integrations},
        observations={k: tuple(v) for k, v in (observations or {}).items()},
        policies=shipped_policies(),
        as_of=day,
        backup_checks=checks or BackupChecks(),
    )
    findings = list(evaluate(context))
    return [f for f in findings if unrecorded or f.severity is not Severity.INFO]


def rules_of(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.rule, f.facet.value if f.facet else None, f.place) for f in findings)


def seen(
    integration: str,
    hostname: str,
    *locations: Location,
    chain: tuple[str, ...] = (),
    status: str = "ok",
) -> Observation:
    addresses = tuple(loc.address for loc in locations)
    resolution = Resolution(hostname, status, addresses, chain, None if status == "ok" else "why")
    reason = edge_reason(resolution, locations, shipped_policies()) if status == "ok" else None
    return Observation(integration, hostname, resolution, locations, reason)


def geo(address: str, country: str | None, **kwargs: object) -> Location:
    return Location(address, country, "geoip" if country else "none", **kwargs)  # type: ignore[arg-type]


def test_every_design_rule_with_a_place_or_contract_is_registered() -> None:
    """The rule identifiers of the design's minimum set that this pipeline raises are registered."""
    expected = {
        "transfer-unsafeguarded",
        "location-drift",
        "location-unverified",
        "backup-undocumented",
        "backup-not-offsite",
        "backup-retention-exceeds",
        "contract-dpa-missing",
        "contract-vendor-data-use",
        "contract-location-undisclosed",
        "vendor-foreign-jurisdiction",
        "backup-restore-untested",
        "backup-documentation-stale",
    }

    assert expected <= set(registered())
    assert set(registered()) <= set(shipped_policies().rules)


def test_a_clean_eu_integration_has_no_findings() -> None:
    """EEA hosting and vendor, off-site EEA backups restored and reviewed this year, a DPA, no
    vendor use: nothing to report, not even at info level."""
    assert [] == audit([minimal("crm")], unrecorded=True)


def test_what_is_not_recorded_is_said_at_info_level_only() -> None:
    """Without vendor_country, restore test or backup documentation, the audit says so as info
    findings: never fine, and nothing at warning level that would change `--fail-on warning`."""
    entry = minimal("crm", backups={"regions": ["aws:eu-west-1"], "retention": "P30D"})
    del entry["vendor_country"]

    findings = audit([entry], unrecorded=True)

    assert [
        ("backup-documentation-stale", "info"),
        ("backup-restore-untested", "info"),
        ("vendor-foreign-jurisdiction", "info"),
    ] == sorted((f.rule, f.severity.value) for f in findings)


class TestTransfer:
    def test_one_finding_per_facet(self) -> None:
        """A US place reached as hosting, backup and support yields one finding per facet."""
        entry = minimal(
            "mail",
            hosting=["US"],
            support=["US"],
            backups={"regions": ["aws:us-west-2"], "retention": "P30D"},
        )

        findings = [f for f in audit([entry]) if f.rule == "transfer-unsafeguarded"]

        assert [("backup", "aws:us-west-2"), ("hosting", "US"), ("support", "US")] == sorted(
            (f.facet.value, f.place) for f in findings if f.facet
        )
        backup = next(f for f in findings if f.facet is Facet.BACKUP)
        assert "backup region aws:us-west-2 (US)" in backup.message
        assert ("critical", "Art. 44", "US") == (
            backup.severity.value,
            backup.article,
            backup.country,
        )
        assert "SCC" in backup.message

    def test_dpf_certification_covers_the_us(self) -> None:
        """A DPF-certified integration may host in the US today."""
        entry = minimal(
            "mail",
            hosting=["US"],
            transfer={"dpf_certified": True},
            backups={"regions": ["aws:us-west-2"], "retention": "P30D"},
        )

        assert [] == [f for f in audit([entry]) if f.rule == "transfer-unsafeguarded"]

    def test_dpf_certification_did_not_help_in_2022(self) -> None:
        """Between Schrems II and the DPF, certification covered nothing."""
        entry = minimal("mail", hosting=["US"], transfer={"dpf_certified": True})

        findings = audit([entry], day=date(2022, 6, 1))

        assert ("transfer-unsafeguarded", "hosting", "US") in rules_of(findings)

    def test_consent_based_transfer_is_not_unsafeguarded(self) -> None:
        """An integration relying on consent is recognised, not reported as unlawful here."""
        entry = minimal("survey", hosting=["SG"], transfer={"consent_purpose": "panel"})

        assert [] == [f for f in audit([entry]) if f.rule == "transfer-unsafeguarded"]

    def test_subprocessor_places_are_checked_with_the_subprocessors_safeguards(self) -> None:
        """A sub-processor's unsafeguarded place is a finding on the integration that uses it."""
        parent = minimal("crm", subprocessors=["cloud", "cloud-scc"])
        cloud = minimal("cloud", hosting=["aws:us-east-1"], backups={"regions": ["aws:eu-west-1"]})
        cloud_scc = minimal("cloud-scc", hosting=["IN"], transfer={"safeguards": ["scc"]})

        findings = audit([parent, cloud, cloud_scc])

        sub = [f for f in findings if f.facet is Facet.SUBPROCESSOR]
        assert [("crm", "cloud/aws:us-east-1")] == [(f.integration, f.place) for f in sub]
        assert "sub-processor cloud" in sub[0].message

    def test_observed_endpoint_in_a_third_country(self) -> None:
        """An endpoint located in China is an unlawful transfer on the endpoint facet."""
        entry = minimal("crm", endpoints=["api.crm.example"])
        obs = {"crm": [seen("crm", "api.crm.example", geo("203.0.113.5", "CN"))]}

        findings = audit([entry], obs)

        assert ("transfer-unsafeguarded", "endpoint", "CN") in rules_of(findings)
        assert ("location-drift", "endpoint", "CN") in rules_of(findings)


class TestLocation:
    def test_endpoint_in_declared_country_is_fine(self) -> None:
        """An endpoint where the hosting is declared raises nothing."""
        entry = minimal("crm", endpoints=["api.crm.example"])
        obs = {"crm": [seen("crm", "api.crm.example", geo("192.0.2.1", "DE"))]}

        assert [] == audit([entry], obs)

    def test_drift_to_an_adequate_country_is_only_drift(self) -> None:
        """Observed in Switzerland while declared in Germany: drift, but no unlawful transfer."""
        entry = minimal("crm", endpoints=["api.crm.example"])
        obs = {"crm": [seen("crm", "api.crm.example", geo("192.0.2.1", "CH"))]}

        assert [("location-drift", "endpoint", "CH")] == rules_of(audit([entry], obs))

    def test_cdn_edges_are_excluded_by_cname(self) -> None:
        """A CloudFront edge in the US says nothing about where the data rests."""
        entry = minimal("crm", endpoints=["app.crm.example"])
        obs = {
            "crm": [
                seen(
                    "crm",
                    "app.crm.example",
                    geo("203.0.113.9", "US"),
                    chain=("edge.crm.example", "d111.cloudfront.net"),
                )
            ]
        }

        assert [] == audit([entry], obs)

    def test_cdn_edges_are_excluded_by_range(self) -> None:
        """Addresses in an edge provider's ranges make the endpoint an edge."""
        entry = minimal("crm", endpoints=["app.crm.example"])
        edge = Location(
            "203.0.113.200", "US", "ip-ranges:cloudflare", provider="cloudflare", edge=True
        )
        obs = {"crm": [seen("crm", "app.crm.example", edge)]}

        assert [] == audit([entry], obs)

    def test_unresolvable_endpoint_is_unverified_never_a_violation(self) -> None:
        """NXDOMAIN, timeouts and SERVFAIL become location-unverified warnings only."""
        entry = minimal("crm", endpoints=["a.crm.example", "b.crm.example", "c.crm.example"])
        obs = {
            "crm": [
                seen("crm", "a.crm.example", status="nxdomain"),
                seen("crm", "b.crm.example", status="timeout"),
                seen("crm", "c.crm.example", status="servfail"),
            ]
        }

        findings = audit([entry], obs)

        assert {("location-unverified", "warning")} == {
            (f.rule, f.severity.value) for f in findings
        }
        assert 3 == len(findings)

    def test_unknown_address_is_unverified(self) -> None:
        """An address no data set locates is unverified."""
        entry = minimal("crm", endpoints=["a.crm.example"])
        obs = {"crm": [seen("crm", "a.crm.example", geo("203.0.113.250", None))]}

        assert [("location-unverified", "endpoint", "a.crm.example")] == rules_of(
            audit([entry], obs)
        )

    def test_address_in_an_unmapped_border_group_is_unverified_naming_it(self) -> None:
        """An AWS address whose border group the tables lack (so no country) is unverified, and
        the finding names the group; it is never judged as its parent region's US."""
        entry = minimal("crm", endpoints=["a.crm.example"])
        located = Location(
            "198.51.100.9", None, "ip-ranges:aws", provider="aws", region="us-east-1",
            zone="us-east-1-xyz-1",
        )  # fmt: skip
        obs = {"crm": [seen("crm", "a.crm.example", located)]}

        [finding] = audit([entry], obs)

        assert ("location-unverified", None) == (finding.rule, finding.country)
        assert ["aws:us-east-1-xyz-1"] == finding.evidence["unmapped"]
        assert "aws:us-east-1-xyz-1, which the region tables do not map" in finding.message


class TestBackup:
    def test_undocumented(self) -> None:
        """Personal data without backup information is backup-undocumented."""
        entry = minimal("crm")
        del entry["backups"]

        assert [("backup-undocumented", None, None)] == rules_of(audit([entry]))

    def test_equal_evidence_is_held_once_per_audit(self) -> None:
        """Findings of one audit with equal evidence hold one copy of it (memory of large audits)."""
        entries = [minimal(name) for name in ("crm", "cdp", "shop")]
        for entry in entries:
            del entry["backups"]

        findings = [f for f in audit(entries) if f.rule == "backup-undocumented"]

        assert len(findings) == 3 and len({f.integration for f in findings}) == 3
        assert len({id(f.evidence) for f in findings}) == 1

    def test_no_personal_data_needs_no_backup_record(self) -> None:
        """An integration holding no personal data is not asked for backups."""
        entry = minimal("crm", data_categories=[])
        del entry["backups"]

        assert [] == audit([entry])

    def test_not_offsite(self) -> None:
        """Backups only in the hosting place are not off-site."""
        entry = minimal("crm", hosting=["hetzner:fsn1"], backups={"regions": ["hetzner:fsn1"]})

        assert [("backup-not-offsite", None, None)] == rules_of(audit([entry]))

    def test_offsite_in_another_region(self) -> None:
        """A backup region that differs from the hosting region is off-site."""
        entry = minimal("crm", hosting=["hetzner:fsn1"], backups={"regions": ["hetzner:nbg1"]})

        assert [] == audit([entry])

    def test_retention_exceeds(self) -> None:
        """Ten years of backups for data kept two years is too long; equal is fine."""
        long = minimal("crm", retention="P2Y", backups={"regions": ["IE"], "retention": "P10Y"})
        equal = minimal("mail", retention="P2Y", backups={"regions": ["IE"], "retention": "P24M"})

        assert [("backup-retention-exceeds", None, None)] == rules_of(audit([long, equal]))


class TestContract:
    def test_dpa_missing_for_a_processor(self) -> None:
        """A processor without a signed DPA is critical; a controller needs none."""
        processor = minimal("crm", contract={"dpa_signed": None})
        controller = minimal("pay", role="controller", contract={})

        findings = audit([processor, controller])

        assert [("contract-dpa-missing", "crm", "critical")] == [
            (f.rule, f.integration, f.severity.value) for f in findings
        ]

    def test_dpa_signed_after_the_audit_date(self) -> None:
        """A DPA signed after the as-of date did not exist on that date."""
        entry = minimal("crm", contract={"dpa_signed": "2025-06-01"})

        assert ["contract-dpa-missing"] == [f.rule for f in audit([entry], day=date(2025, 5, 31))]
        assert [] == audit([entry], day=date(2025, 6, 1))

    def test_vendor_data_use_and_ownership(self) -> None:
        """Vendor use or shared/vendor ownership of the data is critical."""
        use = minimal("a", contract={"dpa_signed": "2024-01-01", "vendor_may_use_data": True})
        shared = minimal("b", contract={"dpa_signed": "2024-01-01", "data_ownership": "shared"})
        fine = minimal("c")

        findings = audit([use, shared, fine])

        assert [("a", "contract-vendor-data-use"), ("b", "contract-vendor-data-use")] == sorted(
            (f.integration, f.rule) for f in findings
        )

    def test_location_undisclosed(self) -> None:
        """An integration with no hosting place declared is contract-location-undisclosed."""
        entry = minimal("crm", hosting=[])

        assert [("contract-location-undisclosed", None, None)] == rules_of(audit([entry]))


def vendor_findings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "vendor-foreign-jurisdiction"]


class TestVendorJurisdiction:
    def test_us_vendor_not_certified_hosting_in_frankfurt_is_a_warning(self) -> None:
        """A US vendor without DPF certification hosting in the EEA: nothing moves yet, but US
        law can reach the data; the warning names the laws and what would settle it."""
        entry = minimal(
            "crm", vendor="Acme Inc.", vendor_country="US", hosting=["aws:eu-central-1"]
        )

        (finding,) = vendor_findings(audit([entry]))

        assert ("warning", "Art. 48", Facet.VENDOR, "US", "US") == (
            finding.severity.value,
            finding.article,
            finding.facet,
            finding.place,
            finding.country,
        )
        assert "vendor Acme Inc. is in US" in finding.message
        assert "CLOUD Act (18 U.S.C. § 2713)" in finding.message
        assert "FISA Section 702 (50 U.S.C. § 1881a)" in finding.message
        assert "Certification under the EU-US Data Privacy Framework" in finding.message
        assert "SCCs with a transfer impact assessment" in finding.message
        assert "a provider controlled from the EEA" in finding.message
        evidence = finding.evidence
        assert ("unsafeguarded", "inventory") == (
            evidence["verdict"],
            evidence["vendor_country_source"],
        )
        assert ["us-cloud-act", "us-fisa-702", "us-eo-12333"] == [
            law["id"] for law in evidence["laws"]
        ]
        assert all(law["sources"] for law in evidence["laws"])
        assert "hosting aws:eu-central-1 (DE): eea" in evidence["resting"]

    def test_us_vendor_certified_under_the_dpf_is_fine(self) -> None:
        """A US vendor with a valid DPF certification is adequate for this recipient: none."""
        dated = minimal(
            "crm",
            vendor_country="US",
            transfer={"certifications": [{"framework": "dpf", "since": "2023-10-02"}]},
        )
        shorthand = minimal("mail", vendor_country="US", transfer={"dpf_certified": True})

        assert [] == vendor_findings(audit([dated, shorthand], unrecorded=True))

    def test_a_certification_must_be_valid_on_the_audit_date(self) -> None:
        """A DPF certification that ended before the audit date settles nothing."""
        lapsed = {"framework": "dpf", "since": "2023-10-02", "until": "2025-10-01"}
        entry = minimal("crm", vendor_country="US", transfer={"certifications": [lapsed]})

        (finding,) = vendor_findings(audit([entry]))

        assert (
            "not certified under the EU-US Data Privacy Framework on 2026-11-22"
            in (finding.evidence["reason"])
        )

    def test_hr_data_needs_an_hr_certification(self) -> None:
        """HR data with a non-HR DPF certification leaves the vendor's country without cover."""
        entry = minimal(
            "hr",
            vendor_country="US",
            data_categories=["employment"],
            transfer={"dpf_certified": True},
        )

        assert ["US"] == [f.place for f in vendor_findings(audit([entry]))]

    def test_an_eea_or_adequate_vendor_is_fine(self) -> None:
        """An EEA vendor, and a vendor in a country with a whole-country adequacy decision, need
        nothing more."""
        eea = minimal("crm", vendor_country="FR")
        uk = minimal("mail", vendor_country="GB")
        swiss = minimal("shop", vendor_country="CH", hosting=["CH"])

        assert [] == vendor_findings(audit([eea, uk, swiss], unrecorded=True))

    def test_recorded_sccs_settle_it(self) -> None:
        """SCCs recorded for the recipient (after a transfer impact assessment) settle it."""
        entry = minimal("crm", vendor_country="US", transfer={"safeguards": ["scc"]})

        assert [] == vendor_findings(audit([entry]))

    def test_data_resting_outside_adequate_places_is_left_to_the_transfer_rules(self) -> None:
        """Where the data already rests in an unsafeguarded place, in a place under SCCs, or
        with a sub-processor outside the EEA, the transfer rules judge it: no vendor finding."""
        us_hosted = minimal("a", vendor_country="US", hosting=["US"])
        us_backup = minimal(
            "b", vendor_country="US", backups={"regions": ["aws:us-west-2"], "retention": "P30D"}
        )
        sub = minimal("sub", vendor_country="DE", hosting=["US"])
        via_sub = minimal("c", vendor_country="US", subprocessors=["sub"])

        findings = audit([us_hosted, us_backup, sub, via_sub], unrecorded=True)

        assert [] == vendor_findings(findings)
        assert {"a", "b", "sub"} <= {
            f.integration for f in findings if f.rule == "transfer-unsafeguarded"
        }

    def test_support_from_the_vendors_country_is_a_transfer_already(self) -> None:
        """Support staff in the vendor's country access the data: transfer-unsafeguarded says
        so for the support facet, and the vendor rule does not repeat it."""
        entry = minimal("crm", vendor_country="US", support=["US"])

        findings = audit([entry])

        assert [] == vendor_findings(findings)
        assert [("transfer-unsafeguarded", "support", "US")] == rules_of(findings)

    def test_a_limited_decision_not_confirmed_says_what_to_confirm(self) -> None:
        """A Japanese vendor: the APPI decision covers it only once the DPO confirms its scope;
        until then the warning carries the scope and names confirming it as a way to settle."""
        unconfirmed = minimal("a", vendor_country="JP")
        confirmed = minimal("b", vendor_country="JP", transfer={"in_scope_of": ["jp-2019"]})

        (finding,) = vendor_findings(audit([unconfirmed, confirmed]))

        assert ("a", "scope-unconfirmed", "jp-2019") == (
            finding.integration,
            finding.evidence["verdict"],
            finding.evidence["decision"],
        )
        assert "the Japan (APPI) decision (jp-2019) covers it only if" in finding.message
        assert "Confirming it in transfer.in_scope_of" in finding.message

    def test_a_country_the_policy_data_knows_no_law_of(self) -> None:
        """A vendor in Singapore: no adequacy, and no law in the policy data; the warning says
        so and asks the DPO to find out, without certification among the remedies."""
        entry = minimal("crm", vendor_country="SG")

        (finding,) = vendor_findings(audit([entry]))

        assert "the policy data names no law of SG" in finding.message
        assert "Certification" not in finding.message
        assert [] == finding.evidence["laws"]

    def test_between_the_privacy_shield_and_the_dpf_certification_was_no_remedy(self) -> None:
        """In 2022 no US decision was in force: the warning offers SCCs or an EEA provider."""
        entry = minimal("crm", vendor_country="US", transfer={"dpf_certified": True})

        (finding,) = vendor_findings(audit([entry], day=date(2022, 6, 1)))

        assert "no adequacy for it on 2022-06-01" in finding.message
        assert "Certification" not in finding.message

    def test_an_unknown_vendor_country_is_said_at_info_level(self) -> None:
        """Not declared and not from the catalogue: an info finding, never taken as fine."""
        entry = minimal("crm", vendor="Mystery Ltd.")
        del entry["vendor_country"]

        (finding,) = vendor_findings(audit([entry], unrecorded=True))

        assert ("info", Facet.VENDOR, None) == (
            finding.severity.value,
            finding.facet,
            finding.place,
        )
        assert "Mystery Ltd." in finding.message and "vendor_country" in finding.message
        assert [] == vendor_findings(audit([entry]))  # nothing at warning level

    def test_no_personal_data_or_no_hosting_raises_no_vendor_finding(self) -> None:
        """Without personal data there is nothing to reach; without hosting,
        contract-location-undisclosed asks for it first."""
        no_data = minimal("a", vendor_country="US", data_categories=[])
        no_hosting = minimal("b", vendor_country="US", hosting=[])

        assert [] == vendor_findings(audit([no_data, no_hosting], unrecorded=True))

    def test_a_country_from_the_catalogue_says_so(self) -> None:
        """A vendor country filled in from the catalogue is named as such, with its source."""
        entry = minimal("mailchimp", name="Mailchimp", hosting=["aws:eu-central-1"])
        del entry["vendor_country"]
        (integration,) = integrations_from(yaml.safe_dump({"integrations": [entry]}))
        homes = [CatalogueHome("mailchimp", "Mailchimp", "US", "memory")]
        (filled,) = with_vendor_countries([integration], homes)
        context = AuditContext({"mailchimp": filled}, {}, shipped_policies(), DAY)

        (finding,) = vendor_findings(list(evaluate(context)))

        assert "is in US (from the vendor catalogue)" in finding.message
        assert ("catalogue", "mailchimp", "memory") == (
            finding.evidence["vendor_country_source"],
            finding.evidence["catalogue_entry"],
            finding.evidence["catalogue_source"],
        )
        assert "check it and declare vendor_country" in finding.evidence["note"]


def practice(**backups: object) -> dict[str, object]:
    """An entry whose backups record what is given (and nothing else of the practice)."""
    return minimal("crm", backups={"regions": ["aws:eu-west-1"], "retention": "P30D", **backups})


class TestBackupPractice:
    def test_generations_make_the_effective_retention(self) -> None:
        """A yearly generation kept seven years outlives data kept three: the longest of the
        retention and the generations is what backup-retention-exceeds compares."""
        generations = {"daily": "P7D", "weekly": "P5W", "monthly": "P12M", "yearly": "P7Y"}
        entry = minimal(
            "crm",
            retention="P3Y",
            backups={"regions": ["IE"], "retention": "P30D", "generations": generations},
        )

        (finding,) = [f for f in audit([entry]) if f.rule == "backup-retention-exceeds"]

        assert "kept for P7Y (the yearly generation)" in finding.message
        assert "lives on in the backups for up to P7Y" in finding.message
        assert ("P7Y", "generation yearly", "P30D") == (
            finding.evidence["effective_retention"],
            finding.evidence["longest"],
            finding.evidence["backup_retention"],
        )

    def test_generations_within_the_data_retention_are_fine(self) -> None:
        """Generations no longer than the data's retention raise nothing, even without a
        `retention` of their own; they count as backup information."""
        generations = {"daily": "P7D", "monthly": "P12M"}
        entry = minimal(
            "crm", retention="P1Y", backups={"regions": ["IE"], "generations": generations}
        )
        alone = minimal("mail", retention="P1Y", backups={"generations": {"weekly": "P5W"}})

        assert [] == audit([entry, alone])

    def test_the_declared_retention_still_counts_next_to_generations(self) -> None:
        """A retention longer than every generation is the effective retention."""
        entry = minimal(
            "crm",
            retention="P1Y",
            backups={"regions": ["IE"], "retention": "P2Y", "generations": {"daily": "P7D"}},
        )

        (finding,) = [f for f in audit([entry]) if f.rule == "backup-retention-exceeds"]

        assert "kept for P2Y, longer" in finding.message
        assert "retention" == finding.evidence["longest"]

    def test_a_recent_restore_test_and_review_raise_nothing(self) -> None:
        """Tested and reviewed within twelve months of the audit date: clean."""
        entry = practice(
            restore_tested="2026-05-04", documented={"at": "wiki", "reviewed": "2026-02-01"}
        )

        assert [] == audit([entry], unrecorded=True)

    def test_a_restore_test_older_than_twelve_months_is_a_warning(self) -> None:
        """Twelve months to the day is still recent; a day more is a warning."""
        documented = {"at": "wiki", "reviewed": "2026-02-01"}
        on_the_day = practice(restore_tested="2025-11-22", documented=documented)
        day_late = practice(restore_tested="2025-11-21", documented=documented)

        assert [] == audit([on_the_day], unrecorded=True)
        (finding,) = audit([day_late], unrecorded=True)
        assert ("backup-restore-untested", "warning", "Art. 32(1)(c), (d)") == (
            finding.rule,
            finding.severity.value,
            finding.article,
        )
        assert "was on 2025-11-21, more than P12M before 2026-11-22" in finding.message
        assert ("2025-11-21", "2026-11-21") == (
            finding.evidence["restore_tested"],
            finding.evidence["due"],
        )

    def test_no_restore_test_on_record_is_info(self) -> None:
        """No restore test recorded, or one dated after the audit date: info, never fine."""
        documented = {"at": "wiki", "reviewed": "2026-02-01"}
        never = practice(documented=documented)
        later = practice(restore_tested="2026-12-01", documented=documented)
        later["id"] = "mail"

        findings = audit([never, later], unrecorded=True)

        assert [("crm", "info"), ("mail", "info")] == sorted(
            (f.integration, f.severity.value) for f in findings
        )
        assert {"backup-restore-untested"} == {f.rule for f in findings}
        later_finding = next(f for f in findings if f.integration == "mail")
        assert "dated 2026-12-01, after 2026-11-22" in later_finding.message
        assert [] == audit([never, later])  # nothing at warning level

    def test_stale_documentation_is_a_warning_and_none_is_info(self) -> None:
        """A review older than twelve months is a warning; no documentation recorded, info."""
        stale = practice(
            restore_tested="2026-05-04",
            documented={"at": "https://wiki.example/backup", "reviewed": "2025-01-31"},
        )
        absent = minimal(
            "mail", backups={"regions": ["aws:eu-west-1"], "restore_tested": "2026-05-04"}
        )

        findings = audit([stale, absent], unrecorded=True)

        assert [
            ("crm", "backup-documentation-stale", "warning"),
            ("mail", "backup-documentation-stale", "info"),
        ] == sorted((f.integration, f.rule, f.severity.value) for f in findings)
        warning = next(f for f in findings if f.integration == "crm")
        assert "(https://wiki.example/backup) was last reviewed on 2025-01-31" in warning.message
        assert "Art. 24(1)" == warning.article

    def test_the_periods_are_configurable(self) -> None:
        """With six-month periods, a test and a review from May are stale in November."""
        entry = practice(
            restore_tested="2026-05-04", documented={"at": "wiki", "reviewed": "2026-05-04"}
        )
        six_months = BackupChecks(parse_duration("P6M"), parse_duration("P6M"))

        assert [] == audit([entry])
        assert [
            ("backup-documentation-stale", "warning"),
            ("backup-restore-untested", "warning"),
        ] == sorted((f.rule, f.severity.value) for f in audit([entry], checks=six_months))

    def test_undocumented_backups_are_left_to_backup_undocumented(self) -> None:
        """No backup information at all: backup-undocumented only, no info findings on top."""
        entry = minimal("crm")
        del entry["backups"]

        assert [("backup-undocumented", None, None)] == rules_of(audit([entry], unrecorded=True))

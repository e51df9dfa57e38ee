"""Every rule with a passing and a failing case, on the pure core (observations given as data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import yaml

from auditor.core.model import Facet, Finding, Location, Observation, Resolution, Severity
from auditor.core.results import edge_reason
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

"""Inventory loading and validation: every problem named by file, integration, key and line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.inventory import load_inventory, parse_inventory
from auditor.core.yamlsource import parse_yaml
from tests.helpers import integrations_from, minimal, shipped_policies


def issues_for(text: str) -> list[Issue]:
    _, issues = parse_inventory(parse_yaml(text, "inv.yaml"), shipped_policies())
    return issues


def dump(*entries: dict[str, object]) -> str:
    return yaml.safe_dump({"integrations": list(entries)}, sort_keys=False)


class TestValid:
    def test_equal_records_of_a_file_are_one_object(self) -> None:
        """A large inventory repeats its transfer records, backups and places: each equal one is
        held once (they are immutable), an unequal one apart."""
        scc = {"safeguards": ["scc"]}
        backups = {"regions": ["aws:eu-west-1"], "retention": "P30D"}
        [one, two, three] = integrations_from(
            dump(
                minimal("one", hosting=["DE"], transfer=scc, backups=backups),
                minimal("two", hosting=["DE"], transfer=scc, backups=backups),
                minimal("three", hosting=["FR"], transfer={"safeguards": ["bcr"]}),
            )
        )

        assert one.transfer is two.transfer and one.transfer != three.transfer
        assert one.backups is two.backups and one.hosting is two.hosting
        assert one.data_categories is two.data_categories is three.data_categories
        assert three.transfer.safeguards == frozenset({"bcr"}) and three.hosting[0].spec == "FR"

    def test_design_example_loads(self) -> None:
        """The inventory example of the design document is valid and fully typed."""
        [mailchimp, aws] = integrations_from(
            """
            integrations:
              - id: mailchimp
                name: Mailchimp
                vendor: Intuit Mailchimp
                category: email-marketing
                role: processor
                data_categories: [contact, behavioural]
                endpoints: [us1.api.mailchimp.com]
                hosting: [US]
                support: [US]
                backups:
                  regions: [aws:us-west-2]
                  retention: P10Y
                retention: P2Y
                subprocessors: [aws]
                transfer:
                  safeguards: [scc]
                  dpf_certified: false
                  consent_purpose: null
                contract:
                  dpa_signed: 2024-03-01
                  vendor_may_use_data: false
                  data_ownership: customer
              - id: aws
                name: AWS
                category: infrastructure
                role: processor
                data_categories: []
            """
        )

        assert ("US",) == tuple(p.country for p in mailchimp.hosting)
        assert mailchimp.backups is not None
        assert ("aws:us-west-2", "US") == (
            mailchimp.backups.regions[0].spec,
            mailchimp.backups.regions[0].country,
        )
        assert 120 == mailchimp.backups.retention.total_months  # type: ignore[union-attr]
        assert frozenset({"scc"}) == mailchimp.transfer.safeguards
        assert "2024-03-01" == str(mailchimp.contract.dpa_signed)
        assert "aws" == aws.id

    @pytest.mark.parametrize(
        ("spec", "normalised", "country"),
        [
            ("aws:eu-central-2", "aws:eu-central-2", "CH"),
            ("aws:eu-west-2", "aws:eu-west-2", "GB"),
            ("gcp:europe-west3", "gcp:europe-west3", "DE"),
            ("azure:westeurope", "azure:westeurope", "NL"),
            ("azure:germanywc", "azure:germanywestcentral", "DE"),
            ("azure:germanywestcentral", "azure:germanywestcentral", "DE"),
            ("oci:eu-jovanovac-1", "oci:eu-jovanovac-1", "RS"),
            ("do:fra1", "do:fra1", "DE"),
            ("hetzner:hel1", "hetzner:hel1", "FI"),
            ("ovh:gra", "ovh:gra", "FR"),
            ("ovh:gra11", "ovh:gra", "FR"),
            ("aws:me-west-1", "aws:me-west-1", "SA"),
            ("aws:sa-west-1", "aws:sa-west-1", "CL"),
            ("aws:us-east-1-qro-1", "aws:us-east-1-qro-1", "MX"),
            ("aws:us-east-1-qro-1a", "aws:us-east-1-qro-1", "MX"),
            ("aws:eu-central-1-waw-1", "aws:eu-central-1-waw-1", "PL"),
            ("aws:eu-west-2-wl1-lon-wlz-1", "aws:eu-west-2-wl1-lon-wlz-1", "GB"),
            ("aws:eu-central-1a", "aws:eu-central-1", "DE"),
            ("gcp:europe-west3-a", "gcp:europe-west3", "DE"),
            ("gcp:EUROPE-WEST2-B", "gcp:europe-west2", "GB"),
            ("ovh:US-EAST-VA-1", "ovh:us-east-va", "US"),
            ("ovh:EU-WEST-PAR", "ovh:par", "FR"),
            ("ovh:eu-west-par-b", "ovh:par", "FR"),
            ("ovh:EU-WEST-LZ-LUX-A", "ovh:eu-west-lz-lux", "LU"),
            ("ovh:EU-WEST-LZ-ZRH-A", "ovh:eu-west-lz-zrh", "CH"),
            ("UK", "GB", "GB"),
            ("EL", "GR", "GR"),
        ],
    )
    def test_places_resolve_to_countries(self, spec: str, normalised: str, country: str) -> None:
        """Countries, both Azure name forms and every provider prefix resolve, with the traps right."""
        [integration] = integrations_from(dump(minimal(hosting=[spec])))

        assert (normalised, country) == (
            integration.hosting[0].spec,
            integration.hosting[0].country,
        )

    def test_local_zone_place_keeps_its_region_and_zone(self) -> None:
        """A Local Zone is its own place, in its own country, with its parent region kept."""
        [integration] = integrations_from(dump(minimal(hosting=["aws:us-east-1-bue-1"])))
        place = integration.hosting[0]

        assert ("AR", "aws", "us-east-1", "us-east-1-bue-1") == (
            place.country,
            place.provider,
            place.region,
            place.zone,
        )

    def test_vendor_country_and_backups_as_they_are_run(self) -> None:
        """The design's vendor_country and backup keys load typed; `UK` is read as GB."""
        backups = {
            "regions": ["aws:us-west-2"],
            "retention": "P10Y",
            "type": "incremental",
            "generations": {"daily": "P7D", "weekly": "P5W", "monthly": "P12M"},
            "restore_tested": "2026-05-04",
            "documented": {"at": "https://wiki.example/backup", "reviewed": "2026-02-01"},
        }
        [mail, shop] = integrations_from(
            dump(minimal("mail", backups=backups), minimal("shop", vendor_country="UK"))
        )

        assert mail.backups is not None
        assert ("DE", "inventory") == (mail.vendor_country.code, mail.vendor_country.source)  # type: ignore[union-attr]
        assert ("incremental", ("daily", "weekly", "monthly"), "2026-05-04") == (
            mail.backups.kind,
            tuple(name for name, _ in mail.backups.generations),
            str(mail.backups.restore_tested),
        )
        assert mail.backups.documented is not None
        assert ("https://wiki.example/backup", "2026-02-01") == (
            mail.backups.documented.at,
            str(mail.backups.documented.reviewed),
        )
        assert "GB" == shop.vendor_country.code  # type: ignore[union-attr]

    def test_effective_retention_is_the_longest_of_retention_and_generations(self) -> None:
        """Months and days are compared on the calendar from the anchor day; the declared
        retention wins a tie."""
        generations = {"daily": "P30D", "monthly": "P1M"}
        [one, two] = integrations_from(
            dump(
                minimal("one", backups={"retention": "P1M", "generations": generations}),
                minimal("two", backups={"generations": {"weekly": "P5W", "monthly": "P1M"}}),
            )
        )
        assert one.backups is not None and two.backups is not None

        february = one.backups.effective_retention(date(2026, 2, 1))
        january = one.backups.effective_retention(date(2026, 1, 1))
        assert ("P30D", "generation daily") == (str(february[0]), february[1])  # type: ignore[index]
        assert ("P1M", "retention") == (str(january[0]), january[1])  # type: ignore[index]
        assert ("P5W", "generation weekly") == tuple(
            map(str, two.backups.effective_retention(date(2026, 1, 1)))  # type: ignore[arg-type]
        )

    def test_directory_of_files_loads_together(self, tmp_path: Path) -> None:
        """Sub-processor references may point into another file of the inventory."""
        (tmp_path / "a.yaml").write_text(dump(minimal("crm", subprocessors=["cloud"])))
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.yml").write_text(dump(minimal("cloud")))

        found = load_inventory([tmp_path], shipped_policies())

        assert ["crm", "cloud"] == [i.id for i in found]


class TestInvalid:
    def test_unknown_key_names_file_integration_key_and_line(self) -> None:
        """A typo'd key is an error pointing at its line."""
        text = dump(minimal("crm"), minimal("mail", hostng=["DE"]))

        [issue] = issues_for(text)

        assert (
            "inv.yaml",
            "integration 'mail'",
            "hostng",
            "unknown key (did you mean 'hosting'?)",
        ) == (
            issue.source,
            issue.entry,
            issue.field,
            issue.message,
        )
        assert issue.line is not None
        assert "hostng" in text.splitlines()[issue.line - 1]

    @pytest.mark.parametrize(
        ("override", "field", "fragment"),
        [
            ({"hosting": ["Germany"]}, "hosting[0]", "'Germany' is not a country code"),
            ({"hosting": ["de"]}, "hosting[0]", "unknown country code 'de' (did you mean 'DE'?)"),
            ({"hosting": ["aws:eu-central-9"]}, "hosting[0]", "unknown aws region 'eu-central-9'"),
            ({"hosting": ["ibm:eu-de"]}, "hosting[0]", "unknown cloud provider 'ibm'"),
            ({"support": ["XX"]}, "support[0]", "unknown country code 'XX'"),
            ({"retention": "2 years"}, "retention", "not an ISO 8601 duration"),
            (
                {"backups": {"regions": ["aws:nowhere-1"]}},
                "backups.regions[0]",
                "unknown aws region",
            ),
            ({"hosting": ["aws:us-east-1-xyz-1"]}, "hosting[0]", "unknown aws region"),
            ({"hosting": ["gcp:europe-west3-ab"]}, "hosting[0]", "unknown gcp region"),
            ({"hosting": ["ovh:EU-WEST-LZ-XYZ-A"]}, "hosting[0]", "unknown ovh region"),
            ({"hosting": ["aws:us-south-1"]}, "hosting[0]", "left out of the region table"),
            ({"backups": {"retention": "P2"}}, "backups.retention", "not an ISO 8601 duration"),
            ({"contract": {"dpa_signed": "2024-13-01"}}, "contract.dpa_signed", "date"),
            ({"category": "crm-ish"}, "category", "expected one of 'crm', 'cdp'"),
            ({"data_categories": ["gossip"]}, "data_categories[0]", "got 'gossip'"),
            (
                {"transfer": {"safeguards": ["pinky-promise"]}},
                "transfer.safeguards[0]",
                "expected one of 'scc' or 'bcr', got 'pinky-promise'",
            ),
            ({"endpoints": ["not a host"]}, "endpoints[0]", "not a valid hostname"),
            ({"id": "Has Spaces"}, "id", "slug"),
            ({"vendor_country": "Germany"}, "vendor_country", "not an ISO 3166-1 alpha-2"),
            ({"vendor_country": "EU"}, "vendor_country", "not an ISO 3166-1 alpha-2"),
            ({"backups": {"type": "nightly"}}, "backups.type", "expected one of 'full'"),
            (
                {"backups": {"generations": {"daily": "7 days"}}},
                "backups.generations.daily",
                "not an ISO 8601 duration",
            ),
            ({"backups": {"generations": {}}}, "backups.generations", "at least one generation"),
            (
                {"backups": {"generations": {"Daily Copy": "P7D"}}},
                "backups.generations",
                "lower-case words",
            ),
            ({"backups": {"restore_tested": "last week"}}, "backups.restore_tested", "date"),
            (
                {"backups": {"documented": {"at": "wiki"}}},
                "backups.documented.reviewed",
                "required key is missing",
            ),
            (
                {"backups": {"documented": {"at": "", "reviewed": "2026-01-01"}}},
                "backups.documented.at",
                "at least 1 character",
            ),
            (
                {"backups": {"documented": {"at": "w", "url": "w", "reviewed": "2026-01-01"}}},
                "backups.documented.url",
                "unknown key",
            ),
        ],
    )
    def test_bad_values_are_named(
        self, override: dict[str, object], field: str, fragment: str
    ) -> None:
        """Bad countries, regions, durations, dates and vocabulary are errors naming the key."""
        [issue] = issues_for(dump(minimal("crm", **override)))

        assert field == issue.field
        assert fragment in issue.message

    def test_missing_required_key(self) -> None:
        """A missing role is reported as such."""
        entry = minimal("crm")
        del entry["role"]

        [issue] = issues_for(dump(entry))

        assert ("role", "required key is missing") == (issue.field, issue.message)

    def test_every_error_in_every_file_is_reported(self, tmp_path: Path) -> None:
        """Problems in several files and integrations come back together, with references checked."""
        (tmp_path / "a.yaml").write_text(
            dump(minimal("crm", subprocessors=["ghost"]), minimal("crm"))
        )
        (tmp_path / "b.yaml").write_text(dump(minimal("mail", hosting=["ZZ"])))
        (tmp_path / "c.yaml").write_text("integrations: [\n")

        with pytest.raises(InvalidInputError) as caught:
            load_inventory([tmp_path], shipped_policies(), display=tmp_path)

        messages = [str(issue) for issue in caught.value.issues]
        assert any(m.startswith("b.yaml:") and "'ZZ'" in m for m in messages)
        assert any(m.startswith("c.yaml:") and "not valid YAML" in m for m in messages)
        assert any("duplicate id" in m for m in messages)
        assert any("subprocessors[0]" in m and "unknown integration 'ghost'" in m for m in messages)

    def test_missing_path_is_an_error(self, tmp_path: Path) -> None:
        """A configured inventory path that does not exist is named."""
        with pytest.raises(InvalidInputError, match="does not exist"):
            load_inventory([tmp_path / "nope.yaml"], shipped_policies())


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.dates(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        junk,
        st.fixed_dictionaries(
            {
                "integrations": st.lists(
                    st.fixed_dictionaries({}, optional=dict.fromkeys(minimal(), junk)), max_size=3
                )
            }
        ),
    )
)
def test_junk_only_ever_produces_validation_issues(data: object) -> None:
    """Whatever a YAML file holds, loading it yields Issues, never another exception."""
    text = yaml.safe_dump(data)

    _, issues = parse_inventory(parse_yaml(text, "junk.yaml"), shipped_policies())

    assert all(isinstance(issue, Issue) and issue.source == "junk.yaml" for issue in issues)

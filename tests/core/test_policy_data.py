"""The shipped policy data is well-formed, uses only ISO codes, and pins the facts that matter."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.core.iso3166 import COUNTRY_CODES

POLICIES = Path(__file__).resolve().parents[2] / "policies"
PROVIDERS = ("aws", "gcp", "azure", "oci", "do", "hetzner", "ovh")
UPDATED = date(2026, 11, 22)
EEA_UPDATED = date(2026, 12, 3)
EU27 = ("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE", "IT LV LT LU MT NL PL PT RO SK SI ES SE")
# The Commission's list as at the update date: 16 countries (and one organisation).
ADEQUATE_2026 = ("AD AR BR CA CH FO GB GG", "IL IM JE JP KR NZ US UY")


@cache
def load(name: str) -> Any:
    """Return the parsed YAML file `name` under policies/, the way the auditor reads it."""
    return yaml.safe_load((POLICIES / name).read_text(encoding="utf-8"))


def region_file(provider: str) -> Any:
    return load(f"regions/{provider}.yaml")


def all_files() -> list[str]:
    return sorted(str(p.relative_to(POLICIES)) for p in POLICIES.rglob("*.yaml"))


def in_force(decision: dict[str, Any], day: date) -> bool:
    """Apply the documented semantics: adopted inclusive, ended exclusive, expires inclusive."""
    if day < decision["adopted"]:
        return False
    if decision["ended"] is not None and day >= decision["ended"]:
        return False
    return decision["expires"] is None or day <= decision["expires"]


def decisions_for(country: str, day: date) -> list[str]:
    return [
        d["id"]
        for d in load("adequacy.yaml")["decisions"]
        if d.get("country") == country and in_force(d, day)
    ]


def eea_members_on(day: date) -> set[str]:
    members = load("eea.yaml")["members"]
    return {
        code
        for code, m in members.items()
        if m.get("since", date.min) <= day <= m.get("until", date.max)
    }


def country_mentions() -> list[tuple[str, Any]]:
    """Every value the files use as a country code, with where it was found."""
    eea = load("eea.yaml")
    found: list[tuple[str, Any]] = [(f"eea members {c!r}", c) for c in eea["members"]]
    for code, territory in eea["territories"].items():
        found += [
            (f"eea territory {code!r}", code),
            (f"eea part_of {code!r}", territory["part_of"]),
        ]
    found += [(f"eea alias {alias!r}", target) for alias, target in eea["aliases"].items()]
    for d in load("adequacy.yaml")["decisions"]:
        if "country" in d:
            found.append((f"decision {d['id']}", d["country"]))
    for provider in PROVIDERS:
        for key, region in region_file(provider)["regions"].items():
            found.append((f"{provider}:{key}", region["country"]))
        for key, zone in region_file(provider).get("zones", {}).items():
            found.append((f"{provider}:{key}", zone["country"]))
    return found


# ------------------------------------------------------------------ every file


def test_policy_directory_holds_the_expected_files() -> None:
    """policies/ ships the EEA, adequacy and edge files and one region file per provider."""
    expected = {"eea.yaml", "adequacy.yaml", "edges.yaml"} | {
        f"regions/{p}.yaml" for p in PROVIDERS
    }
    assert expected <= set(all_files())


@pytest.mark.parametrize("name", all_files())
def test_every_file_names_its_title_date_and_sources(name: str) -> None:
    """Each policy file carries a title, the date it was last checked, and its sources."""
    doc = load(name)
    assert isinstance(doc.get("title"), str) and doc["title"].strip()
    assert isinstance(doc.get("updated"), date)
    sources = doc.get("sources")
    assert isinstance(sources, list) and sources
    assert all(isinstance(s, str) and s.strip() for s in sources)


@pytest.mark.parametrize("name", ["edges.yaml", *(f"regions/{p}.yaml" for p in PROVIDERS)])
def test_transfer_data_was_checked_on_the_update_date(name: str) -> None:
    """The EEA, adequacy, region and edge files were all last checked on or after 2026-11-22."""
    assert load(name)["updated"] >= UPDATED


@pytest.mark.parametrize("name", ["eea.yaml", "adequacy.yaml"])
def test_eea_and_adequacy_were_rechecked_with_their_citations(name: str) -> None:
    """The EEA and adequacy files were last checked on 2026-12-03 (territory dates, citations)."""
    assert load(name)["updated"] == EEA_UPDATED


def test_every_country_code_is_an_official_iso_code() -> None:
    """No file uses a non-ISO code such as EL, UK or EU, or a YAML-mangled one (NO -> false)."""
    bad = [(where, code) for where, code in country_mentions() if code not in COUNTRY_CODES]
    assert bad == []


def test_iso_code_list_has_the_249_official_codes() -> None:
    """The code list is complete and holds only two-letter upper-case codes."""
    assert len(COUNTRY_CODES) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in COUNTRY_CODES)
    assert {"GB", "GR", "NO", "RS", "SJ", "AX"} <= COUNTRY_CODES
    assert not {"UK", "EL", "EU", "XK", "AN"} & COUNTRY_CODES


# ------------------------------------------------------------------ EEA


def test_eea_has_thirty_members_on_the_update_date() -> None:
    """On 2026-11-22 the EEA is the EU-27 plus Iceland, Liechtenstein and Norway."""
    eu27 = {code for row in EU27 for code in row.split()}
    assert eea_members_on(UPDATED) == eu27 | {"IS", "LI", "NO"}


def test_switzerland_is_not_in_the_eea() -> None:
    """Switzerland is in EFTA but not the EEA; it relies on an adequacy decision instead."""
    assert "CH" not in load("eea.yaml")["members"]


def test_united_kingdom_left_at_the_end_of_the_transition_period() -> None:
    """GB counts as EEA up to 2020-12-31 inclusive and not from 2021-01-01."""
    assert "GB" in eea_members_on(date(2020, 12, 31))
    assert "GB" not in eea_members_on(date(2021, 1, 1))


def test_croatia_counts_from_its_accession() -> None:
    """HR joined on 2013-07-01, and not a day earlier."""
    assert "HR" not in eea_members_on(date(2013, 6, 30))
    assert "HR" in eea_members_on(date(2013, 7, 1))


def test_membership_dates_are_dates_in_order() -> None:
    """since/until are YAML dates (not strings), and since precedes until."""
    for code, member in load("eea.yaml")["members"].items():
        assert set(member) <= {"name", "since", "until", "note"}, code
        for key in ("since", "until"):
            assert isinstance(member.get(key, date.min), date), (code, key)
        assert member.get("since", date.min) < member.get("until", date.max), code


def test_territories_belong_to_members_in_force() -> None:
    """Each undated territory is part of a current member state; AX and the French regions map."""
    eea = load("eea.yaml")
    territories = eea["territories"]
    assert {"AX", "GF", "GP", "MQ", "RE", "YT", "MF"} <= set(territories)
    assert territories["AX"]["part_of"] == "FI"
    assert all(territories[c]["part_of"] == "FR" for c in ("GF", "GP", "MQ", "RE", "YT", "MF"))
    current = eea_members_on(UPDATED)
    assert all(t["part_of"] in current for t in territories.values() if "until" not in t)
    assert all(t["part_of"] in eea["members"] for t in territories.values())
    assert not set(territories) & set(eea["members"])


def test_territory_dates_are_dates_in_order() -> None:
    """Territories use the members' keys; since/until are YAML dates, since before until."""
    for code, territory in load("eea.yaml")["territories"].items():
        assert set(territory) <= {"part_of", "name", "since", "until", "note"}, code
        for key in ("since", "until"):
            assert isinstance(territory.get(key, date.min), date), (code, key)
        assert territory.get("since", date.min) < territory.get("until", date.max), code


def test_dated_territories_carry_their_dates() -> None:
    """Mayotte from 2014, Saint-Barthelemy until 2011, Gibraltar until the end of 2020."""
    territories = load("eea.yaml")["territories"]
    assert territories["YT"]["since"] == date(2014, 1, 1)
    assert territories["BL"] == territories["BL"] | {"part_of": "FR", "until": date(2011, 12, 31)}
    assert territories["GI"] == territories["GI"] | {"part_of": "GB", "until": date(2020, 12, 31)}
    assert "since" not in territories["MF"] and "until" not in territories["MF"]


def test_non_eu_territories_are_neither_members_nor_territories() -> None:
    """Greenland, the Faroes, French OCTs and Svalbard are outside the EEA; GI and BL only were."""
    eea = load("eea.yaml")
    territories = eea["territories"]
    inside = set(eea["members"]) | set(territories)
    assert not {"GL", "FO", "PM", "NC", "PF", "WF", "TF", "SJ"} & inside
    assert all("until" in territories[c] and c not in eea["members"] for c in ("GI", "BL"))


def test_eu_document_codes_alias_to_iso() -> None:
    """EL means Greece and UK means the United Kingdom."""
    assert load("eea.yaml")["aliases"] == {"EL": "GR", "UK": "GB"}


# ------------------------------------------------------------------ adequacy


def decisions() -> list[dict[str, Any]]:
    return list(load("adequacy.yaml")["decisions"])


def test_decision_ids_are_unique() -> None:
    """Findings cite decisions by id, so no id appears twice."""
    ids = [d["id"] for d in decisions()]
    assert len(ids) == len(set(ids))


def test_each_decision_names_exactly_one_country_or_organisation() -> None:
    """A decision covers a country or an international organisation, never both or neither."""
    organisations = load("adequacy.yaml")["organisations"]
    for d in decisions():
        assert ("country" in d) != ("organisation" in d), d["id"]
        if "organisation" in d:
            assert d["organisation"] in organisations, d["id"]


def test_each_decision_has_the_documented_fields() -> None:
    """Every decision has the same keys, dated with YAML dates and a known scope."""
    required = {"id", "name", "instrument", "adopted", "ended", "expires", "scope", "source"}
    for d in decisions():
        assert required <= set(d), d["id"]
        optional = {
            "country",
            "organisation",
            "scope_note",
            "framework",
            "covers",
            "commission_document",
            "official_journal",
        }
        assert set(d) - required <= optional, d["id"]
        assert isinstance(d["adopted"], date), d["id"]
        assert d["scope"] in {"whole", "certified", "limited"}, d["id"]
        if d["scope"] != "whole":
            assert isinstance(d.get("scope_note"), str) and d["scope_note"], d["id"]
        assert str(d["source"]).startswith("https://"), d["id"]


def test_end_and_expiry_follow_adoption() -> None:
    """A decision ends (exclusive) after its adoption, and expires on or after it."""
    for d in decisions():
        if d["ended"] is not None:
            assert isinstance(d["ended"], date) and d["adopted"] < d["ended"], d["id"]
        if d["expires"] is not None:
            assert isinstance(d["expires"], date) and d["adopted"] <= d["expires"], d["id"]


def test_adequate_places_on_the_update_date_match_the_commission_list() -> None:
    """16 countries and the European Patent Organisation are adequate on 2026-11-22."""
    current = [d for d in decisions() if in_force(d, UPDATED)]
    countries = {d["country"] for d in current if "country" in d}
    organisations = {d["organisation"] for d in current if "organisation" in d}
    assert countries == {code for row in ADEQUATE_2026 for code in row.split()}
    assert organisations == {"european-patent-organisation"}


def test_adoption_dates_are_those_of_the_instruments() -> None:
    """Adoption dates are the dates of the decisions, not of publication or announcement."""
    adopted = {d["country"]: d["adopted"] for d in decisions() if "country" in d}
    expected = {
        "CA": date(2001, 12, 20),
        "NZ": date(2012, 12, 19),
        "JP": date(2019, 1, 23),
        "KR": date(2021, 12, 17),
        "IL": date(2011, 1, 31),
        "AR": date(2003, 6, 30),
        "GG": date(2003, 11, 21),
        "IM": date(2004, 4, 28),
        "JE": date(2008, 5, 8),
        "FO": date(2010, 3, 5),
        "AD": date(2010, 10, 19),
        "CH": date(2000, 7, 26),
        "UY": date(2012, 8, 21),
    }
    assert expected == {country: adopted[country] for country in expected}


def test_us_frameworks_cover_only_certified_organisations() -> None:
    """Safe Harbour, Privacy Shield and the DPF all have scope `certified`."""
    us = [d for d in decisions() if d.get("country") == "US"]
    assert {d["id"] for d in us} == {"us-safe-harbour", "us-privacy-shield", "us-dpf"}
    assert all(d["scope"] == "certified" for d in us)


@pytest.mark.parametrize(
    "day",
    [date(2015, 10, 6), date(2016, 7, 11), date(2020, 7, 16), date(2022, 1, 1), date(2023, 7, 9)],
)
def test_no_us_decision_in_force_between_the_frameworks(day: date) -> None:
    """After Schrems I until Privacy Shield, and after Schrems II until the DPF, the US is uncovered."""
    assert decisions_for("US", day) == []


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2015, 10, 5), "us-safe-harbour"),
        (date(2016, 7, 12), "us-privacy-shield"),
        (date(2020, 7, 15), "us-privacy-shield"),
        (date(2023, 7, 10), "us-dpf"),
        (UPDATED, "us-dpf"),
    ],
)
def test_us_framework_in_force_at_each_edge(day: date, expected: str) -> None:
    """Each US framework applies from its adoption up to the day before its invalidation."""
    assert decisions_for("US", day) == [expected]


def test_brazil_is_adequate_from_26_january_2026() -> None:
    """Brazil's decision applies from 2026-01-26, not the day before; scope limited to the LGPD."""
    assert decisions_for("BR", date(2026, 1, 25)) == []
    assert decisions_for("BR", date(2026, 1, 26)) == ["br-2026"]
    (brazil,) = [d for d in decisions() if d["id"] == "br-2026"]
    assert brazil["scope"] == "limited"


@pytest.mark.parametrize("country", ["CA", "JP", "IL", "KR", "BR"])
def test_partial_decisions_are_limited_in_scope(country: str) -> None:
    """Canada, Japan, Israel, Korea and Brazil are adequate only for some recipients."""
    scopes = {d["scope"] for d in decisions() if d.get("country") == country}
    assert scopes == {"limited"}


def test_united_kingdom_has_no_gap_after_brexit() -> None:
    """From 2021 the TCA bridge, the 2021 decision and its renewal cover the UK without a gap."""
    for day in (date(2021, 1, 1), date(2021, 6, 27)):
        assert decisions_for("GB", day) == ["uk-tca-bridge"]
    assert decisions_for("GB", date(2021, 6, 28)) == ["uk-2021"]
    assert decisions_for("GB", date(2025, 12, 20)) == ["uk-2021", "uk-2025"]
    assert decisions_for("GB", date(2025, 12, 28)) == ["uk-2025"]


def test_united_kingdom_renewal_expires_after_27_december_2031() -> None:
    """The renewed UK decision is in force on 2031-12-27 (inclusive) and not on 2031-12-28."""
    assert decisions_for("GB", date(2031, 12, 27)) == ["uk-2025"]
    assert decisions_for("GB", date(2031, 12, 28)) == []


def test_european_patent_organisation_from_15_july_2025() -> None:
    """The EPO decision is an organisation's, in force from 2025-07-15."""
    (epo,) = [d for d in decisions() if d.get("organisation") == "european-patent-organisation"]
    assert epo["adopted"] == date(2025, 7, 15)
    assert not in_force(epo, date(2025, 7, 14))
    assert in_force(epo, UPDATED)


# ------------------------------------------------------------------ cloud regions


@pytest.mark.parametrize(
    ("provider", "region", "country"),
    [
        ("aws", "eu-central-2", "CH"),
        ("aws", "eu-west-2", "GB"),
        ("aws", "eu-central-1", "DE"),
        ("aws", "eusc-de-east-1", "DE"),
        ("gcp", "europe-west2", "GB"),
        ("gcp", "europe-west6", "CH"),
        ("gcp", "europe-west3", "DE"),
        ("oci", "eu-jovanovac-1", "RS"),
        ("oci", "eu-zurich-1", "CH"),
        ("oci", "uk-london-1", "GB"),
        ("azure", "uksouth", "GB"),
        ("azure", "switzerlandnorth", "CH"),
        ("azure", "norwayeast", "NO"),
        ("azure", "westeurope", "NL"),
        ("do", "lon1", "GB"),
        ("hetzner", "hel1", "FI"),
        ("ovh", "uk", "GB"),
    ],
)
def test_region_names_do_not_reveal_the_jurisdiction(
    provider: str, region: str, country: str
) -> None:
    """Regions whose prefix suggests the EU (eu-, europe-) can be in CH, GB or RS."""
    assert region_file(provider)["regions"][region]["country"] == country


@pytest.mark.parametrize("provider", PROVIDERS)
def test_region_files_are_keyed_by_provider_and_lower_case_names(provider: str) -> None:
    """Each region file names its provider, and every region has a country and a location."""
    doc = region_file(provider)
    assert doc["provider"] == provider
    assert isinstance(doc["name"], str) and doc["name"]
    for key, region in doc["regions"].items():
        assert key == key.lower() and key.strip() == key and " " not in key, key
        assert set(region) <= {"country", "location", "aliases"}, key
        assert isinstance(region["location"], str) and region["location"], key


@pytest.mark.parametrize(
    ("provider", "region"),
    [
        ("gcp", "europe-west15"),
        ("aws", "us-south-1"),
        ("aws", "eu-isoe-west-1"),
    ],
)
def test_regions_of_unknown_location_are_left_out(provider: str, region: str) -> None:
    """A region whose country is not published is absent rather than guessed."""
    assert region not in region_file(provider)["regions"]


def test_oci_lists_every_region_of_its_range_file() -> None:
    """OCI's file has the 56 region keys of its public range file, and the SDK's others."""
    assert len(region_file("oci")["regions"]) >= 56


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("us-east-1-qro-1", "MX"),
        ("us-east-1-bue-1", "AR"),
        ("us-east-1-scl-1", "CL"),
        ("us-east-1-lim-1", "PE"),
        ("ap-southeast-1-bkk-1", "TH"),
        ("ap-southeast-1-mnl-1", "PH"),
        ("me-south-1-mct-1", "OM"),
        ("ap-northeast-1-tpe-1", "TW"),
        ("af-south-1-los-1", "NG"),
        ("eu-central-1-waw-1", "PL"),
        ("eu-north-1-cph-1", "DK"),
        ("eu-north-1-hel-1", "FI"),
        ("eu-central-1-ham-1", "DE"),
        ("eu-west-2-wl1-lon-wlz-1", "GB"),
        ("ca-central-1-wl1-yto-wlz-1", "CA"),
        ("ap-northeast-2-wl1-cjj-wlz-1", "KR"),
        ("eu-central-1-wl1-ber-wlz-1", "DE"),
    ],
)
def test_aws_zones_sit_where_aws_says_not_in_their_regions_country(zone: str, country: str) -> None:
    """A Local Zone's country is its own: Querétaro is MX though its region us-east-1 is US."""
    entry = region_file("aws")["zones"][zone]
    assert entry["country"] == country
    assert zone.startswith(entry["region"] + "-")
    assert entry["kind"] == ("wavelength-zone" if "-wlz-" in zone else "local-zone")


def test_gcp_restricted_us_regions_are_in_the_us() -> None:
    """us-central2, us-east7 and us-west8 appear in cloud.json and are mapped to the US."""
    regions = region_file("gcp")["regions"]
    assert {regions[r]["country"] for r in ("us-central2", "us-east7", "us-west8")} == {"US"}


def test_azure_aliases_are_unique_and_distinct_from_region_names() -> None:
    """A Service Tags short form maps to one region and never shadows a programmatic name."""
    regions = region_file("azure")["regions"]
    aliases = [a for region in regions.values() for a in region.get("aliases", [])]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(regions)
    assert all(a == a.lower() for a in aliases)


def test_azure_service_tag_short_forms_point_at_the_right_regions() -> None:
    """germanywc is germanywestcentral, centralfrance is francecentral, and so on."""
    by_alias = {
        alias: key
        for key, region in region_file("azure")["regions"].items()
        for alias in region.get("aliases", [])
    }
    assert by_alias["germanywc"] == "germanywestcentral"
    assert by_alias["germanyn"] == "germanynorth"
    assert by_alias["norwaye"] == "norwayeast"
    assert by_alias["norwayw"] == "norwaywest"
    assert by_alias["switzerlandn"] == "switzerlandnorth"
    assert by_alias["switzerlandw"] == "switzerlandwest"
    assert by_alias["centralfrance"] == "francecentral"
    assert by_alias["southfrance"] == "francesouth"
    assert by_alias["brazilse"] == "brazilsoutheast"
    assert by_alias["chilec"] == "chilecentral"


# ------------------------------------------------------------------ edges


def test_edge_cname_suffixes_are_bare_lower_case_domains() -> None:
    """Suffixes are lower case, without dots at either end, and name a network."""
    suffixes = load("edges.yaml")["cname_suffixes"]
    assert {"cloudfront.net", "akamaiedge.net", "fastly.net", "cdn.cloudflare.net"} <= set(suffixes)
    for suffix, network in suffixes.items():
        assert suffix == suffix.lower() and not suffix.startswith(".") and "." in suffix
        assert not suffix.endswith("."), suffix
        assert isinstance(network, str) and network, suffix


def test_edge_range_services_exclude_cloudfront_origin_facing() -> None:
    """Cloudflare ranges are all edges; of AWS only CloudFront and Global Accelerator are."""
    services = load("edges.yaml")["range_services"]
    assert services["cloudflare"] == ["*"]
    assert sorted(services["aws"]) == ["CLOUDFRONT", "GLOBALACCELERATOR"]
    assert all(isinstance(s, str) for listed in services.values() for s in listed)


def test_edge_asns_are_integers_naming_a_network() -> None:
    """ASNs are YAML integers in the 32-bit range, and the big CDNs are present."""
    asns = load("edges.yaml")["asns"]
    assert {13335, 54113, 20940, 16625} <= set(asns)
    for asn, network in asns.items():
        assert isinstance(asn, int) and 0 < asn < 2**32
        assert isinstance(network, str) and network
    # Networks that carry ordinary hosting as well must not be treated as edges.
    assert not {16509, 15169, 8075} & set(asns)


def test_catalogue_adequacy_scopes_name_limited_decisions() -> None:
    """A vendor's usual adequacy scope in the catalogue names a limited-scope decision."""
    limited = {d["id"] for d in decisions() if d["scope"] == "limited"}
    hinted = {
        scope
        for vendor in load("vendors.yaml")["vendors"]
        for scope in vendor.get("adequacy_scope", [])
    }
    assert hinted, "the catalogue records no usual scope at all"
    assert hinted <= limited


@pytest.mark.parametrize(
    ("ident", "document", "journal"),
    [
        ("ch-2000", "C(2000) 2304", "OJ L 215, 25.8.2000, p. 1"),
        ("ca-2001", "C(2001) 4539", "OJ L 2, 4.1.2002, p. 13"),
        ("uy-2012", "C(2012) 5704", "OJ L 227, 23.8.2012, p. 11"),
        ("br-2026", "C(2026) 373", "OJ L, 2026/179, 28.1.2026"),
        ("uk-2025", "C(2025) 8771", "OJ L, 2025/2574, 23.12.2025"),
        ("ar-2003", None, "OJ L 168, 5.7.2003, p. 19"),  # its OJ title names no document
        ("fo-2010", None, None),  # not verified: left out rather than guessed
    ],
)
def test_decisions_cite_their_document_and_journal(
    ident: str, document: str | None, journal: str | None
) -> None:
    """Verified Commission document numbers and OJ references are recorded; unverified ones are null."""
    (decision,) = [d for d in decisions() if d["id"] == ident]
    assert decision["commission_document"] == document
    assert decision["official_journal"] == journal


def test_uk_renewal_is_cited_by_its_official_journal_number() -> None:
    """The renewal is (EU) 2025/2574; the 2021 decision still ends on the extended sunset."""
    by_id = {d["id"]: d for d in decisions()}
    assert by_id["uk-2025"]["instrument"] == "Commission Implementing Decision (EU) 2025/2574"
    assert by_id["uk-2021"]["expires"] == date(2025, 12, 27)
    assert by_id["uk-2025"]["adopted"] == date(2025, 12, 19)


# ------------------------------------------------------------------ laws that reach vendors


def test_jurisdictions_name_the_us_laws_with_their_citations() -> None:
    """The US entry names the CLOUD Act, FISA Section 702 and E.O. 12333 with their citations."""
    us = {law["id"]: law for law in load("jurisdictions.yaml")["countries"]["US"]}

    assert {
        "us-cloud-act": "18 U.S.C. § 2713",
        "us-fisa-702": "50 U.S.C. § 1881a",
        "us-eo-12333": "46 FR 59941",
    } == {ident: law["citation"] for ident, law in us.items()}


def test_every_law_is_sourced_and_every_country_is_iso() -> None:
    """Each law cites at least one URL (or says `memory`, unchecked); keys are ISO codes."""
    countries = load("jurisdictions.yaml")["countries"]

    assert set(countries) <= COUNTRY_CODES
    for laws in countries.values():
        for law in laws:
            assert law["sources"]
            assert all(
                s == "memory" or s.startswith(("https://", "http://")) for s in law["sources"]
            )
            assert law["reach"].strip() and law["name"].strip()


def test_the_new_rules_have_an_info_severity_for_what_is_not_recorded() -> None:
    """The three rules are warnings, info when nothing is on record to judge."""
    rules = load("rules.yaml")["rules"]

    assert {
        name: (rules[name]["severity"], rules[name]["unrecorded_severity"])
        for name in (
            "vendor-foreign-jurisdiction",
            "backup-restore-untested",
            "backup-documentation-stale",
        )
    } == {
        "vendor-foreign-jurisdiction": ("warning", "info"),
        "backup-restore-untested": ("warning", "info"),
        "backup-documentation-stale": ("warning", "info"),
    }


def test_findings_with_equal_evidence_share_one_copy_and_only_equal_ones() -> None:
    from tests.helpers import shipped_policies

    policies = shipped_policies(None)
    shared: dict[object, dict[str, Any]] = {}

    def made(evidence: Any) -> dict[str, Any]:
        finding = policies.finding(
            "backup-undocumented", "crm", "message", evidence=evidence, shared=shared
        )
        return finding.evidence

    first = made({"hosts": ["a", "b"], "days": 3, "as_of": date(2026, 1, 2)})
    assert made({"hosts": ["a", "b"], "days": 3, "as_of": date(2026, 1, 2)}) is first
    # Equal in Python but not the same JSON value, or not the same value: each its own copy.
    assert made({"hosts": ["a", "b"], "days": 3.0, "as_of": date(2026, 1, 2)}) is not first
    assert made({"hosts": ("a", "b"), "days": 3, "as_of": date(2026, 1, 2)}) is not first
    assert made({"days": 3, "hosts": ["a", "b"], "as_of": date(2026, 1, 2)}) is not first
    flag = made({"hosts": ["a", "b"], "days": True, "as_of": date(2026, 1, 2)})
    assert flag is not first and flag["days"] is True
    assert made({"hosts": [["a"], "b"]}) is not made({"hosts": ["a", ["b"]]})
    # Something unhashable inside: kept, as its own copy, never shared or lost.
    odd = {"hosts": [{"a"}]}
    assert made(odd) == odd and made(odd) is not made(odd)

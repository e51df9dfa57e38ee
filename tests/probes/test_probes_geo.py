"""Tests of MmdbGeoLocator on real mmdb files built with mmdb-writer and real range files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.core.errors import GeoDataError
from auditor.core.model import Location
from auditor.core.policies import load_policies
from auditor.core.ports import DataSet, GeoLocator
from auditor.probes.fetchrecord import Fetched, digest, write_fetch_record
from auditor.probes.geo import MmdbGeoLocator, UnmappedName
from tests.helpers import GEODB_RANGES
from tests.mmdb import (
    EXAMPLE_BUILD_EPOCH,
    build_asn_db,
    build_country_db,
    build_example_dbs,
    build_records_db,
)

COUNTRIES = {
    "192.0.2.0/24": "DE",
    "198.51.100.0/24": "US",
    "203.0.113.0/25": "CN",
    "203.0.113.128/25": "FR",
    "2001:db8:1::/48": "DE",
    "2001:db8:2::/48": "US",
}

REGIONS = {
    ("aws", "eu-central-1"): "DE",
    ("aws", "us-east-1"): "US",
    ("gcp", "europe-west3"): "DE",
    ("azure", "germanywc"): "DE",
    ("azure", "westeurope"): "NL",
}


def region_country(provider: str, region: str) -> str | None:
    """A small stand-in for the policy's region table."""
    return REGIONS.get((provider, region))


def aws_file(
    directory: Path,
    prefixes: list[tuple[str, str, str]],
    border_groups: Mapping[str, str] | None = None,
) -> Path:
    """Write an AWS ip-ranges.json listing (prefix, region, service) entries.

    A prefix's network border group is its region unless `border_groups` names another.
    """
    directory.mkdir(parents=True, exist_ok=True)
    groups = border_groups or {}
    document = {
        "syncToken": "1793016000",
        "createDate": "2026-10-26-12-00-00",
        "prefixes": [
            {"ip_prefix": p, "region": r, "service": s, "network_border_group": groups.get(p, r)}
            for p, r, s in prefixes
        ],
        "ipv6_prefixes": [],
    }
    path = directory / "ip-ranges.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def aws_ec2(country: str, region: str, zone: str | None = None) -> Location:
    """Where 198.51.100.70 is when published as AWS EC2 in 198.51.100.64/26 of `region`."""
    return Location(
        address="198.51.100.70",
        country=country,
        source="ip-ranges:aws",
        provider="aws",
        region=region,
        zone=zone,
        service="EC2",
        network="198.51.100.64/26",
    )


@pytest.fixture
def country_db(tmp_path: Path) -> Path:
    """A GeoLite2-Country-format database of the documentation ranges."""
    return build_country_db(tmp_path / "country.mmdb", COUNTRIES)


@pytest.fixture
def asn_db(tmp_path: Path) -> Path:
    """A GeoLite2-ASN-format database of two documentation ranges."""
    networks = {
        "198.51.100.0/24": (16509, "AMAZON-02"),
        "203.0.113.128/25": (13335, "CLOUDFLARENET"),
    }
    return build_asn_db(tmp_path / "asn.mmdb", networks)


@pytest.fixture
def geoip_only(country_db: Path) -> Iterator[MmdbGeoLocator]:
    """A locator with the country database and nothing else."""
    with MmdbGeoLocator(country_db) as locator:
        yield locator


def test_locator_satisfies_the_geolocator_port(geoip_only: MmdbGeoLocator) -> None:
    """MmdbGeoLocator is usable where the audit expects a GeoLocator."""
    port: GeoLocator = geoip_only
    assert port.locate("192.0.2.1").country == "DE"


@pytest.mark.parametrize(
    ("address", "country", "network"),
    [
        ("192.0.2.10", "DE", "192.0.2.0/24"),
        ("198.51.100.7", "US", "198.51.100.0/24"),
        ("203.0.113.200", "FR", "203.0.113.128/25"),
        ("2001:db8:1::5", "DE", "2001:db8:1::/48"),
        ("2001:db8:2:ffff::1", "US", "2001:db8:2::/48"),
        ("::ffff:192.0.2.10", "DE", "192.0.2.0/24"),
    ],
)
def test_country_lookup_ipv4_and_ipv6(
    geoip_only: MmdbGeoLocator, address: str, country: str, network: str
) -> None:
    """Addresses in the mmdb get its country, source "geoip", and the database's network."""
    location = geoip_only.locate(address)
    assert (location.country, location.source, location.network) == (country, "geoip", network)
    assert location.address == address
    assert location.provider is None and not location.edge


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "2001:db8:9::1",
        "not-an-address",
        "",
        "192.0.2",
        "192.0.2.1\x00",
        "fe80::1%eth0",
        "ü",
    ],
)
def test_unknown_or_malformed_address_has_no_country(
    geoip_only: MmdbGeoLocator, address: str
) -> None:
    """An address the data does not know, or no address at all, is located nowhere; no error."""
    assert geoip_only.locate(address) == Location(address=address, country=None, source="none")


@pytest.mark.parametrize("database_type", ["GeoIP2-City", "GeoLite2-City", "DBIP-City-Lite"])
def test_city_databases_work(tmp_path: Path, database_type: str) -> None:
    """A City-type database (MaxMind or DB-IP) is read with the city model."""
    db = build_country_db(tmp_path / "city.mmdb", COUNTRIES, database_type=database_type)
    with MmdbGeoLocator(db) as locator:
        assert locator.locate("2001:db8:2::1").country == "US"
        assert locator.datasets()[0].name == database_type


def test_dbip_country_database_works(tmp_path: Path) -> None:
    """DB-IP's Country Lite type name is accepted as a Country database."""
    db = build_country_db(tmp_path / "dbip.mmdb", COUNTRIES, database_type="DBIP-Country-Lite")
    with MmdbGeoLocator(db) as locator:
        assert locator.locate("203.0.113.1").country == "CN"


def test_pseudo_country_codes_are_not_countries(tmp_path: Path) -> None:
    """Registry pseudo codes like EU or AP say no country, so the address stays unlocated."""
    db = build_country_db(tmp_path / "c.mmdb", {"192.0.2.0/24": "EU", "198.51.100.0/24": "AP"})
    with MmdbGeoLocator(db) as locator:
        assert locator.locate("192.0.2.1").country is None
        assert locator.locate("198.51.100.1").source == "none"


def test_asn_database_adds_the_autonomous_system(country_db: Path, asn_db: Path) -> None:
    """With an ASN database, locations carry the AS number and organisation."""
    with MmdbGeoLocator(country_db, asn_db=asn_db) as locator:
        location = locator.locate("198.51.100.7")
        assert (location.country, location.asn, location.asn_org) == ("US", 16509, "AMAZON-02")
        assert locator.locate("192.0.2.1").asn is None


def test_dbip_asn_database_works(country_db: Path, tmp_path: Path) -> None:
    """DB-IP's ASN Lite type (GeoLite2-ASN compatible) is accepted as the ASN database."""
    db = build_asn_db(
        tmp_path / "dbip-asn.mmdb",
        {"192.0.2.0/24": (3320, "Deutsche Telekom AG")},
        database_type="DBIP-ASN-Lite (compat=GeoLite2-ASN)",
    )
    with MmdbGeoLocator(country_db, asn_db=db) as locator:
        assert locator.locate("192.0.2.9").asn == 3320


def test_corrupt_database_raises_geodata_error_naming_it(tmp_path: Path) -> None:
    """Random bytes where an mmdb should be: GeoDataError with the path, at construction."""
    path = tmp_path / "GeoLite2-Country.mmdb"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(GeoDataError, match="not a valid MaxMind DB file") as caught:
        MmdbGeoLocator(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)


def test_truncated_database_raises_geodata_error(country_db: Path, tmp_path: Path) -> None:
    """An mmdb cut short (its metadata lost) is reported as not a valid database."""
    path = tmp_path / "truncated.mmdb"
    path.write_bytes(country_db.read_bytes()[:200])
    with pytest.raises(GeoDataError, match=str(path)):
        MmdbGeoLocator(path)


def test_corrupt_search_tree_raises_geodata_error_when_opened(tmp_path: Path) -> None:
    """A file whose metadata reads but whose search tree is garbage fails clearly as soon as
    its first records are read to recognise its layout."""
    good = build_country_db(tmp_path / "good.mmdb", COUNTRIES).read_bytes()
    metadata = good.rfind(b"\xab\xcd\xefMaxMind.com")
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"\xff" * (metadata - 16) + good[metadata - 16 :])
    with pytest.raises(GeoDataError, match="corrupt") as caught:
        MmdbGeoLocator(path)
    assert caught.value.path == str(path)


def test_missing_database_raises_geodata_error(tmp_path: Path, country_db: Path) -> None:
    """A country or ASN database that does not exist is a GeoDataError naming it."""
    with pytest.raises(GeoDataError, match="no such file") as caught:
        MmdbGeoLocator(tmp_path / "absent.mmdb")
    assert caught.value.path == str(tmp_path / "absent.mmdb")
    with pytest.raises(GeoDataError, match=r"asn-absent\.mmdb: no such file"):
        MmdbGeoLocator(country_db, asn_db=tmp_path / "asn-absent.mmdb")


def test_database_of_wrong_type_raises_geodata_error(country_db: Path, asn_db: Path) -> None:
    """An ASN database given as the country database (and vice versa) is refused by type."""
    with pytest.raises(GeoDataError, match=r"'GeoLite2-ASN' is not a country database") as c:
        MmdbGeoLocator(asn_db)
    assert c.value.path == str(asn_db)
    with pytest.raises(GeoDataError, match=r"'GeoLite2-Country' is not an ASN database"):
        MmdbGeoLocator(country_db, asn_db=country_db)


def test_a_database_whose_records_hold_no_country_is_refused_naming_its_type(
    tmp_path: Path,
) -> None:
    """Connection-type records locate nothing: refused, naming the file, the type and the
    layouts expected (tests/probes/test_geo_layouts.py has the layouts that work)."""
    db = build_records_db(
        tmp_path / "connection.mmdb",
        {"192.0.2.0/24": {"connection_type": "Cable/DSL"}},
        database_type="GeoIP2-Connection-Type",
    )
    with pytest.raises(GeoDataError) as caught:
        MmdbGeoLocator(db)
    assert str(caught.value) == (
        f"{db}: database type 'GeoIP2-Connection-Type' is not a country database: its records "
        "do not hold one (expected records laid out as GeoIP2 (country.iso_code: GeoLite2 and "
        "GeoIP2 Country, City and Enterprise, DB-IP Lite); flat (a country_code or two-letter "
        "country value: IPinfo))"
    )


def test_malformed_range_file_raises_at_construction(country_db: Path, tmp_path: Path) -> None:
    """A malformed known range file stops the locator from being built, naming the file."""
    ranges = tmp_path / "ranges"
    ranges.mkdir()
    (ranges / "cloud.json").write_text('{"prefixes": [', encoding="utf-8")
    with pytest.raises(GeoDataError, match=r"cloud\.json: not valid JSON"):
        MmdbGeoLocator(country_db, ip_ranges=ranges)


def test_missing_range_path_raises(country_db: Path, tmp_path: Path) -> None:
    """An ip_ranges path that does not exist is a GeoDataError."""
    with pytest.raises(GeoDataError, match="no such file or directory"):
        MmdbGeoLocator(country_db, ip_ranges=tmp_path / "nowhere")


def test_cloud_range_beats_geoip(country_db: Path, tmp_path: Path) -> None:
    """An AWS eu-central-1 address is in DE by its region though the mmdb says US."""
    ranges = aws_file(tmp_path / "ranges", [("198.51.100.64/26", "eu-central-1", "EC2")])
    with MmdbGeoLocator(country_db, ip_ranges=ranges, region_country=region_country) as locator:
        assert locator.locate("198.51.100.70") == aws_ec2("DE", "eu-central-1")
        assert locator.locate("198.51.100.1").source == "geoip"


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        pytest.param(
            [
                ("198.51.100.0/24", "us-east-1", "AMAZON"),
                ("198.51.100.128/25", "eu-central-1", "S3"),
            ],
            {("198.51.100.200", "country"): "DE", ("198.51.100.20", "country"): "US"},
            id="of nested published networks the most specific decides the region",
        ),
        pytest.param(
            [("192.0.2.0/26", "eu-central-1", "EC2"), ("192.0.2.0/26", "eu-central-1", "AMAZON")],
            {("192.0.2.5", "service"): "EC2"},
            id="a prefix listed under AMAZON and EC2 names EC2 whatever the order",
        ),
    ],
)
def test_the_most_specific_aws_entry_decides(
    country_db: Path,
    tmp_path: Path,
    prefixes: list[tuple[str, str, str]],
    expected: dict[tuple[str, str], str],
) -> None:
    ranges = aws_file(tmp_path / "ranges", prefixes)
    with MmdbGeoLocator(country_db, ip_ranges=ranges, region_country=region_country) as locator:
        for (address, attribute), value in expected.items():
            assert getattr(locator.locate(address), attribute) == value


def test_azure_short_region_names_are_kept_and_mapped(country_db: Path, tmp_path: Path) -> None:
    """Azure's short region forms stay as published and are mapped by the region callable."""
    tags = {
        "changeNumber": 1,
        "cloud": "Public",
        "values": [
            {
                "name": "AzureCloud.germanywc",
                "id": "AzureCloud.germanywc",
                "properties": {
                    "region": "germanywc",
                    "systemService": "",
                    "addressPrefixes": ["198.51.100.0/25", "2001:db8:2:10::/60"],
                },
            }
        ],
    }
    path = tmp_path / "ServiceTags_Public_20261026.json"
    path.write_text(json.dumps(tags), encoding="utf-8")
    seen: list[tuple[str, str]] = []

    def mapping(provider: str, region: str) -> str | None:
        seen.append((provider, region))
        return region_country(provider, region)

    with MmdbGeoLocator(country_db, ip_ranges=path, region_country=mapping) as locator:
        location = locator.locate("2001:db8:2:10::1")
        assert (location.provider, location.region, location.country) == (
            "azure",
            "germanywc",
            "DE",
        )
        assert location.source == "ip-ranges:azure"
    assert seen == [("azure", "germanywc")]


def test_gcp_global_scope_falls_back_to_geoip_country(country_db: Path, tmp_path: Path) -> None:
    """A GCP range with global scope keeps the provider but takes the country from the mmdb."""
    path = tmp_path / "cloud.json"
    path.write_text(
        json.dumps(
            {
                "syncToken": "1",
                "creationTime": "2026-10-26T09:00:05.237",
                "prefixes": [
                    {"ipv4Prefix": "203.0.113.0/26", "service": "Google Cloud", "scope": "global"}
                ],
            }
        ),
        encoding="utf-8",
    )
    with MmdbGeoLocator(country_db, ip_ranges=path, region_country=region_country) as locator:
        location = locator.locate("203.0.113.9")
    assert (location.provider, location.region, location.network) == ("gcp", None, "203.0.113.0/26")
    assert (location.country, location.source) == ("CN", "geoip")


def test_unknown_region_falls_back_to_geoip_country(country_db: Path, tmp_path: Path) -> None:
    """A region the mapping does not know (a new one) keeps the region, country from the mmdb."""
    ranges = aws_file(tmp_path / "ranges", [("192.0.2.0/25", "sa-west-1", "EC2")])
    with MmdbGeoLocator(country_db, ip_ranges=ranges, region_country=region_country) as locator:
        location = locator.locate("192.0.2.1")
    assert (location.provider, location.region, location.country) == ("aws", "sa-west-1", "DE")
    assert location.source == "geoip"


def test_local_zone_abroad_is_placed_in_the_zones_country(country_db: Path, tmp_path: Path) -> None:
    """A us-east-1 prefix of border group us-east-1-qro-1 is in Mexico by the shipped zone
    table, though its region is in the US and the mmdb says US too."""
    ranges = aws_file(
        tmp_path / "ranges",
        [("198.51.100.64/26", "us-east-1", "EC2"), ("198.51.100.128/26", "us-east-1", "EC2")],
        border_groups={"198.51.100.64/26": "us-east-1-qro-1"},
    )
    policies = load_policies()
    with MmdbGeoLocator(
        country_db, ip_ranges=ranges, region_country=policies.region_country
    ) as locator:
        assert locator.locate("198.51.100.70") == aws_ec2("MX", "us-east-1", "us-east-1-qro-1")
        assert locator.locate("198.51.100.130").country == "US"  # us-east-1 itself
        assert locator.locate("198.51.100.1").source == "geoip"  # the mmdb agrees: US


def test_unknown_border_group_is_never_given_its_regions_country(
    country_db: Path, tmp_path: Path
) -> None:
    """A border group the table lacks is located by GeoIP alone (DE here), or not at all; the
    parent region's US is never used, and the zone stays on the location as evidence."""
    ranges = aws_file(
        tmp_path / "ranges",
        [("192.0.2.0/25", "us-east-1", "EC2"), ("10.0.0.0/8", "us-east-1", "EC2")],
        border_groups={"192.0.2.0/25": "us-east-1-xyz-1", "10.0.0.0/8": "us-east-1-xyz-1"},
    )
    with MmdbGeoLocator(country_db, ip_ranges=ranges, region_country=region_country) as located:
        by_geoip = located.locate("192.0.2.1")
        nowhere = located.locate("10.1.2.3")
    assert (by_geoip.country, by_geoip.source) == ("DE", "geoip")
    assert (by_geoip.region, by_geoip.zone) == ("us-east-1", "us-east-1-xyz-1")
    assert (nowhere.country, nowhere.source, nowhere.zone) == (
        None,
        "ip-ranges:aws",
        "us-east-1-xyz-1",
    )


def test_unmapped_lists_unknown_regions_and_border_groups(country_db: Path, tmp_path: Path) -> None:
    """unmapped() names each region or zone the mapping cannot place, with its count; known
    regions, known zones and GLOBAL are not listed."""
    ranges = aws_file(
        tmp_path / "ranges",
        [
            ("192.0.2.0/26", "us-east-1", "EC2"),
            ("192.0.2.64/26", "us-east-1", "EC2"),
            ("192.0.2.128/26", "us-east-1", "EC2"),
            ("198.51.100.0/26", "sa-west-1", "EC2"),
            ("198.51.100.64/26", "sa-west-1", "AMAZON"),
            ("203.0.113.0/26", "GLOBAL", "CLOUDFRONT"),
        ],
        border_groups={"192.0.2.64/26": "us-east-1-xyz-1", "192.0.2.128/26": "us-east-1-qro-1"},
    )
    known = {**REGIONS, ("aws", "us-east-1-qro-1"): "MX"}
    with MmdbGeoLocator(
        country_db, ip_ranges=ranges, region_country=lambda p, r: known.get((p, r))
    ) as locator:
        unmapped = locator.unmapped()
    assert unmapped == [
        UnmappedName("aws", "sa-west-1", "sa-west-1", 2),
        UnmappedName("aws", "us-east-1-xyz-1", "us-east-1", 1),
    ]
    assert [u.is_zone for u in unmapped] == [False, True]


def test_range_without_any_country_keeps_the_provider(country_db: Path, tmp_path: Path) -> None:
    """In a range with no known region and no mmdb country, the provider is still reported."""
    ranges = aws_file(tmp_path / "ranges", [("10.0.0.0/8", "GLOBAL", "ROUTE53")])
    with MmdbGeoLocator(country_db, ip_ranges=ranges) as locator:
        location = locator.locate("10.1.1.1")
    assert (location.country, location.source, location.provider) == (None, "ip-ranges:aws", "aws")


def test_geofeed_country_is_used_directly(country_db: Path, tmp_path: Path) -> None:
    """A geofeed entry's own country locates the address, without the region mapping."""
    path = tmp_path / "digitalocean.csv"
    path.write_text("198.51.100.0/26,NL,NL-NH,Amsterdam,\n", encoding="utf-8")
    with MmdbGeoLocator(country_db, ip_ranges=path) as locator:
        location = locator.locate("198.51.100.3")
    assert (location.country, location.source, location.provider) == ("NL", "ip-ranges:do", "do")


def test_cloudflare_range_is_an_edge(country_db: Path, tmp_path: Path) -> None:
    """Every address of a provider listed with "*" in edge_services is an edge."""
    path = tmp_path / "ips-v4"
    path.write_text("203.0.113.192/27\n", encoding="utf-8")
    edges = {"cloudflare": frozenset({"*"})}
    with MmdbGeoLocator(country_db, ip_ranges=path, edge_services=edges) as locator:
        location = locator.locate("203.0.113.200")
        assert (location.provider, location.edge, location.country) == ("cloudflare", True, "FR")
        assert not locator.locate("203.0.113.100").edge


def test_edge_service_of_a_provider(country_db: Path, tmp_path: Path) -> None:
    """A listed service (CLOUDFRONT) is an edge; another service of the provider is not."""
    ranges = aws_file(
        tmp_path / "ranges",
        [("203.0.113.64/27", "GLOBAL", "CLOUDFRONT"), ("198.51.100.0/26", "us-east-1", "EC2")],
    )
    edges = {"aws": frozenset({"CLOUDFRONT"})}
    with MmdbGeoLocator(
        country_db, ip_ranges=ranges, region_country=region_country, edge_services=edges
    ) as locator:
        assert locator.locate("203.0.113.70").edge
        assert not locator.locate("198.51.100.1").edge


def test_edge_by_asn(country_db: Path, asn_db: Path) -> None:
    """An address announced by an edge AS is an edge even outside every range file."""
    with MmdbGeoLocator(country_db, asn_db=asn_db, edge_asns={13335: "cloudflare"}) as locator:
        location = locator.locate("203.0.113.130")
        assert (location.asn, location.edge, location.source) == (13335, True, "geoip")
        assert not locator.locate("198.51.100.7").edge


def test_lookups_are_cached_per_address(geoip_only: MmdbGeoLocator) -> None:
    """The same address asked twice is answered from the cache (the very same object)."""
    assert geoip_only.locate("192.0.2.77") is geoip_only.locate("192.0.2.77")


def test_datasets_report_build_times_and_sizes(
    country_db: Path, asn_db: Path, tmp_path: Path
) -> None:
    """datasets() lists the mmdb files with their build epochs and each range file with its size;
    a file without a date of its own is dated by its recorded fetch, never its modification time."""
    ranges = tmp_path / "ranges"
    aws_file(
        ranges,
        [("192.0.2.0/26", "eu-central-1", "EC2"), ("192.0.2.0/26", "eu-central-1", "AMAZON")],
    )
    content = b"203.0.113.192/27\n"
    (ranges / "ips-v4").write_bytes(content)
    (ranges / "ips-v6").write_text("2001:db8:ff::/48\n", encoding="utf-8")
    fetched = datetime(2026, 10, 20, tzinfo=UTC)
    url = "https://www.cloudflare.com/ips-v4"
    write_fetch_record(ranges, {"ips-v4": Fetched(fetched, url, digest(content))})
    stamp = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    for name in ("ips-v4", "ips-v6"):
        os.utime(ranges / name, (stamp, stamp))
    with MmdbGeoLocator(country_db, asn_db=asn_db, ip_ranges=ranges) as locator:
        sets = locator.datasets()
    built = datetime.fromtimestamp(EXAMPLE_BUILD_EPOCH, tz=UTC)
    assert sets == [
        DataSet("geoip-country", "GeoLite2-Country", str(country_db), built, dated_by="build"),
        DataSet("geoip-asn", "GeoLite2-ASN", str(asn_db), built, dated_by="build"),
        DataSet(
            "ip-ranges",
            "aws",
            str(ranges / "ip-ranges.json"),
            datetime(2026, 10, 26, 12, tzinfo=UTC),
            2,
            "build",
        ),
        DataSet("ip-ranges", "cloudflare", str(ranges / "ips-v4"), fetched, 1, "fetched"),
        DataSet("ip-ranges", "cloudflare", str(ranges / "ips-v6"), None, 1, None),
    ]


def test_offline_example_data_locates_as_documented(tmp_path: Path) -> None:
    """The example mmdb files and geodb/ip-ranges together locate the documentation ranges."""
    country, asn = build_example_dbs(tmp_path)
    regions = {
        ("aws", "eu-central-1"): "DE",
        ("aws", "us-east-1"): "US",
        ("gcp", "europe-west3"): "DE",
    }
    with MmdbGeoLocator(
        country,
        asn_db=asn,
        ip_ranges=GEODB_RANGES,
        region_country=lambda p, r: regions.get((p, r)),
        edge_services={"cloudflare": frozenset({"*"}), "aws": frozenset({"CLOUDFRONT"})},
        edge_asns={13335: "cloudflare"},
    ) as locator:
        found = {
            a: (loc.country, loc.source, loc.edge)
            for a in (
                "198.51.100.70",
                "198.51.100.10",
                "203.0.113.70",
                "192.0.2.200",
                "203.0.113.200",
                "198.51.100.150",
                "2001:db8:3::1",
            )
            for loc in [locator.locate(a)]
        }
    assert found == {
        "198.51.100.70": ("DE", "ip-ranges:aws", False),  # eu-central-1, though the mmdb says US
        "198.51.100.10": ("US", "ip-ranges:aws", False),
        "203.0.113.70": ("CN", "geoip", True),  # CloudFront, global
        "192.0.2.200": ("DE", "ip-ranges:gcp", False),  # europe-west3, though the mmdb says IE
        "203.0.113.200": ("FR", "geoip", True),  # Cloudflare anycast
        "198.51.100.150": ("GB", "geoip", False),
        "2001:db8:3::1": ("SG", "geoip", False),
    }


def test_a_country_database_overwritten_in_place_keeps_answering_from_the_copy_read(
    tmp_path: Path,
) -> None:
    """The locator reads a private copy: truncating and rewriting the file changes nothing."""
    path = build_country_db(tmp_path / "country.mmdb", {"198.51.100.0/24": "FR"})
    with MmdbGeoLocator(path) as locator:
        path.write_bytes(b"")  # truncated, as `cp new old` does first
        build_country_db(path, {"198.51.100.0/24": "DE"})
        assert locator.locate("198.51.100.7").country == "FR"
        assert locator.locate("198.51.100.7").network == "198.51.100.0/24"
        assert locator.changed() == [str(path)]

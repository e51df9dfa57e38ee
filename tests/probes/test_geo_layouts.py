"""Country and ASN databases are recognised by how their records are laid out, not by their type
name: GeoIP2 Enterprise, DB-IP Lite and IPinfo files locate addresses like GeoLite2 does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.core.errors import GeoDataError
from auditor.probes.geo import MmdbGeoLocator
from tests.mmdb import build_records_db


def _names(name: str) -> dict[str, Any]:
    return {"names": {"en": name, "de": name}}


def enterprise_record(iso: str, name: str, asn: int, org: str) -> dict[str, Any]:
    """A record with every part GeoIP2 Enterprise has, most beyond what GeoLite2 City holds."""
    return {
        "city": {"confidence": 40, "geoname_id": 2950159, **_names("Some City")},
        "continent": {"code": "EU", "geoname_id": 6255148, **_names("Europe")},
        "country": {"confidence": 99, "geoname_id": 2921044, "iso_code": iso, **_names(name)},
        "location": {
            "accuracy_radius": 20,
            "latitude": 52.5,
            "longitude": 13.4,
            "time_zone": "Europe/Berlin",
        },
        "postal": {"code": "10117", "confidence": 20},
        "registered_country": {"geoname_id": 6252001, "iso_code": "US", **_names("USA")},
        "represented_country": {"iso_code": iso, "type": "military", **_names(name)},
        "subdivisions": [{"confidence": 60, "iso_code": "BE", **_names("Land")}],
        "traits": {
            "autonomous_system_number": asn,
            "autonomous_system_organization": org,
            "connection_type": "Corporate",
            "domain": "example.net",
            "is_anycast": False,
            "isp": org,
            "mobile_country_code": "262",
            "mobile_network_code": "01",
            "organization": org,
            "static_ip_score": 1.5,
            "user_type": "business",
        },
    }


def dbip_record(iso: str, name: str) -> dict[str, Any]:
    """A DB-IP Lite record: GeoIP2-compatible keys, with its own set of them."""
    return {
        "city": _names("Some City"),
        "continent": {"code": "EU", "geoname_id": 6255148, **_names("Europe")},
        "country": {"geoname_id": 2921044, "is_in_european_union": True, "iso_code": iso}
        | _names(name),
        "location": {"latitude": 52.5, "longitude": 13.4},
        "subdivisions": [_names("Land")],
    }


def ipinfo_lite_record(iso: str, name: str, asn: int, org: str) -> dict[str, Any]:
    """An IPinfo Lite record: flat, with the country code and the AS in one file."""
    return {
        "asn": f"AS{asn}",
        "as_name": org,
        "as_domain": "example.net",
        "country_code": iso,
        "country": name,
        "continent_code": "EU",
        "continent": "Europe",
    }


def ipinfo_country_record(iso: str, name: str) -> dict[str, Any]:
    """IPinfo's free country file: the two-letter code under `country`."""
    return {"country": iso, "country_name": name, "continent": "EU", "continent_name": "Europe"}


LAYOUTS = {
    "GeoIP2-Enterprise": lambda iso, name: enterprise_record(iso, name, 64500, "Example Net"),
    "DBIP-City-Lite": dbip_record,
    "DBIP-Country-Lite": dbip_record,
    "dbip-location": dbip_record,
    "ipinfo lite.mmdb": lambda iso, name: ipinfo_lite_record(iso, name, 64500, "Example Net"),
    "ipinfo generic_country_free.mmdb": ipinfo_country_record,
    "Acme-Geo-Premium": dbip_record,  # a name that says nothing: the records decide
}
COUNTRIES = {
    "192.0.2.0/24": ("DE", "Germany"),
    "198.51.100.0/24": ("US", "United States"),
    "2001:db8:1::/48": ("JP", "Japan"),
}


@pytest.mark.parametrize("database_type", list(LAYOUTS))
def test_country_databases_of_each_layout_locate_addresses(
    tmp_path: Path, database_type: str
) -> None:
    record = LAYOUTS[database_type]
    db = build_records_db(
        tmp_path / "geo.mmdb",
        {network: record(iso, name) for network, (iso, name) in COUNTRIES.items()},
        database_type,
    )

    with MmdbGeoLocator(db) as locator:
        located = {a: locator.locate(a) for a in ("192.0.2.9", "198.51.100.9", "2001:db8:1::9")}
        missing = locator.locate("203.0.113.9")
        name = locator.datasets()[0].name

    assert {"192.0.2.9": "DE", "198.51.100.9": "US", "2001:db8:1::9": "JP"} == {
        address: location.country for address, location in located.items()
    }
    assert ("geoip", "192.0.2.0/24") == (located["192.0.2.9"].source, located["192.0.2.9"].network)
    assert (None, "none") == (missing.country, missing.source)
    assert database_type == name


def test_the_enterprise_country_is_where_the_address_is_not_where_it_is_registered(
    tmp_path: Path,
) -> None:
    """Enterprise records name a registered (here US) and a represented country too; the
    location is `country`, and a record with only a registered country locates nothing."""
    only_registered = {"registered_country": {"iso_code": "US"}, "traits": {"is_anycast": True}}
    db = build_records_db(
        tmp_path / "enterprise.mmdb",
        {
            "192.0.2.0/24": enterprise_record("DE", "Germany", 64500, "Example Net"),
            "198.51.100.0/24": only_registered,
        },
        "GeoIP2-Enterprise",
    )

    with MmdbGeoLocator(db) as locator:
        assert "DE" == locator.locate("192.0.2.1").country
        assert None is locator.locate("198.51.100.1").country


@pytest.mark.parametrize(
    ("database_type", "record"),
    [
        ("GeoIP2-Enterprise", enterprise_record("DE", "Germany", 3320, "Deutsche Telekom AG")),
        ("ipinfo lite.mmdb", ipinfo_lite_record("DE", "Germany", 3320, "Deutsche Telekom AG")),
        ("GeoLite2-ASN", {"autonomous_system_number": 3320,
                          "autonomous_system_organization": "Deutsche Telekom AG"}),
    ],
)  # fmt: skip
def test_one_file_can_be_both_the_country_and_the_asn_database_where_it_holds_both(
    tmp_path: Path, database_type: str, record: dict[str, Any]
) -> None:
    """Enterprise (ASN in its traits) and IPinfo Lite serve as the ASN database too."""
    country = build_records_db(
        tmp_path / "country.mmdb", {"192.0.2.0/24": dbip_record("DE", "Germany")}, "DBIP-City-Lite"
    )
    db = build_records_db(tmp_path / "asn.mmdb", {"192.0.2.0/24": record}, database_type)

    with MmdbGeoLocator(country, asn_db=db) as locator:
        location = locator.locate("192.0.2.1")

    assert ("DE", 3320, "Deutsche Telekom AG") == (
        location.country,
        location.asn,
        location.asn_org,
    )


def test_a_city_named_database_of_asn_records_is_refused_by_its_records(tmp_path: Path) -> None:
    """The type name says City; the records say ASN: the records win."""
    db = build_records_db(
        tmp_path / "misnamed.mmdb",
        {"192.0.2.0/24": {"autonomous_system_number": 64500}},
        "GeoLite2-City",
    )

    with pytest.raises(GeoDataError, match=r"'GeoLite2-City' is not a country database: its "):
        MmdbGeoLocator(db)


def test_a_country_database_given_as_the_asn_database_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    country = build_records_db(
        tmp_path / "country.mmdb", {"192.0.2.0/24": dbip_record("DE", "Germany")}, "DBIP-City-Lite"
    )

    with pytest.raises(GeoDataError) as caught:
        MmdbGeoLocator(country, asn_db=country)

    assert caught.value.path == str(country)
    assert "'DBIP-City-Lite' is not an ASN database: its records do not hold one" in str(
        caught.value
    )
    assert "GeoIP2 Enterprise (traits.autonomous_system_number)" in str(caught.value)


def test_an_empty_database_is_refused_as_holding_no_records(tmp_path: Path) -> None:
    db = build_records_db(tmp_path / "empty.mmdb", {}, "GeoLite2-Country")

    with pytest.raises(GeoDataError, match="is not a country database: holds no records"):
        MmdbGeoLocator(db)

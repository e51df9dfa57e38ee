"""Builds small GeoLite2-Country- and GeoLite2-ASN-format mmdb files from documentation ranges."""

# Usage: python geodb/build_example_mmdb.py OUT_DIR
#
# Writes OUT_DIR/example-country.mmdb and OUT_DIR/example-asn.mmdb for the offline example (the
# addresses come from the documentation ranges of RFC 5737 and RFC 3849, so they locate nothing
# real), reads every network back with geoip2, and prints what it wrote. Needs mmdb-writer
# (`pip install mmdb-writer`). The tests reuse `build_country_db` and `build_asn_db`.

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import geoip2.database
from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

EXAMPLE_BUILD_EPOCH = 1792972800  # 2026-10-26T00:00:00Z, fixed so the files are reproducible

EXAMPLE_COUNTRIES: Mapping[str, str] = {
    "192.0.2.0/25": "DE",
    "192.0.2.128/25": "IE",
    "198.51.100.0/25": "US",
    "198.51.100.128/26": "GB",
    "198.51.100.192/26": "JP",
    "203.0.113.0/25": "CN",
    "203.0.113.128/26": "IN",
    "203.0.113.192/26": "FR",
    "2001:db8:1::/48": "DE",
    "2001:db8:2::/48": "US",
    "2001:db8:3::/48": "SG",
}

EXAMPLE_ASNS: Mapping[str, tuple[int, str]] = {
    "198.51.100.0/25": (16509, "AMAZON-02"),
    "203.0.113.192/26": (13335, "CLOUDFLARENET"),
    "2001:db8:2::/48": (16509, "AMAZON-02"),
}

# Just enough for the example and the tests; other codes get their code as their name.
_NAMES = {
    "CN": "China",
    "DE": "Germany",
    "FR": "France",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "IN": "India",
    "JP": "Japan",
    "SG": "Singapore",
    "US": "United States",
}
_EU_CODES = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
_EU = frozenset(_EU_CODES.split())


class _FixedEpochWriter(MMDBWriter):
    """An MMDBWriter whose metadata carries a given build time instead of the current one."""

    def __init__(self, build_epoch: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build_epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = super()._build_meta()
        meta["build_epoch"] = self._build_epoch
        return meta


def _country_record(iso: str) -> dict[str, Any]:
    country: dict[str, Any] = {"iso_code": iso, "names": {"en": _NAMES.get(iso, iso)}}
    if iso in _EU:
        country["is_in_european_union"] = True
    return {"country": country, "registered_country": country}


def _writer(database_type: str, description: str, build_epoch: int) -> MMDBWriter:
    # One IPv6 tree holds both families: IPv4 lives under ::/96, as in MaxMind's files.
    return _FixedEpochWriter(
        build_epoch,
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": description},
    )


def _write_all(
    path: Path, writer: MMDBWriter, networks: Mapping[str, Any], record: Callable[[Any], Any]
) -> Path:
    # Wider networks first, so a narrower one inserted later carves its part out of them.
    for network in sorted(networks, key=lambda n: IPNetwork(n).prefixlen):
        writer.insert_network(IPSet([network]), record(networks[network]))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def build_country_db(
    path: Path,
    networks: Mapping[str, str],
    database_type: str = "GeoLite2-Country",
    build_epoch: int = EXAMPLE_BUILD_EPOCH,
) -> Path:
    """Write a Country-format mmdb mapping each network (CIDR) to an ISO country code.

    `database_type` may be a City type ("GeoIP2-City"); the records then hold the country only.
    Returns `path`.
    """
    writer = _writer(database_type, "example country database (documentation ranges)", build_epoch)
    return _write_all(path, writer, networks, _country_record)


def build_asn_db(
    path: Path,
    networks: Mapping[str, tuple[int, str]],
    database_type: str = "GeoLite2-ASN",
    build_epoch: int = EXAMPLE_BUILD_EPOCH,
) -> Path:
    """Write an ASN-format mmdb mapping each network (CIDR) to (AS number, AS organisation).

    Returns `path`.
    """
    writer = _writer(database_type, "example ASN database (documentation ranges)", build_epoch)
    return _write_all(
        path,
        writer,
        networks,
        lambda asn: {"autonomous_system_number": asn[0], "autonomous_system_organization": asn[1]},
    )


def build_records_db(
    path: Path,
    networks: Mapping[str, Mapping[str, Any]],
    database_type: str,
    build_epoch: int = EXAMPLE_BUILD_EPOCH,
) -> Path:
    """Write an mmdb mapping each network (CIDR) to the record given, as it is: for databases
    laid out otherwise than GeoLite2 (GeoIP2 Enterprise, IPinfo, ...). Returns `path`."""
    writer = _writer(database_type, f"example {database_type} database", build_epoch)
    return _write_all(path, writer, networks, dict)


def _check(country_db: Path, asn_db: Path) -> None:
    """Read every example network back, so a broken file is noticed here and not by a user."""
    with geoip2.database.Reader(str(country_db)) as reader:
        for network, iso in EXAMPLE_COUNTRIES.items():
            found = reader.country(str(IPNetwork(network).ip)).country.iso_code
            if found != iso:
                raise SystemExit(f"{country_db}: {network} reads back as {found}, not {iso}")
    with geoip2.database.Reader(str(asn_db)) as reader:
        for network, (asn, _) in EXAMPLE_ASNS.items():
            number = reader.asn(str(IPNetwork(network).ip)).autonomous_system_number
            if number != asn:
                raise SystemExit(f"{asn_db}: {network} reads back as AS{number}, not AS{asn}")


def main(argv: list[str]) -> int:
    """Build and check the example databases in the directory named by the one argument."""
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python geodb/build_example_mmdb.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    country_db = build_country_db(out / "example-country.mmdb", EXAMPLE_COUNTRIES)
    asn_db = build_asn_db(out / "example-asn.mmdb", EXAMPLE_ASNS)
    _check(country_db, asn_db)
    for path, count in ((country_db, len(EXAMPLE_COUNTRIES)), (asn_db, len(EXAMPLE_ASNS))):
        print(f"wrote {path} ({count} networks, {path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

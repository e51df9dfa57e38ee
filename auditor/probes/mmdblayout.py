"""The record layouts of mmdb files that locate addresses, recognised by what the records hold
rather than by the database's type name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

Record = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class CountryLayout:
    """A way of reading a country out of a record, and how to recognise records that use it."""

    name: str
    fits: Callable[[Record], bool]
    country: Callable[[Record], str | None]


@dataclass(frozen=True, slots=True)
class AsnLayout:
    """A way of reading the autonomous system out of a record, and how to recognise it."""

    name: str
    fits: Callable[[Record], bool]
    asn: Callable[[Record], tuple[int | None, str | None]]


def _mapping(record: Record, key: str) -> Record | None:
    value = record.get(key)
    return value if isinstance(value, Mapping) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _geoip2_country(record: Record) -> str | None:
    country = _mapping(record, "country")
    return _text(country.get("iso_code")) if country is not None else None


def _geoip2_fits(record: Record) -> bool:
    # A location record: some of these records carry only a continent or a registered country
    # (anycast, satellite providers), so the country itself need not be in every one.
    places = ("country", "registered_country", "represented_country", "continent")
    return any(_mapping(record, key) is not None for key in places)


def _flat_country(record: Record) -> str | None:
    code = _text(record.get("country_code")) or _text(record.get("country"))
    return code if code is not None and len(code) == 2 else None


def _flat_fits(record: Record) -> bool:
    return _flat_country(record) is not None


COUNTRY_LAYOUTS = (
    CountryLayout(
        "GeoIP2 (country.iso_code: GeoLite2 and GeoIP2 Country, City and Enterprise, DB-IP Lite)",
        _geoip2_fits,
        _geoip2_country,
    ),
    CountryLayout(
        "flat (a country_code or two-letter country value: IPinfo)", _flat_fits, _flat_country
    ),
)


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.upper().startswith("AS") and value[2:].isdigit():
        return int(value[2:])  # IPinfo writes "AS13335"
    return None


def _top_level_asn(record: Record) -> tuple[int | None, str | None]:
    number = _number(record.get("autonomous_system_number"))
    return number, _text(record.get("autonomous_system_organization"))


def _traits_asn(record: Record) -> tuple[int | None, str | None]:
    traits = _mapping(record, "traits")
    return _top_level_asn(traits) if traits is not None else (None, None)


def _ipinfo_asn(record: Record) -> tuple[int | None, str | None]:
    return _number(record.get("asn")), _text(record.get("as_name"))


ASN_LAYOUTS = (
    AsnLayout(
        "GeoIP2 (autonomous_system_number: GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN Lite)",
        lambda record: "autonomous_system_number" in record,
        _top_level_asn,
    ),
    AsnLayout(
        "GeoIP2 Enterprise (traits.autonomous_system_number)",
        lambda record: "autonomous_system_number" in (_mapping(record, "traits") or {}),
        _traits_asn,
    ),
    AsnLayout("IPinfo (asn)", lambda record: _number(record.get("asn")) is not None, _ipinfo_asn),
)


Layout = CountryLayout | AsnLayout


def choose(layouts: Sequence[Layout], records: Iterable[object]) -> Layout | None:
    """The first layout that some of the sampled records use, or None when none does."""
    sample = [record for record in records if isinstance(record, Mapping)]
    return next((layout for layout in layouts if any(layout.fits(r) for r in sample)), None)

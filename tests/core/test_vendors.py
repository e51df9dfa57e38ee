"""The vendor catalogue's headquarters fill in a vendor_country the inventory does not declare."""

from __future__ import annotations

import yaml

from auditor.core.model import Integration
from auditor.core.vendors import CatalogueHome, catalogue_entry, with_vendor_countries
from tests.helpers import integrations_from, minimal

HOMES = [
    CatalogueHome("mailchimp", "Mailchimp", "US", "memory"),
    CatalogueHome("brevo", "Brevo", "FR", "https://www.brevo.com/legal/"),
    CatalogueHome("nameless", "Nameless", None),
    CatalogueHome("twin-a", "Twin", "US"),
    CatalogueHome("twin-b", "Twin", "DE"),
]


def undeclared(ident: str, **overrides: object) -> Integration:
    entry = minimal(ident, **overrides)
    del entry["vendor_country"]
    (integration,) = integrations_from(yaml.safe_dump({"integrations": [entry]}))
    return integration


def test_an_id_naming_a_catalogue_entry_takes_its_headquarters() -> None:
    """The id `discover` stubs use names the entry; the country says it is from the catalogue."""
    (filled,) = with_vendor_countries([undeclared("mailchimp")], HOMES)

    assert filled.vendor_country is not None
    assert ("US", "catalogue", "mailchimp", "memory") == (
        filled.vendor_country.code,
        filled.vendor_country.source,
        filled.vendor_country.catalogue_id,
        filled.vendor_country.reference,
    )
    assert "from the vendor catalogue entry 'mailchimp', source: memory; not declared" == (
        filled.vendor_country.describe()
    )


def test_the_vendor_or_name_matches_a_catalogue_name_case_and_spacing_aside() -> None:
    """An id of its own still matches by the vendor's or the integration's name."""
    by_vendor = undeclared("newsletter", vendor="  BREVO ")
    by_name = undeclared("mail-2", name="mailchimp")

    assert ["FR", "US"] == [
        i.vendor_country.code  # type: ignore[union-attr]
        for i in with_vendor_countries([by_vendor, by_name], HOMES)
    ]


def test_a_declared_country_is_never_replaced() -> None:
    """What the inventory declares stands, even where the catalogue says otherwise."""
    (declared,) = integrations_from(
        yaml.safe_dump({"integrations": [minimal("mailchimp", vendor_country="IE")]})
    )

    (kept,) = with_vendor_countries([declared], HOMES)

    assert ("IE", "inventory") == (kept.vendor_country.code, kept.vendor_country.source)  # type: ignore[union-attr]


def test_no_match_an_ambiguous_name_or_no_headquarters_leaves_it_unknown() -> None:
    """A guess is worse than an unknown: the vendor rule then says it is unknown."""
    unknown = undeclared("crm", vendor="Someone Else GmbH")
    twin = undeclared("twin", vendor="Twin")
    nameless = undeclared("nameless")

    assert catalogue_entry(twin, HOMES) is None
    assert [None, None, None] == [
        i.vendor_country for i in with_vendor_countries([unknown, twin, nameless], HOMES)
    ]

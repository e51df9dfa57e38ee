"""Fills in the vendor country an inventory entry does not declare from the vendor catalogue's
headquarters, saying so; pure (the catalogue is loaded by the caller)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auditor.core.model import Integration, VendorCountry


@dataclass(frozen=True, slots=True)
class CatalogueHome:
    """What the vendor catalogue says of one vendor's home: its entry, and where it comes from."""

    id: str  # the catalogue entry's id
    name: str  # the vendor's name in the catalogue
    country: str | None  # its headquarters, when the catalogue records them
    reference: str | None = (
        None  # the catalogue's source for the headquarters ("memory": unchecked)
    )


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class _Index:
    """The catalogue by entry id and by folded vendor name, built once for a whole inventory."""

    by_id: dict[str, CatalogueHome]
    by_name: dict[str, list[CatalogueHome]]

    @classmethod
    def of(cls, homes: Sequence[CatalogueHome]) -> _Index:
        by_name: dict[str, list[CatalogueHome]] = {}
        for home in homes:
            by_name.setdefault(_folded(home.name), []).append(home)
        return cls({home.id: home for home in homes}, by_name)

    def entry(self, integration: Integration) -> CatalogueHome | None:
        if integration.id in self.by_id:
            return self.by_id[integration.id]
        for text in dict.fromkeys((integration.vendor, integration.name)):
            named = self.by_name.get(_folded(text), [])
            if len(named) == 1:
                return named[0]
        return None


def catalogue_entry(
    integration: Integration, homes: Sequence[CatalogueHome]
) -> CatalogueHome | None:
    """The catalogue entry an integration is about, or None.

    The integration's id names a catalogue entry (as the stubs of `discover` do); failing
    that, its vendor or its name is one catalogue vendor's name (case and spacing aside). A
    name two entries share matches neither: a guessed country is worse than an unknown one.
    """
    return _Index.of(homes).entry(integration)


def with_vendor_countries(
    integrations: Iterable[Integration], homes: Sequence[CatalogueHome]
) -> list[Integration]:
    """The integrations, those without a declared `vendor_country` given the catalogue's
    headquarters of their vendor where the catalogue has them (marked as from the catalogue)."""
    index = _Index.of(homes)
    filled = []
    for integration in integrations:
        home = None if integration.vendor_country else index.entry(integration)
        if home is not None and home.country is not None:
            country = VendorCountry(home.country, "catalogue", home.id, home.reference)
            integration = dataclasses.replace(integration, vendor_country=country)
        filled.append(integration)
    return filled

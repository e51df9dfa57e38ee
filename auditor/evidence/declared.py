"""The inventory as declared, in the evidence report's shape: integrations, their places and
their backups."""

from __future__ import annotations

from datetime import date
from typing import Any

from auditor.core.model import Backups, Integration, Place


def day(value: date | None) -> str | None:
    """A date as ISO 8601, or None."""
    return None if value is None else value.isoformat()


def place_json(place: Place) -> dict[str, Any]:
    return {"place": place.spec, "country": place.country}


def _documentation(backups: Backups | None) -> dict[str, Any] | None:
    documented = backups.documented if backups else None
    if documented is None:
        return None
    return {"at": documented.at, "reviewed": documented.reviewed.isoformat()}


def _generations(backups: Backups) -> dict[str, str]:
    return {name: str(duration) for name, duration in backups.generations}


def inventory_item(integration: Integration) -> dict[str, Any]:
    """One integration as declared (the inventory snapshot); a vendor country filled in from
    the vendor catalogue says so in `vendor_country_source`."""
    backups = integration.backups
    home = integration.vendor_country
    return {
        "id": integration.id,
        "name": integration.name,
        "vendor": integration.vendor,
        "vendor_country": home.code if home else None,
        "vendor_country_source": home.source if home else None,
        "category": integration.category,
        "role": integration.role,
        "data_categories": sorted(integration.data_categories),
        "endpoints": sorted(integration.endpoints),
        "hosting": [place_json(p) for p in integration.hosting],
        "support": [place_json(p) for p in integration.support],
        "backups": None
        if backups is None
        else {
            "regions": [place_json(p) for p in backups.regions],
            "retention": str(backups.retention) if backups.retention else None,
            "type": backups.kind,
            "generations": _generations(backups),
            "restore_tested": day(backups.restore_tested),
            "documented": _documentation(backups),
        },
        "retention": str(integration.retention) if integration.retention else None,
        "subprocessors": sorted(integration.subprocessors),
        "transfer": {
            "safeguards": sorted(integration.transfer.safeguards),
            "dpf_certified": integration.transfer.dpf_certified,
            "certifications": [
                {
                    "framework": c.framework,
                    "since": day(c.since),
                    "until": day(c.until),
                    "hr": c.hr,
                }
                for c in integration.transfer.certifications
            ],
            "in_scope_of": sorted(integration.transfer.in_scope_of),
            "recipient_sector": integration.transfer.recipient_sector,
            "consent_purpose": integration.transfer.consent_purpose,
        },
        "contract": {
            "dpa_signed": day(integration.contract.dpa_signed),
            "vendor_may_use_data": integration.contract.vendor_may_use_data,
            "data_ownership": integration.contract.data_ownership,
        },
        "source": integration.source,
    }


def backup_item(integration: Integration, on: date) -> dict[str, Any]:
    """What an integration documents of its backups, next to how long its data may be kept:
    the effective retention (the longest of the retention and the generations, from `on`) is
    how long deleted personal data lives on in them."""
    backups = integration.backups
    effective = backups.effective_retention(on) if backups else None
    return {
        "integration": integration.id,
        "name": integration.name,
        "documented": backups is not None and backups.informative,
        "regions": [place_json(p) for p in backups.regions] if backups else [],
        "retention": str(backups.retention) if backups and backups.retention else None,
        "type": backups.kind if backups else None,
        "generations": _generations(backups) if backups else {},
        "effective_retention": str(effective[0]) if effective else None,
        "data_retention": str(integration.retention) if integration.retention else None,
        "restore_tested": day(backups.restore_tested) if backups else None,
        "documentation": _documentation(backups),
    }

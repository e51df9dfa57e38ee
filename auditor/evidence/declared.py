"""The inventory as declared, in the evidence report's shape: integrations, their places and
their backups."""

from __future__ import annotations

from datetime import date
from typing import Any

from auditor.core.model import Integration, Place


def day(value: date | None) -> str | None:
    """A date as ISO 8601, or None."""
    return None if value is None else value.isoformat()


def place_json(place: Place) -> dict[str, Any]:
    return {"place": place.spec, "country": place.country}


def inventory_item(integration: Integration) -> dict[str, Any]:
    """One integration as declared (the inventory snapshot)."""
    backups = integration.backups
    return {
        "id": integration.id,
        "name": integration.name,
        "vendor": integration.vendor,
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


def backup_item(integration: Integration) -> dict[str, Any]:
    """What an integration documents of its backups, next to how long its data may be kept."""
    backups = integration.backups
    return {
        "integration": integration.id,
        "name": integration.name,
        "documented": backups is not None and bool(backups.regions or backups.retention),
        "regions": [place_json(p) for p in backups.regions] if backups else [],
        "retention": str(backups.retention) if backups and backups.retention else None,
        "data_retention": str(integration.retention) if integration.retention else None,
    }

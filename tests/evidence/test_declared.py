"""The inventory as the report declares it: vendor countries and backups as they are run,
valid against docs/report-schema.json."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from auditor.core.vendors import CatalogueHome, with_vendor_countries
from auditor.evidence.declared import backup_item, inventory_item
from tests.helpers import integrations_from, minimal

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report-schema.json"


def valid(item: dict[str, Any], definition: str) -> None:
    """Validate one item against a definition of the report schema (or `backup`, the item of
    its `backups` list)."""
    full = json.loads(SCHEMA.read_text())
    definitions = {**full["$defs"], "backup": full["properties"]["backups"]["items"]}
    schema = {"$defs": definitions, "$ref": f"#/$defs/{definition}"}
    jsonschema.Draft202012Validator(schema).validate(item)


def test_backups_as_they_are_run_and_their_effective_retention() -> None:
    """Type, generations, restore test and documentation are listed; the effective retention
    is the longest generation."""
    backups = {
        "regions": ["IE"],
        "retention": "P30D",
        "type": "differential",
        "generations": {"daily": "P7D", "yearly": "P7Y"},
        "restore_tested": "2026-05-04",
        "documented": {"at": "https://wiki.example/backup", "reviewed": "2026-02-01"},
    }
    (crm,) = integrations_from(yaml.safe_dump({"integrations": [minimal("crm", backups=backups)]}))

    item = backup_item(crm, date(2026, 11, 22))
    declared = inventory_item(crm)

    assert {
        "type": "differential",
        "generations": {"daily": "P7D", "yearly": "P7Y"},
        "effective_retention": "P7Y",
        "restore_tested": "2026-05-04",
        "documentation": {"at": "https://wiki.example/backup", "reviewed": "2026-02-01"},
    } == {key: item[key] for key in ("type", "generations", "effective_retention",
                                      "restore_tested", "documentation")}  # fmt: skip
    assert "P7Y" == declared["backups"]["generations"]["yearly"]
    valid(item, "backup")
    valid(declared, "integration")


def test_a_vendor_country_from_the_catalogue_is_marked_as_such() -> None:
    """The inventory snapshot says where each vendor country came from, or that none is known."""
    entries = [minimal("mailchimp"), minimal("crm", vendor_country="FR"), minimal("x")]
    del entries[0]["vendor_country"], entries[2]["vendor_country"]
    integrations = integrations_from(yaml.safe_dump({"integrations": entries}))
    filled = with_vendor_countries(integrations, [CatalogueHome("mailchimp", "Mailchimp", "US")])

    items = [inventory_item(i) for i in filled]

    assert [("US", "catalogue"), ("FR", "inventory"), (None, None)] == [
        (i["vendor_country"], i["vendor_country_source"]) for i in items
    ]
    for item in items:
        valid(item, "integration")

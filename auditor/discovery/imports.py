"""Imports into inventory YAML: Fides (fideslang) systems and CSV registers, with what did not map."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.inventory import CATEGORIES, DATA_CATEGORIES
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.yamlsource import YamlDocument

# Fides data categories (fideslang taxonomy) by prefix -> the inventory's vocabulary; the longest
# matching prefix wins. Categories outside `user.` (system., account.) are not personal data.
_FIDES_CATEGORIES = {
    "user.contact": "contact",
    "user.name": "identity",
    "user.unique_id": "identity",
    "user.government_id": "identity",
    "user.authorization": "identity",
    "user.account": "identity",
    "user.demographic": "identity",
    "user.behavior": "behavioural",
    "user.device": "device",
    "user.location": "location",
    "user.financial": "financial",
    "user.payment": "payment",
    "user.health_and_medical": "health",
    "user.biometric": "special",
    "user.genetic": "special",
    "user.race_ethnicity": "special",
    "user.religious_belief": "special",
    "user.sexual_orientation": "special",
    "user.political_opinion": "special",
    "user.criminal_history": "criminal",
    "user.workplace": "employment",
    "user.job_title": "employment",
    "user.content": "communications",
    "user.social": "communications",
}
# Fides data uses by prefix -> an inventory category (the longest matching prefix wins).
_FIDES_USES = {
    "marketing.communications": "email-marketing",
    "analytics": "analytics",
    "essential.service.payment_processing": "payment",
    "essential.service.operations.support": "support",
    "functional.service.operations.support": "support",
}
# ISO 3166-1 alpha-3 -> alpha-2 for the countries SaaS data most often goes to; others are
# reported as not mapped rather than guessed.
_ALPHA3 = {
    "USA": "US", "GBR": "GB", "DEU": "DE", "FRA": "FR", "IRL": "IE", "NLD": "NL", "CAN": "CA",
    "AUS": "AU", "CHE": "CH", "IND": "IN", "JPN": "JP", "SWE": "SE", "ESP": "ES", "ITA": "IT",
    "BEL": "BE", "AUT": "AT", "DNK": "DK", "FIN": "FI", "POL": "PL", "SGP": "SG", "BRA": "BR",
    "ISR": "IL", "NZL": "NZ", "EST": "EE", "LUX": "LU", "PRT": "PT", "NOR": "NO", "KOR": "KR",
    "MLT": "MT", "CZE": "CZ", "CHN": "CN", "ZAF": "ZA", "ARG": "AR", "URY": "UY",
}  # fmt: skip
_FIDES_SYSTEM_KEYS = {
    "fides_key", "name", "description", "privacy_declarations", "third_country_transfers",
    "organization_fides_key", "tags", "system_type", "legal_address",
}  # fmt: skip
_CSV_COLUMNS = (
    "id", "name", "vendor", "vendor_country", "category", "role", "data_categories",
    "endpoints", "hosting", "support", "dpf_certified", "dpa_signed",
)  # fmt: skip
_SLUG_CHARS = re.compile(r"[^a-z0-9-]+")


@dataclass
class ImportResult:
    """The inventory entries made, and what could not be mapped (source, entry, message)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def to_yaml(self, source: str) -> str:
        """Inventory YAML with the problems as TODO comments above each entry."""
        header = f"# Imported from {source} by gdpr-auditor import; complete every TODO.\n"
        if not self.entries:
            return header + "integrations: []\n"
        parts = [header + "integrations:\n"]
        for entry in self.entries:
            todos = entry.pop("_todo", [])
            lines = [f"  # TODO: {todo}" for todo in todos]
            text = yaml.safe_dump([entry], sort_keys=False, default_flow_style=None, width=100)
            lines += ["  " + line for line in text.splitlines()]
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts)


def slug(text: str) -> str:
    """A lower-case inventory id from a key or name."""
    return _SLUG_CHARS.sub("-", text.lower().replace("_", "-")).strip("-")[:63] or "unnamed"


def _stub(ident: str, name: str) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "category": "other",
        "role": "processor",
        "data_categories": [],
        "hosting": [],
        "_todo": [],
    }


def _longest(value: str, table: dict[str, str]) -> str | None:
    matches = [key for key in table if value == key or value.startswith(key + ".")]
    return table[max(matches, key=len)] if matches else None


def import_fides(doc: YamlDocument) -> ImportResult:
    """Map a fideslang `system:` document to inventory entries; `dataset:` entries describe
    databases, not integrations, and are reported as skipped.

    Raises:
        InvalidInputError: the document has neither a `system` nor a `dataset` list.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    systems, datasets = data.get("system"), data.get("dataset")
    if not isinstance(systems, list) and not isinstance(datasets, list):
        raise InvalidInputError([Issue(doc.source, "expected a fideslang 'system' list", line=1)])
    result = ImportResult()
    for dataset in datasets if isinstance(datasets, list) else []:
        key = dataset.get("fides_key", "?") if isinstance(dataset, dict) else "?"
        result.unmapped.append(f"dataset {key}: a database description, not an integration")
    for index, system in enumerate(systems if isinstance(systems, list) else []):
        if not isinstance(system, dict) or not system.get("fides_key"):
            result.unmapped.append(f"system #{index + 1}: no fides_key, skipped")
            continue
        result.entries.append(_fides_system(system, result.unmapped))
    return result


def _fides_system(system: dict[str, Any], unmapped: list[str]) -> dict[str, Any]:
    key = str(system["fides_key"])
    entry = _stub(slug(key), str(system.get("name") or key))

    def note(message: str) -> None:
        unmapped.append(f"system {key}: {message}")
        entry["_todo"].append(message)

    def listed(value: Any, what: str) -> list[Any]:
        # A hand-edited export can hold anything anywhere: what is not a list is reported.
        if value is None or isinstance(value, list):
            return value or []
        note(f"{what} is not a list, not mapped")
        return []

    categories: dict[str, None] = {}
    uses: dict[str, None] = {}
    for declaration in listed(system.get("privacy_declarations"), "privacy_declarations"):
        if not isinstance(declaration, dict):
            note("a privacy declaration is not a mapping, not mapped")
            continue
        for category in listed(declaration.get("data_categories"), "data_categories"):
            mapped = _longest(str(category), _FIDES_CATEGORIES)
            if mapped:
                categories[mapped] = None
            elif str(category).startswith("user."):
                note(f"data category {category} has no inventory equivalent")
        if declaration.get("data_use"):
            uses[str(declaration["data_use"])] = None
    entry["data_categories"] = [c for c in DATA_CATEGORIES if c in categories]
    kinds = {_longest(use, _FIDES_USES) for use in uses} - {None}
    if len(kinds) == 1:
        entry["category"] = kinds.pop()
    else:
        note(f"category: set one from the data uses {', '.join(uses) or '(none)'}")
    for country in listed(system.get("third_country_transfers"), "third_country_transfers"):
        code = _ALPHA3.get(str(country).upper(), str(country).upper())
        if code in COUNTRY_CODES:
            entry["hosting"].append(code)
        else:
            note(f"third-country transfer {country!r} is not a known country code")
    _fides_vendor_country(system.get("legal_address"), entry, note)
    note("role: processor assumed; hosting is only the declared third-country transfers")
    for extra in sorted({str(key) for key in system} - _FIDES_SYSTEM_KEYS):
        note(f"{extra} not mapped")
    return entry


def _country_code(text: str) -> str | None:
    """An ISO alpha-2 or (common) alpha-3 code as alpha-2, or None."""
    code = text.strip().upper()
    code = _ALPHA3.get(code, code)
    return code if code in COUNTRY_CODES else None


def _fides_vendor_country(address: Any, entry: dict[str, Any], note: Callable[[str], None]) -> None:
    """`vendor_country` from the last part of a Fides system's `legal_address` when it is a
    country code ("..., Dublin, IE"); otherwise a TODO, never a guess."""
    last = str(address).rsplit(",", 1)[-1] if isinstance(address, str) else ""
    code = _country_code(last)
    if code is not None:
        entry["vendor_country"] = code
        note(
            "vendor_country from legal_address: check it is the headquarters or controlling parent"
        )
    else:
        note("vendor_country: the ISO code of the vendor's headquarters or controlling parent")


def import_csv(text: str, source: str) -> ImportResult:
    """Map a CSV register (a header row naming inventory fields) to inventory entries; list
    cells are separated by `;`, unknown columns and invalid values are reported.

    Raises:
        InvalidInputError: no header row, or no `name` or `id` column.
    """
    reader = csv.DictReader(io.StringIO(text))
    try:
        columns = [column.strip().lower() for column in reader.fieldnames or []]
    except csv.Error as exc:
        raise InvalidInputError([Issue(source, f"not CSV: {exc}", line=1)]) from None
    if "name" not in columns and "id" not in columns:
        raise InvalidInputError([Issue(source, "expected a header row with a name column", line=1)])
    # Compared as they are read (case and spaces aside): a second `Hosting` would replace the first.
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        message = f"column {listed} appears more than once in the header (case and spaces aside)"
        raise InvalidInputError([Issue(source, message, line=1)])
    result = ImportResult()
    result.unmapped.extend(f"column {c!r} not mapped" for c in columns if c not in _CSV_COLUMNS)
    try:
        for number, row in enumerate(reader, start=2):
            cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            result.entries.append(_csv_row(cells, f"row {number}", result.unmapped))
    except csv.Error as exc:
        raise InvalidInputError([Issue(source, f"not CSV: {exc}", line=reader.line_num)]) from None
    return result


def _split(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(";") if item.strip()]


def _csv_row(cells: dict[str, str], where: str, unmapped: list[str]) -> dict[str, Any]:
    name = cells.get("name") or cells.get("id") or "unnamed"
    entry = _stub(slug(cells.get("id") or name), name)

    def note(message: str) -> None:
        unmapped.append(f"{where} ({entry['id']}): {message}")
        entry["_todo"].append(message)

    if cells.get("vendor"):
        entry["vendor"] = cells["vendor"]
    if cells.get("vendor_country"):
        code = _country_code(cells["vendor_country"])
        if code is not None:
            entry["vendor_country"] = code
        else:
            note(f"vendor_country {cells['vendor_country']!r} is not an ISO country code")
    category = cells.get("category", "").lower()
    if category in CATEGORIES:
        entry["category"] = category
    else:
        note(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    role = cells.get("role", "").lower()
    if role in ("processor", "controller", "joint-controller"):
        entry["role"] = role
    else:
        note(f"role {role!r}: processor assumed")
    entry["data_categories"] = _known(_split(cells.get("data_categories", "")),
                                      DATA_CATEGORIES, "data category", note)  # fmt: skip
    if cells.get("endpoints"):
        entry["endpoints"] = [host.lower() for host in _split(cells["endpoints"])]
    entry["hosting"] = _split(cells.get("hosting", ""))
    if cells.get("support"):
        entry["support"] = _split(cells["support"])
    dpf = cells.get("dpf_certified", "").lower()
    if dpf in ("yes", "true", "1"):
        entry["transfer"] = {"dpf_certified": True}
    elif dpf not in ("", "no", "false", "0"):
        note(f"dpf_certified {dpf!r} is not yes or no")
    if cells.get("dpa_signed"):
        try:
            entry["contract"] = {"dpa_signed": date.fromisoformat(cells["dpa_signed"])}
        except ValueError:
            note(f"dpa_signed {cells['dpa_signed']!r} is not a YYYY-MM-DD date")
    return entry


def _known(
    values: Iterable[str], vocabulary: tuple[str, ...], noun: str, note: Callable[[str], None]
) -> list[str]:
    kept = []
    for value in values:
        if value.lower() in vocabulary:
            kept.append(value.lower())
        else:
            note(f"{noun} {value!r} is not in the vocabulary")
    return kept

"""Imports into inventory YAML: the result every import gives, and CSV registers."""

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
from auditor.core.iso3166 import country_code

_CSV_COLUMNS = (
    "id", "name", "vendor", "vendor_country", "category", "role", "data_categories",
    "endpoints", "hosting", "support", "dpf_certified", "dpa_signed",
)  # fmt: skip
_SLUG_CHARS = re.compile(r"[^a-z0-9-]+")


@dataclass
class ImportResult:
    """The inventory entries made; what could not be mapped or must be confirmed (each naming
    its source, entry and field); and notes on what the inventory has no field for."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self, source: str) -> str:
        """Inventory YAML with the problems as TODO comments (and the notes as NOTE comments)
        above each entry."""
        header = f"# Imported from {source} by gdpr-auditor import; complete every TODO.\n"
        if not self.entries:
            return header + "integrations: []\n"
        parts = [header + "integrations:\n"]
        for entry in self.entries:
            todos = entry.pop("_todo", [])
            lines = [f"  # TODO: {todo}" for todo in todos]
            lines += [f"  # NOTE: {note}" for note in entry.pop("_note", [])]
            text = yaml.safe_dump([entry], sort_keys=False, default_flow_style=None, width=100)
            lines += ["  " + line for line in text.splitlines()]
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts)


def slug(text: str) -> str:
    """A lower-case inventory id from a key or name."""
    return _SLUG_CHARS.sub("-", text.lower().replace("_", "-")).strip("-")[:63] or "unnamed"


def stub(ident: str, name: str) -> dict[str, Any]:
    """An inventory entry to fill in, with its TODO and NOTE lists (taken out when written)."""
    return {
        "id": ident,
        "name": name,
        "category": "other",
        "role": "processor",
        "data_categories": [],
        "hosting": [],
        "_todo": [],
        "_note": [],
    }


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
    entry = stub(slug(cells.get("id") or name), name)

    def note(message: str) -> None:
        unmapped.append(f"{where} ({entry['id']}): {message}")
        entry["_todo"].append(message)

    if cells.get("vendor"):
        entry["vendor"] = cells["vendor"]
    if cells.get("vendor_country"):
        code = country_code(cells["vendor_country"])
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

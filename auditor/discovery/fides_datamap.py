"""The Fides data map report (one row per system and data use) regrouped into systems."""

from __future__ import annotations

from typing import Any

from auditor.core.errors import Issue
from auditor.core.yamlsource import Loc, YamlDocument
from auditor.discovery.fides_model import FidesSystem
from auditor.discovery.imports import ImportResult

REPORT_MARKERS = ("system_name",)
"""Keys of a row of today's report (`GET /api/v1/plus/datamap/minimal`, `DatamapReport`)."""
LEGACY_MARKERS = ("system.name", "system.fides_key")
"""Keys of a row of the older report (`GET /api/v1/plus/datamap/{organization}`)."""

# Today's report: these columns describe the declaration a row stands for; the others the system.
_DECLARATION = {
    "declaration_name": "name",
    "data_uses": "data_use",
    "data_categories": "data_categories",
    "data_subjects": "data_subjects",
    "retention_period": "retention_period",
    "processes_special_category_data": "processes_special_category_data",
    "special_category_legal_basis": "special_category_legal_basis",
    "data_shared_with_third_parties": "data_shared_with_third_parties",
    "third_parties": "third_parties",
    "shared_categories": "shared_categories",
    "system_undeclared_data_categories": "undeclared_data_categories",
    "data_use_undeclared_data_categories": "undeclared_data_categories",
    "features": "features",
    "flexible_legal_basis_for_processing": "flexible_legal_basis_for_processing",
    "legal_basis_for_processing": "legal_basis_for_processing",
    "impact_assessment_location": "impact_assessment_location",
}
_SYSTEM_RENAMED = {"system_name": "name"}

# The older report: its columns in fideslang's names; the others have no inventory counterpart.
_LEGACY_SYSTEM = {
    "system.fides_key": "fides_key",
    "system.name": "name",
    "third_country_combined": "third_country_transfers",
    "system.third_country_safeguards": "legal_basis_for_transfers",
    "system.data_responsibility_title": "data_responsibility_title",
    "system.joint_controller": "joint_controller",
    "system.link_to_processor_contract": "link_to_processor_contract",
    "system.egress": "egress",
}
_LEGACY_DECLARATION = {
    "unioned_data_categories": "data_categories",
    "system.privacy_declaration.data_subjects.name": "data_subjects",
    "system.privacy_declaration.name": "name",
    "dataset.retention": "retention_period",
}
_LEGACY_QUIET = frozenset({"dataset.name", "dataset.fides_key", "dataset.source_name"})
_LEGACY_HEADER = "Fides System"
"""The older report's first row gives each column's label, this one for `system.name`."""


def datamap_systems(
    doc: YamlDocument, rows: list[Any], base: Loc, result: ImportResult
) -> list[FidesSystem]:
    """The systems the report's rows describe, in the order they first appear; a row that
    names no system is reported and skipped."""
    systems: dict[str, FidesSystem] = {}
    for index, row in enumerate(rows):
        loc = (*base, index)
        if not isinstance(row, dict):
            result.unmapped.append(str(_issue(doc, loc, f"row #{index + 1}", "not a mapping")))
            continue
        legacy = any(key in row for key in LEGACY_MARKERS)
        if legacy and index == 0 and row.get("system.name") == _LEGACY_HEADER:
            continue  # the column labels
        cells = _legacy_cells(row) if legacy else _report_cells(row)
        key = _key(cells)
        if key is None:
            result.unmapped.append(str(_issue(doc, loc, f"row #{index + 1}", "names no system")))
            continue
        system = systems.setdefault(key, FidesSystem(key, {"privacy_declarations": []}))
        _merge(system, cells, loc)
    return list(systems.values())


def _issue(doc: YamlDocument, loc: Loc, entry: str, message: str) -> Issue:
    return Issue(doc.source, f"{message}, skipped", entry=entry, line=doc.line_of(loc))


# A row read as {(part, fideslang name): (column, value)}; part is "system" or "declaration".
Cells = dict[tuple[str, str], tuple[str, Any]]


def _key(cells: Cells) -> str | None:
    for name in ("fides_key", "name"):
        value = cells.get(("system", name), ("", None))[1]
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _report_cells(row: dict[str, Any]) -> Cells:
    cells: Cells = {}
    for column, value in row.items():
        column = str(column)
        if column in _DECLARATION:
            name = ("declaration", _DECLARATION[column])
            if name in cells and not value:
                continue  # the system's and the data use's undeclared categories: either may be set
            cells[name] = (column, value)
        else:
            cells[("system", _SYSTEM_RENAMED.get(column, column))] = (column, value)
    return cells


def _legacy_cells(row: dict[str, Any]) -> Cells:
    cells: Cells = {}
    others = []
    for column, value in row.items():
        column = str(column)
        if value in ("N/A", "", None) or column in _LEGACY_QUIET:
            continue
        if column in _LEGACY_SYSTEM:
            cells[("system", _LEGACY_SYSTEM[column])] = (column, value)
        elif column in _LEGACY_DECLARATION:
            name = _LEGACY_DECLARATION[column]
            if name == "data_subjects" and isinstance(value, str):
                # Names ("Job Applicant") in this report; keys (job_applicant) everywhere else.
                value = [part.strip().lower().replace(" ", "_") for part in value.split(",")]
            cells[("declaration", name)] = (column, value)
        else:
            others.append(column)
    if others:
        cells[("columns", "")] = ("", others)
    return cells


def _merge(system: FidesSystem, cells: Cells, loc: Loc) -> None:
    """Add a row's declaration to the system, and its system columns where not yet known."""
    declarations: list[dict[str, Any]] = system.data["privacy_declarations"]
    path: Loc = ("privacy_declarations", len(declarations))
    system.origin[path] = loc
    declaration: dict[str, Any] = {}
    system.origin.setdefault((), loc)
    for (part, name), (column, value) in cells.items():
        if part == "declaration":
            declaration[name] = value
            system.origin[(*path, name)] = (*loc, column)
            continue
        if part == "columns":
            system.columns.update(dict.fromkeys(value))
            continue
        known = system.data.get(name)
        if name not in system.data or known in (None, "", []):
            system.data[name] = value
            system.origin[(name,)] = (*loc, column)
        elif value not in (None, "", []) and value != known:
            message = "differs from an earlier row's value: the first was used"
            system.pending.append(((*loc, column), message))
    declarations.append(declaration)

"""Fides exports into inventory entries: fideslang manifests, the API's system list, and the data
map report, told apart by their shape."""

from __future__ import annotations

from typing import Any

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.yamlsource import Loc, YamlDocument
from auditor.discovery.fides_datamap import LEGACY_MARKERS, REPORT_MARKERS, datamap_systems
from auditor.discovery.fides_model import FidesSystem
from auditor.discovery.fides_system import map_system
from auditor.discovery.imports import ImportResult

_EXPECTED = (
    "expected a Fides export: a fideslang manifest (a 'system' list), the API's list of "
    "systems, or a data map report (its 'items', or its rows)"
)


def import_fides(doc: YamlDocument) -> ImportResult:
    """Map a Fides export to inventory entries, one per system.

    Accepted: a fideslang manifest (`system:` and `dataset:` lists; datasets describe databases,
    not integrations, and are reported as skipped), the list of systems the Fides API returns,
    and the data map report as JSON (the paged `{"items": [...]}` answer, or its rows, one per
    system and data use; also the older report whose rows name `system.name`).

    Raises:
        InvalidInputError: the document is none of these, naming the file.
    """
    result = ImportResult()
    for system in _systems(doc, result):
        map_system(doc, system, result)
    return result


def _systems(doc: YamlDocument, result: ImportResult) -> list[FidesSystem]:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return datamap_systems(doc, data["items"], ("items",), result)
    if isinstance(data, list):
        first = next((row for row in data if isinstance(row, dict)), {})
        if any(key in first for key in (*REPORT_MARKERS, *LEGACY_MARKERS)):
            return datamap_systems(doc, data, (), result)
        return _listed(doc, data, (), result)
    if isinstance(data, dict) and (
        isinstance(data.get("system"), list) or isinstance(data.get("dataset"), list)
    ):
        datasets = data.get("dataset")
        for index, dataset in enumerate(datasets if isinstance(datasets, list) else []):
            key = dataset.get("fides_key", "?") if isinstance(dataset, dict) else "?"
            message = "a database description, not an integration: skipped"
            line = doc.line_of(("dataset", index))
            result.notes.append(str(Issue(doc.source, message, entry=f"dataset {key}", line=line)))
        systems = data.get("system")
        return _listed(doc, systems if isinstance(systems, list) else [], ("system",), result)
    raise InvalidInputError([Issue(doc.source, _EXPECTED, line=1)])


def _listed(
    doc: YamlDocument, items: list[Any], base: Loc, result: ImportResult
) -> list[FidesSystem]:
    systems = []
    for index, item in enumerate(items):
        loc = (*base, index)
        key = item.get("fides_key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.strip():
            issue = Issue(doc.source, "no fides_key, skipped", entry=f"system #{index + 1}",
                          line=doc.line_of(loc))  # fmt: skip
            result.unmapped.append(str(issue))
            continue
        systems.append(FidesSystem(key.strip(), item, {(): loc}))
    return systems

"""Checks across inventory files: unique ids, and sub-processors that name an integration; each
problem with its line, found by reading the file again only when there is a problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.model import Integration
from auditor.core.suggest import did_you_mean
from auditor.core.yamlsource import Loc, YamlDocument, load_yaml

LineFinder = Callable[[Integration, Loc], int | None]
"""The line of a key (`("subprocessors", 0)`) of an integration's entry in its file."""


def check_references(
    integrations: Sequence[Integration], line_of: LineFinder | None = None
) -> list[Issue]:
    """Check ids are unique across files and every sub-processor names an integration; each
    problem names its line when `line_of` can find it."""

    def at(integration: Integration, *loc: str | int) -> int | None:
        return line_of(integration, loc) if line_of is not None else None

    issues: list[Issue] = []
    seen: dict[str, Integration] = {}
    for integration in integrations:
        first = seen.setdefault(integration.id, integration)
        if first is not integration:
            line = at(first, "id")
            where = first.source + (f":{line}" if line is not None else "")
            issues.append(
                Issue(
                    integration.source,
                    f"duplicate id, first declared in {where}",
                    entry=f"integration {integration.id!r}",
                    field="id",
                    line=at(integration, "id"),
                )
            )
    for integration in integrations:
        for index, sub in enumerate(integration.subprocessors):
            if sub == integration.id:
                message = "an integration cannot be its own sub-processor"
            elif sub not in seen:
                hint = did_you_mean(sub, seen)
                message = f"unknown integration {sub!r}{hint}: a sub-processor is the id of another integration"
            else:
                continue
            issues.append(
                Issue(
                    integration.source,
                    message,
                    entry=f"integration {integration.id!r}",
                    field=f"subprocessors[{index}]",
                    line=at(integration, "subprocessors", index),
                )
            )
    return issues


def line_finder(integrations: Sequence[Integration], paths: Mapping[str, Path]) -> LineFinder:
    """Find lines by reading an integration's file again: only for the few problems found
    after loading, so that loading itself keeps nothing but the integrations."""
    docs: dict[str, YamlDocument | None] = {}
    # An id may appear twice in one file: the nth integration with that id and source is the
    # nth entry with that id there.
    occurrence: dict[int, int] = {}
    counts: dict[tuple[str, str], int] = {}
    for integration in integrations:
        key = (integration.source, integration.id)
        occurrence[id(integration)] = counts.get(key, 0)
        counts[key] = counts.get(key, 0) + 1

    def line_of(integration: Integration, loc: Loc) -> int | None:
        if integration.source not in docs:
            path = paths.get(integration.source)
            try:
                docs[integration.source] = (
                    load_yaml(path, source=integration.source) if path else None
                )
            except InvalidInputError:
                docs[integration.source] = None
        doc = docs[integration.source]
        entries = (
            doc.data.get("integrations") if doc is not None and isinstance(doc.data, dict) else None
        )
        if doc is None or not isinstance(entries, list):
            return None
        matching = [
            index
            for index, entry in enumerate(entries)
            if isinstance(entry, dict) and entry.get("id") == integration.id
        ]
        nth = occurrence.get(id(integration), 0)
        if nth >= len(matching):
            return None
        return doc.line_of(("integrations", matching[nth], *loc))

    return line_of

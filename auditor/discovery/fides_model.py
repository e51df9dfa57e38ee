"""A Fides system as the import reads it, and the TODOs it collects: each names the file, the
line, the system and the field it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.core.errors import Issue
from auditor.core.yamlsource import Loc, YamlDocument

EMPTY: tuple[object, ...] = (None, "", [], {}, False, "Not defined")
"""Values that hold nothing (fideslang's default department is the text "Not defined")."""


@dataclass(frozen=True, slots=True)
class FidesSystem:
    """A system in fideslang's shape, and where in the document each part of it was read."""

    key: str
    data: dict[str, Any]
    origin: dict[Loc, Loc] = field(default_factory=dict)
    columns: dict[str, None] = field(default_factory=dict)  # report columns with no counterpart
    pending: list[tuple[Loc, str]] = field(default_factory=list)  # (document location, TODO)

    def loc(self, path: Loc) -> Loc:
        """The document location a path inside `data` was read from."""
        for end in range(len(path), -1, -1):
            base = self.origin.get(path[:end])
            if base is not None:
                return (*base, *path[end:])
        return path


class Notes:
    """Collects one system's TODOs and notes, each naming file, line, system and field."""

    def __init__(self, doc: YamlDocument, system: FidesSystem, entry: dict[str, Any]) -> None:
        self.doc, self.system, self.entry = doc, system, entry
        self.problems: list[str] = []

    def todo(self, path: Loc, message: str) -> None:
        """A TODO about the value at `path` in the system."""
        self.at(self.system.loc(path), message)

    def at(self, loc: Loc, message: str) -> None:
        """A TODO about the value at `loc` in the document (said once, however often asked)."""
        where = dotted(loc)
        todo = f"{where}: {message}" if where else message
        if todo in self.entry["_todo"]:
            return
        self.entry["_todo"].append(todo)
        issue = Issue(
            self.doc.source,
            message,
            entry=f"system {self.system.key!r}",
            field=where or None,
            line=self.doc.line_of(loc),
        )
        self.problems.append(str(issue))


def dotted(loc: Loc) -> str:
    """A location as a field path: `system[0].privacy_declarations[1].retention_period`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def text(value: Any) -> str | None:
    """The value when it is text with more than spaces, else None."""
    return value.strip() or None if isinstance(value, str) else None


def strings(value: Any, path: Loc, notes: Notes) -> list[str]:
    """A list of strings (a datamap cell may hold one string); anything else is a TODO."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    notes.todo(path, "not a list of text, not read")
    return []


@dataclass(frozen=True, slots=True)
class Declaration:
    index: int
    data: dict[str, Any]
    uses: tuple[str, ...]
    subjects: tuple[str, ...]

    def path(self, *rest: str | int) -> Loc:
        return ("privacy_declarations", self.index, *rest)


def read_declarations(data: dict[str, Any], notes: Notes) -> list[Declaration]:
    raw = data.get("privacy_declarations")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.todo(("privacy_declarations",), "not a list, not read")
        return []
    found = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            notes.todo(("privacy_declarations", index), "not a mapping, not read")
            continue
        path: Loc = ("privacy_declarations", index)
        uses = strings(item.get("data_use"), (*path, "data_use"), notes)
        subjects = strings(item.get("data_subjects"), (*path, "data_subjects"), notes)
        found.append(Declaration(index, item, tuple(uses), tuple(subjects)))
    return found

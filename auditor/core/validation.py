"""Turns pydantic validation errors into Issues that name file, entry, field and line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

from auditor.core.errors import Issue
from auditor.core.yamlsource import Loc, YamlDocument

EntryNamer = Callable[[Loc], tuple[str | None, Loc]]
"""Splits a location into (entry name, the rest of the location)."""


class Strict(BaseModel):
    """Base of every document model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def format_loc(loc: Loc) -> str | None:
    """Render `("hosting", 0, "region")` as `hosting[0].region`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic inserts the names of union members and function validators into locations.
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not str(part).startswith(("function-", "tagged-union["))
    )


def issues_from_validation(
    exc: ValidationError, doc: YamlDocument, entry_namer: EntryNamer | None = None, base: Loc = ()
) -> list[Issue]:
    """Return one Issue per pydantic error, located in `doc` (its values live under `base`)."""
    issues = []
    for error in exc.errors():
        loc = (*base, *_clean_loc(tuple(error["loc"])))
        entry, rest = entry_namer(loc) if entry_namer else (None, loc)
        issues.append(
            Issue(
                source=doc.source,
                message=_message(error),
                entry=entry,
                field=format_loc(rest),
                line=doc.line_of(loc),
            )
        )
    return issues


def entries_by_id(doc: YamlDocument, list_key: str, noun: str) -> EntryNamer:
    """Name entries of the list under `list_key` by their `id`, falling back to their index."""

    def namer(loc: Loc) -> tuple[str | None, Loc]:
        if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            items = doc.data.get(list_key) if isinstance(doc.data, dict) else None
            item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
            ident = item.get("id") if isinstance(item, dict) else None
            name = f"{noun} {ident!r}" if isinstance(ident, str) else f"{list_key}[{loc[1]}]"
            return name, loc[2:]
        return None, loc

    return namer


def document_schema(model: type[BaseModel], title: str, description: str) -> dict[str, Any]:
    """The JSON Schema of a YAML document `model` validates, for editors and other tools.

    The models' private class names (`_Integration`) become plain names (`Integration`), so an
    editor shows "Integration" rather than a Python detail; the dialect is JSON Schema 2020-12.
    """
    schema = model.model_json_schema(mode="validation")
    names = list(schema.get("$defs", {}))
    plain = [name.lstrip("_") or name for name in names]
    # A plain name that two definitions share, or that another already has, stays as it was.
    renames = {
        name: new if plain.count(new) == 1 and (new == name or new not in names) else name
        for name, new in zip(names, plain, strict=True)
    }

    def tidy(value: Any) -> Any:
        if isinstance(value, dict):
            tidied = {key: tidy(item) for key, item in value.items()}
            ref = tidied.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                tidied["$ref"] = "#/$defs/" + renames.get(ref[8:], ref[8:])
            if isinstance(tidied.get("title"), str) and tidied["title"] in renames:
                tidied["title"] = renames[tidied["title"]]
            return tidied
        if isinstance(value, list):
            return [tidy(item) for item in value]
        return value

    tidied = tidy(schema)
    if "$defs" in tidied:
        tidied["$defs"] = {renames[name]: item for name, item in tidied["$defs"].items()}
    head = {"$schema": JSON_SCHEMA_DIALECT, "title": title, "description": description}
    return {**head, **{key: item for key, item in tidied.items() if key not in head}}

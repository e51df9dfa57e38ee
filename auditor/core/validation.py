"""Turns pydantic validation errors into Issues that name file, entry, field and line."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

from auditor.core.errors import Issue
from auditor.core.suggest import did_you_mean
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


_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")

_KINDS = {
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "date_type": "a date YYYY-MM-DD",
    "date_parsing": "a date YYYY-MM-DD",
    "date_from_datetime_parsing": "a date YYYY-MM-DD",
    "date_from_datetime_inexact": "a date YYYY-MM-DD",
    "datetime_type": "a date and time",
    "datetime_parsing": "a date and time",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "text",
}
"""What a value should have been, by pydantic's error type."""

_EXAMPLES = {
    "a list": "[{value}]",
    "a mapping of keys to values": "{{key: value}}",
    "a date YYYY-MM-DD": "2024-03-01",
    "a date and time": "2024-03-01T09:00:00Z",
    "true or false": "false",
    "a whole number": "45",
    "a number": "2.0",
}
"""An example of each kind, written as the key's value; `{value}` is the value given."""

_LIST_EXAMPLES = {
    "hosting": "DE",
    "support": "IE",
    "regions": "aws:eu-west-1",
    "endpoints": "api.example.com",
    "data_categories": "contact",
    "subprocessors": "stratus-cloud",
    "safeguards": "scc",
    "in_scope_of": "jp-2019",
    "purposes": "journalism",
    "inventory": "inventory/",
    "zone_files": "dns/example.zone",
    "nameservers": "127.0.0.1:53",
}
"""An item to show in a list example when the value given cannot be one."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(kind: str, key: str | None, value: Any) -> str:
    """`expected a list, e.g. `hosting: [DE]`, got 'DE'` and the like."""
    if kind == "text" and key is not None and isinstance(value, int | float | date):
        # YAML read it as a number, a boolean or a date: quoting keeps it text.
        return f'expected text, e.g. `{key}: "{value}"` (in quotes), got {_shown(value)}'
    example = _EXAMPLES.get(kind)
    if example is None or key is None:
        return f"expected {kind}, got {_shown(value)}"
    if kind == "a list":
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        item = str(value) if scalar and str(value).strip() else _LIST_EXAMPLES.get(key, "a, b")
        example = example.format(value=item)
    elif kind == "a mapping of keys to values":
        example = example.format()

    return f"expected {kind}, e.g. `{key}: {example}`, got {_shown(value)}"


def _one_of(error: Any) -> str:
    """`expected one of 'crm', 'cdp' or 'other', got 'crmm' (did you mean 'crm'?)`."""
    expected = str(error.get("ctx", {}).get("expected", ""))
    choices = _LITERAL.findall(expected)
    value = error.get("input")
    hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
    return f"expected one of {expected}, got {_shown(value)}{hint}"


def _message(error: Any, key: str | None, known_keys: Sequence[str] | None) -> str:
    """The error in the words of the file's author: what was expected, with an example, and
    for a mistyped key or value the known one it is most like."""
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = did_you_mean(key or "", known_keys or ())
        if not hint and known_keys:
            hint = f" (known keys here: {', '.join(known_keys)})"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        return _one_of(error)
    if kind in _KINDS:
        return _expected(_KINDS[kind], key, error.get("input"))
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
        if "input" in error:
            message += f", got {_shown(error['input'])}"
    return message


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`list[_Job] | None` -> `_Job`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def known_keys(model: type[BaseModel] | None, loc: Loc) -> list[str] | None:
    """The keys the mapping holding `loc`'s last key may have, following `loc` through the
    model's fields; None when the model does not say (a free-form mapping)."""
    current = model
    for part in loc[:-1]:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        current = None if field is None else _model_of(field.annotation)
    if current is None:
        return None
    return [field.alias or name for name, field in current.model_fields.items()]


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic inserts the names of union members and function validators into locations.
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not str(part).startswith(("function-", "tagged-union["))
    )


def issues_from_validation(
    exc: ValidationError,
    doc: YamlDocument,
    entry_namer: EntryNamer | None = None,
    base: Loc = (),
    model: type[BaseModel] | None = None,
) -> list[Issue]:
    """Return one Issue per pydantic error, located in `doc` (its values live under `base`).

    With the `model` that was validated, an unknown key is told the known key it is most like.
    """
    issues = []
    for error in exc.errors():
        relative = _clean_loc(tuple(error["loc"]))
        loc = (*base, *relative)
        entry, rest = entry_namer(loc) if entry_namer else (None, loc)
        keys = [part for part in relative if isinstance(part, str)]
        issues.append(
            Issue(
                source=doc.source,
                message=_message(error, keys[-1] if keys else None, known_keys(model, relative)),
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

"""Checks for the table, column and filter values a configuration names; no SQL is built here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

_SCALARS = (str, bool, int, float, date)


def identifier(value: str) -> str:
    """A table or column name as written; raises ValueError for blank or padded names."""
    if not value.strip() or value != value.strip():
        raise ValueError(f"not a table or column name: {value!r}")
    return value


def table_name(value: str) -> str:
    """`name` or `schema.name`; raises ValueError otherwise."""
    schema, _, name = value.rpartition(".")
    if not name or (schema == "" and value.startswith(".")):
        raise ValueError(f"not a table name (name or schema.name): {value!r}")
    return identifier(value)


def is_filter_value(value: object) -> bool:
    """Whether a structured filter may compare a column with this value."""
    # A YAML timestamp would be a naive datetime: dates only, so that no time zone is guessed.
    return value is None or (isinstance(value, _SCALARS) and not isinstance(value, datetime))


def row_filter(value: dict[str, Any]) -> dict[str, Any]:
    """A structured filter (column -> value, a list meaning IN); raises ValueError naming the column."""
    for column, wanted in value.items():
        identifier(column)
        if isinstance(wanted, list) and not wanted:
            raise ValueError(f"filter on {column!r}: an empty list matches no row")
        items = wanted if isinstance(wanted, list) else [wanted]
        if not all(is_filter_value(item) for item in items):
            raise ValueError(
                f"filter on {column!r}: expected a string, number, boolean, date or null, "
                "or a list of them"
            )
    return value

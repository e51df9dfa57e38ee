"""Binds configured tables, columns and filters to the reflected schema: Issues naming the setting
for what is missing or mistyped, typed SQLAlchemy expressions for what is there.

Names match exactly, or ignoring case when exactly one table or column matches that way (the
reflected spelling is then used, quoted by SQLAlchemy). Filter values are checked against their
column's type: `true` fits a BOOLEAN and, as 1, MySQL's TINYINT(1); an integer fits a text column
as its decimal digits; an ISO date string fits a DATE column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Column, ColumnElement, Connection, MetaData, Table, inspect
from sqlalchemy.engine import Inspector
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from auditor.core.errors import Issue
from auditor.sources.config import FilterTerm, TableSelection
from auditor.sources.datasources import DataSource

_LISTED = 20
"""At most this many table or column names in a message."""


@dataclass(frozen=True, slots=True)
class ColumnNeed:
    """A column a setting names: `setting` is its key under the table's entry (`granted_at`)."""

    setting: str
    name: str
    holds: Literal["any", "time", "text"] = "any"  # dates or timestamps; strings


@dataclass(frozen=True, eq=False)
class BoundTable:
    """A configured table bound to its reflected definition, in its data source."""

    selection: TableSelection
    source: DataSource
    table: Table
    columns: Mapping[str, Column[Any]]  # by setting name
    conditions: tuple[ColumnElement[bool], ...]  # the filter, bound to the columns' types
    unique: frozenset[str]  # names of the columns that are unique on their own
    default_collation: str | None = None  # the table's (MySQL, MariaDB), for its text columns

    def column(self, setting: str) -> Column[Any]:
        """The column named by a setting (`key`, `granted_at`, ...)."""
        return self.columns[setting]

    def collation(self, setting: str) -> str | None:
        """The collation the column named by `setting` compares with; None: the database's."""
        declared = getattr(self.columns[setting].type, "collation", None)
        return str(declared) if declared else self.default_collation

    def is_unique(self, setting: str) -> bool:
        """Whether the column named by `setting` holds no value twice (primary key, unique)."""
        return self.columns[setting].name in self.unique


def bind_table(
    source: DataSource,
    connection: Connection,
    selection: TableSelection,
    needs: Sequence[ColumnNeed],
) -> tuple[BoundTable | None, list[Issue]]:
    """Reflect the selected table and check the needed columns and the filter against it.

    Returns the bound table, or None and at least one Issue naming the setting at fault.

    Raises:
        DataSourceError: the database could not be read (through `source.errors()`).
    """
    with source.errors():
        inspector = inspect(connection)
        table = _reflect(inspector, source, selection)
        if isinstance(table, Issue):
            return None, [table]
        unique = _unique_columns(inspector, table)
        default_collation = _default_collation(inspector, table)
    issues: list[Issue] = []
    columns: dict[str, Column[Any]] = {}
    for need in needs:
        found = _column(table, need.name)
        if found is None:
            issues.append(
                selection.ref.issue(_no_column(table, need.name, selection), need.setting)
            )
        elif need.holds == "time" and not _holds_time(found, source.dialect):
            message = f"column {found.name!r} is {_type_name(found)}, not a date or timestamp"
            issues.append(selection.ref.issue(message, need.setting))
        elif need.holds == "text" and not _holds_text(found):
            message = f"column {found.name!r} is {_type_name(found)}, not text"
            issues.append(selection.ref.issue(message, need.setting))
        else:
            columns[need.setting] = found
    conditions = []
    for term in selection.filter:
        condition, problem = _condition(table, term, selection)
        if problem is not None:
            issues.append(problem)
        elif condition is not None:
            conditions.append(condition)
    if issues:
        return None, issues
    bound = BoundTable(
        selection, source, table, columns, tuple(conditions), unique, default_collation
    )
    return bound, []


# --- reflection ------------------------------------------------------------------------------


def _reflect(inspector: Inspector, source: DataSource, selection: TableSelection) -> Table | Issue:
    name = selection.table
    names = _table_names(inspector, selection.schema)
    if name not in names:
        # SQLite finds `PEOPLE` for some questions and not for others: ask by the listed name.
        name = _one_alike(name, names) or name
    try:
        reflected = inspector.get_columns(name, schema=selection.schema)
    except NoSuchTableError:
        return _no_table(names, source, selection)
    columns = [
        Column(column["name"], column["type"], nullable=column.get("nullable", True))
        for column in reflected
    ]
    return Table(name, MetaData(), *columns, schema=selection.schema)


def _table_names(inspector: Inspector, schema: str | None) -> list[str]:
    try:
        return [*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)]
    except (SQLAlchemyError, NotImplementedError):
        return []  # a schema that does not exist, or a dialect without views


def _no_table(names: Sequence[str], source: DataSource, selection: TableSelection) -> Issue:
    where = f"schema {selection.schema!r} of " if selection.schema else ""
    listed = f"tables: {_listing(names)}" if names else "it has no tables there"
    message = (
        f"table {selection.table!r} not found in {where}data source {source.name!r} ({listed})"
    )
    return selection.ref.issue(message, "table")


def _unique_columns(inspector: Inspector, table: Table) -> frozenset[str]:
    """Columns unique on their own: a one-column primary key, unique constraint or full index."""
    name, schema = table.name, table.schema
    unique: set[str] = set()
    primary = inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or []
    if len(primary) == 1:
        unique.add(primary[0])
    try:
        constraints = inspector.get_unique_constraints(name, schema=schema)
    except NotImplementedError:
        constraints = []
    unique.update(c["column_names"][0] for c in constraints if len(c["column_names"]) == 1)
    try:
        indexes = inspector.get_indexes(name, schema=schema)
    except NotImplementedError:
        indexes = []
    for index in indexes:
        names = index.get("column_names") or []
        # A partial index (`postgresql_where`, `sqlite_where`) says nothing about other rows.
        partial = any(key.endswith("_where") and value for key, value in _options(index).items())
        if index.get("unique") and len(names) == 1 and names[0] is not None and not partial:
            unique.add(names[0])
    return frozenset(unique)


def _default_collation(inspector: Inspector, table: Table) -> str | None:
    """The table's default collation where the dialect reports one (`mysql_collate`)."""
    try:
        options = inspector.get_table_options(table.name, schema=table.schema)
    except NotImplementedError:
        return None
    found = [value for key, value in options.items() if key.endswith("_collate")]
    return str(found[0]) if found else None


def _options(index: Any) -> Mapping[str, Any]:
    options = index.get("dialect_options") or {}
    return options if isinstance(options, Mapping) else {}


def _column(table: Table, name: str) -> Column[Any] | None:
    if name in table.c:
        return table.c[name]
    alike = _one_alike(name, [column.name for column in table.c])
    return None if alike is None else table.c[alike]


def _one_alike(name: str, names: Iterable[str]) -> str | None:
    matches = [candidate for candidate in names if candidate.casefold() == name.casefold()]
    return matches[0] if len(matches) == 1 else None


def _no_column(table: Table, name: str, selection: TableSelection) -> str:
    names = [column.name for column in table.c]
    return f"column {name!r} not in table {selection.display_name} (columns: {_listing(names)})"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LISTED else "")


def _type_name(column: Column[Any]) -> str:
    try:
        return str(column.type)
    except SQLAlchemyError:
        return type(column.type).__name__


def _holds_time(column: Column[Any], dialect: str) -> bool:
    kind = column.type
    if isinstance(kind, sa.Date | sa.DateTime):
        return True
    # SQLite has no date type: ISO 8601 text (or an undeclared type) is how dates are kept.
    return dialect == "sqlite" and isinstance(kind, sa.String | sa.types.NullType)


def _holds_text(column: Column[Any]) -> bool:
    return isinstance(column.type, sa.String | sa.types.NullType)


# --- filters ---------------------------------------------------------------------------------


def _condition(
    table: Table, term: FilterTerm, selection: TableSelection
) -> tuple[ColumnElement[bool] | None, Issue | None]:
    setting = f"filter.{term.column}"
    column = _column(table, term.column)
    if column is None:
        return None, selection.ref.issue(_no_column(table, term.column, selection), setting)
    values = []
    for value in term.values:
        try:
            values.append(fit_value(value, column))
        except ValueError:
            message = f"value {value!r} does not fit column {column.name!r} ({_type_name(column)})"
            return None, selection.ref.issue(message, setting)
    parts: list[ColumnElement[bool]] = []
    if len(values) == 1:
        parts.append(column == values[0])
    elif values:
        parts.append(column.in_(values))
    if term.or_null:
        parts.append(column.is_(None))
    return (parts[0] if len(parts) == 1 else sa.or_(*parts)), None


def fit_value(value: object, column: Column[Any], *, check_length: bool = False) -> object:
    """The value converted to the column's type, so that every dialect compares or stores it the
    same way. An instant is never fitted to a DATETIME column: equality with one is never what
    a filter means, nor is a fixed instant what anonymising a timestamp means.

    Raises:
        ValueError: the value does not fit the column (or, with `check_length`, is longer than
            its string type allows).
    """
    kind = column.type
    if isinstance(kind, sa.Boolean):
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
    elif isinstance(kind, sa.Integer):
        if isinstance(value, bool | int):
            return int(value)  # MySQL's BOOLEAN is TINYINT(1)
    elif isinstance(kind, sa.Numeric | sa.Float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif isinstance(kind, sa.String):
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if check_length and kind.length is not None and len(text) > kind.length:
                raise ValueError(f"{value!r} is longer than {kind.length} characters")
            return text
    elif isinstance(kind, sa.Date) and not isinstance(kind, sa.DateTime):
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            return date.fromisoformat(value)
    elif not isinstance(kind, sa.DateTime):
        return value  # a type SQLAlchemy does not know: leave it to the database
    raise ValueError(f"{value!r} does not fit {kind}")

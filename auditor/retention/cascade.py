"""A policy's dependents bound to the reflected schema, and their SQL: counting the dependent rows
of the eligible records for the plan, and deleting them, with the shared rows only they pointed
to, inside a batch's transaction (`auditor.retention.dependents` describes the settings).

A dependent row is the record's when its key column matches the record's key, compared as
`auditor.sources.keys.keys_match` compares keys; deleting it is guarded by the record still being
eligible, checked in the same statement. Every identifier comes from a reflected `Table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, ColumnElement, Connection

from auditor.core.errors import Issue
from auditor.retention.dependents import Dependent, SharedRows
from auditor.retention.policy import RetentionPolicy
from auditor.sources.config import TableSelection
from auditor.sources.datasources import DataSource
from auditor.sources.keys import key_kind, key_text, keys_match
from auditor.sources.schema_check import BoundTable, ColumnNeed, bind_table

CHUNK = 500
"""Keys per IN (...) list."""


@dataclass(frozen=True, eq=False)
class BoundShared:
    """Shared rows bound to their table, and the tables that may point at them."""

    rows: SharedRows
    bound: BoundTable  # column "key"
    references: tuple[BoundTable, ...]  # each with column "key"

    @property
    def name(self) -> str:
        return self.rows.selection.display_name


@dataclass(frozen=True, eq=False)
class BoundDependent:
    """A dependent bound to its table (columns "key", and "shared.column" when it has shared rows)."""

    dependent: Dependent
    bound: BoundTable
    shared: BoundShared | None = None

    @property
    def name(self) -> str:
        return self.dependent.selection.display_name


@dataclass(frozen=True, eq=False)
class Owner:
    """The records dependent rows belong to: the policy's key column, the conditions a record must
    meet for its dependents to go (in scope, overdue, not held), and how to compare keys."""

    key: Column[Any]
    conditions: Sequence[ColumnElement[bool]]
    dialect: str
    collation: str | None


# --- binding ------------------------------------------------------------------------------------


def bind_dependents(
    policy: RetentionPolicy, source: DataSource, connection: Connection
) -> tuple[list[BoundDependent], list[Issue]]:
    """Bind every dependent of `policy` to the reflected schema of its data source.

    Returns the bound dependents and every problem, each naming its setting
    (`dependents[0].shared.column`).

    Raises:
        DataSourceError: the database could not be read.
    """
    bound: list[BoundDependent] = []
    issues: list[Issue] = []
    for dependent in policy.dependents:
        issues += _distinct(dependent.selection, [policy.selection])
        needs = [ColumnNeed("key", dependent.key)]
        if dependent.shared is not None:
            needs.append(ColumnNeed("shared.column", dependent.shared.column))
        found, problems = bind_table(source, connection, dependent.selection, needs)
        issues += problems
        shared = None
        if dependent.shared is not None:
            rows = dependent.shared
            issues += _distinct(rows.selection, [policy.selection, dependent.selection])
            issues += [
                issue
                for reference in rows.referenced_by
                for issue in _distinct(reference.selection, [rows.selection])
            ]
            shared, problems = _bind_shared(rows, source, connection)
            issues += problems
        if found is None:
            continue
        if shared is not None:
            issues += _check_kinds(dependent, found, shared)
        bound.append(BoundDependent(dependent, found, shared))
    return bound, issues


def _bind_shared(
    rows: SharedRows, source: DataSource, connection: Connection
) -> tuple[BoundShared | None, list[Issue]]:
    found, issues = bind_table(source, connection, rows.selection, [ColumnNeed("key", rows.key)])
    references = []
    for reference in rows.referenced_by:
        one, problems = bind_table(
            source, connection, reference.selection, [ColumnNeed("key", reference.key)]
        )
        issues += problems
        if one is not None:
            references.append(one)
    if found is None or issues:
        return None, issues
    return BoundShared(rows, found, tuple(references)), []


def _check_kinds(dependent: Dependent, found: BoundTable, shared: BoundShared) -> list[Issue]:
    column, key = found.column("shared.column"), shared.bound.column("key")
    if _kind(column) == _kind(key):
        return []
    message = (
        f"column {column.name!r} of {found.table.name!r} is {column.type} and the shared key "
        f"{key.name!r} is {key.type}: they must both hold integers or both text"
    )
    return [dependent.selection.ref.issue(message, "shared.column")]


def _distinct(mine: TableSelection, others: Sequence[TableSelection]) -> list[Issue]:
    """An Issue when `mine` names the same table as one of `others`: rows cannot depend on, or
    point at, their own table."""
    name = (mine.schema or "", mine.table.lower())
    if all(name != (other.schema or "", other.table.lower()) for other in others):
        return []
    message = f"table {mine.display_name!r} is used twice here: name another table"
    return [mine.ref.issue(message, "table")]


def _kind(column: Column[Any]) -> str:
    if isinstance(column.type, sa.Integer):
        return "integer"
    return "text" if isinstance(column.type, sa.String) else str(column.type)


# --- SQL ----------------------------------------------------------------------------------------


def count_dependents(
    connection: Connection, dependents: Sequence[BoundDependent], owner: Owner
) -> dict[str, int]:
    """How many rows of each dependent table belong to records meeting `owner.conditions`."""
    counts: dict[str, int] = {}
    for dependent in dependents:
        query = sa.select(sa.func.count()).select_from(dependent.bound.table)
        found = connection.execute(query.where(*_belongs(dependent, owner, None))).scalar_one()
        counts[dependent.name] = counts.get(dependent.name, 0) + int(found)
    return counts


def delete_dependents(
    connection: Connection, dependents: Sequence[BoundDependent], owner: Owner, keys: Sequence[Any]
) -> dict[str, int]:
    """Delete the dependent rows of the records with these keys that still meet
    `owner.conditions`, then the shared rows they pointed to that nothing points to any more;
    return the rows deleted per table. Runs in the caller's transaction."""
    deleted: dict[str, int] = {}
    for dependent in dependents:
        for start in range(0, len(keys), CHUNK):
            conditions = _belongs(dependent, owner, keys[start : start + CHUNK])
            pointed: list[Any] = []
            if dependent.shared is not None:
                column = dependent.bound.column("shared.column")
                query = sa.select(column).where(*conditions, column.is_not(None)).distinct()
                pointed = list(connection.execute(query).scalars())
            rows = connection.execute(sa.delete(dependent.bound.table).where(*conditions))
            _add(deleted, dependent.name, int(rows.rowcount))
            if dependent.shared is not None:
                gone = _delete_unreferenced(connection, dependent, dependents, pointed, owner)
                _add(deleted, dependent.shared.name, gone)
    return deleted


def _belongs(
    dependent: BoundDependent, owner: Owner, keys: Sequence[Any] | None
) -> list[ColumnElement[bool]]:
    """The dependent rows (filter applied) of an owner meeting its conditions, among `keys`."""
    column = dependent.bound.column("key")
    kind = key_kind(owner.key, column)
    collations = (owner.collation, dependent.bound.collation("key"))
    match = keys_match(owner.key, column, kind, owner.dialect, collations)
    inner = sa.select(sa.literal(1)).select_from(owner.key.table).where(match, *owner.conditions)
    conditions = list(dependent.bound.conditions)
    if keys is not None:
        inner = inner.where(owner.key.in_(keys))
        if _kind(column) == _kind(owner.key) and _kind(column) in {"integer", "text"}:
            conditions.append(column.in_(keys))  # lets an index on the dependent's key serve
    conditions.append(sa.exists(inner.correlate(dependent.bound.table)))
    return conditions


def _delete_unreferenced(
    connection: Connection,
    dependent: BoundDependent,
    dependents: Sequence[BoundDependent],
    pointed: Sequence[Any],
    owner: Owner,
) -> int:
    """Delete the shared rows among `pointed` that no row points at any more: no row of a
    dependent table pointing at the same shared table (whatever its filter), and no row of a
    `referenced_by` table (narrowed by its filter)."""
    shared = dependent.shared
    if shared is None or not pointed:
        return 0
    key, dialect = shared.bound.column("key"), owner.dialect
    links: list[tuple[BoundTable, str, Sequence[ColumnElement[bool]]]] = [
        (other.bound, "shared.column", ())
        for other in dependents
        if other.shared is not None
        and other.shared.bound.table.name == shared.bound.table.name
        and other.shared.bound.table.schema == shared.bound.table.schema
    ]
    links += [(reference, "key", reference.conditions) for reference in shared.references]
    unreferenced = []
    for table, setting, conditions in links:
        column = table.column(setting)
        collations = (table.collation(setting), shared.bound.collation("key"))
        match = keys_match(column, key, key_kind(column, key), dialect, collations)
        query = sa.select(sa.literal(1)).select_from(table.table).where(match, *conditions)
        unreferenced.append(sa.not_(sa.exists(query.correlate(shared.bound.table))))
    done = 0
    for start in range(0, len(pointed), CHUNK):
        chunk = pointed[start : start + CHUNK]
        statement = sa.delete(shared.bound.table).where(_exactly_in(key, chunk), *unreferenced)
        done += int(connection.execute(statement).rowcount)
    return done


def _exactly_in(column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """The column holds one of `values`, text compared exactly (MySQL's collations ignore case
    and trailing spaces); the plain IN lets an index serve."""
    condition = column.in_(values)
    if not isinstance(column.type, sa.String):
        return condition
    exact = [key_text(sa.literal(value, sa.String())) for value in values]
    return sa.and_(condition, key_text(column).in_(exact))


def _add(counts: dict[str, int], name: str, rows: int) -> None:
    counts[name] = counts.get(name, 0) + rows

"""Seeding a CRM template's tables for one of its policies with records whose fate is known, and
the exact state and evidence enforcing that policy must leave.

Records 1-9 are overdue, 10-14 recent, 5 is on legal hold (in a table of held keys the tests add
to the policy), and 15, overdue, is outside the policy's filter when it has one. Every record has
one row in each dependent table; when the dependent points at shared rows, each record's own row
points at a shared row of its own, records 1 and 10 share one more (10 is recent: it survives),
records 2 and 3 another (it goes with the second of them), and record 4's own shared row is also
pointed at from every `referenced_by` table (it survives). A dependent with a filter gets a decoy
row holding record 1's key but failing the filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy import Column, Connection, MetaData, Table

from auditor.core.yamlsource import parse_yaml
from auditor.retention import RetentionPolicy, parse_retention, retention_deadline
from auditor.retention.templates import template
from auditor.sources.config import FilterTerm, TableSelection

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)  # the clock of the killed worker too
RECORDS = range(1, 15)
OVERDUE = frozenset(range(1, 10))
HELD = frozenset({5})
ELIGIBLE = OVERDUE - HELD
OUTSIDE = 15
SHARED_LINKS = {1: 50, 10: 50, 2: 51, 3: 51}  # record -> the shared row it also points at
REFERENCED = 4
HOLDS = "gdpr_legal_holds"

Row = dict[str, Any]


def policy_file(name: str, policy_id: str, **overrides: Any) -> str:
    """One policy of a shipped template as a retention file of its own, with the legal-hold
    table of these tests, no share limit, and `overrides`."""
    doc = yaml.safe_load(template(name).text)
    entry = next(entry for entry in doc["policies"] if entry["id"] == policy_id)
    entry.update({"legal_hold": {"table": HOLDS, "key": "record_id"}, "max_share": 1.0})
    entry.update(overrides)
    return yaml.safe_dump({"policies": [entry]}, sort_keys=False)


def parsed(text: str) -> RetentionPolicy:
    found, issues = parse_retention(parse_yaml(text, "retention.yaml"))
    assert [] == issues
    return found[0]


def key_value(column: Column[Any], number: int) -> Any:
    """A key for `column`: the number, or its digits padded to the column's length (so that
    text keys sort as the numbers do)."""
    if isinstance(column.type, sa.Integer):
        return number
    return str(number).zfill(getattr(column.type, "length", None) or 24)


def sample(column: Column[Any], number: int) -> Any:
    """A personal value for a column: something anonymising must replace."""
    kind = column.type
    if isinstance(kind, sa.Integer):
        return number
    if isinstance(kind, sa.Numeric | sa.Float):
        return Decimal(f"{number}.5") if isinstance(kind, sa.Numeric) else number + 0.5
    if isinstance(kind, sa.DateTime):
        return datetime(2001, 1, number)  # noqa: DTZ001 (a naive column holds UTC)
    if isinstance(kind, sa.Date):
        return date(1980, 1, number)
    text = f"{column.name} of person {number}"
    length = getattr(kind, "length", None)
    return text[-length:] if length else text


class World:
    """The tables of a template in one database, seeded for one of its policies."""

    def __init__(self, metadata: MetaData, policy: RetentionPolicy) -> None:
        self.tables = metadata.tables
        self.policy = policy
        self.parent = self.tables[policy.selection.table]
        self.key = self.parent.c[policy.key]
        self.numbers = [*RECORDS, *([OUTSIDE] if policy.selection.filter else [])]
        self.counters: dict[str, int] = {}

    def holds_table(self, metadata: MetaData) -> Table:
        column = Column("record_id", self.key.type, primary_key=True, autoincrement=False)
        return Table(HOLDS, metadata, column)

    def keys(self, numbers: Iterable[int]) -> set[Any]:
        return {key_value(self.key, n) for n in numbers}

    # --- seeding ----------------------------------------------------------------------------

    def seed(self, connection: Connection) -> None:
        policy = self.policy
        deadline = retention_deadline(NOW, policy.keep_for).replace(tzinfo=None)
        rows = []
        for n in self.numbers:
            row = self._filled(self.parent, n)
            row[policy.key] = key_value(self.key, n)
            late = n in OVERDUE or n == OUTSIDE
            row[policy.timestamp] = deadline + timedelta(days=-n if late else n)
            row.update(_filter_values(policy.selection, n == OUTSIDE))
            for replacement in policy.anonymise:
                row[replacement.column] = sample(self.parent.c[replacement.column], n)
            rows.append(row)
        connection.execute(sa.insert(self.parent), rows)
        connection.execute(sa.insert(self.tables[HOLDS]), [{"record_id": key_value(self.key, 5)}])
        for index, dependent in enumerate(policy.dependents):
            self._seed_dependent(connection, index, dependent.selection, dependent.key)

    def _seed_dependent(
        self, connection: Connection, index: int, selection: TableSelection, key: str
    ) -> None:
        dependent = self.policy.dependents[index]
        table = self.tables[selection.table]
        shared = dependent.shared
        base = 100 * (index + 1)
        rows: list[Row] = []
        for n in self.numbers:
            pointed = [n] + ([SHARED_LINKS[n]] if shared and n in SHARED_LINKS else [])
            for target in pointed:
                row = {**self._filled(table, n), key: key_value(self.key, n)}
                row.update(_filter_values(selection, False))
                if shared is not None:
                    row[shared.column] = self._shared_key(index, base + target)
                rows.append(row)
        if selection.filter:
            decoy = {**self._filled(table, 1), key: key_value(self.key, 1)}
            decoy.update(_filter_values(selection, True))
            if shared is not None:
                decoy[shared.column] = self._shared_key(index, base + 60)
            rows.append(decoy)
        connection.execute(sa.insert(table), rows)
        if shared is None:
            return
        far = self.tables[shared.selection.table]
        numbers = sorted({*(base + n for n in self.numbers), base + 50, base + 51, base + 60})
        far_rows = [
            {**self._filled(far, n), shared.key: self._shared_key(index, n)} for n in numbers
        ]
        connection.execute(sa.insert(far), far_rows)
        for reference in shared.referenced_by:
            table = self.tables[reference.selection.table]
            row = {**self._filled(table, REFERENCED), **_filter_values(reference.selection, False)}
            row[reference.key] = self._shared_key(index, base + REFERENCED)
            connection.execute(sa.insert(table), [row])

    def _shared_key(self, index: int, number: int) -> Any:
        shared = self.policy.dependents[index].shared
        assert shared is not None
        return key_value(self.tables[shared.selection.table].c[shared.key], number)

    def _filled(self, table: Table, number: int) -> Row:
        """Values for the NOT NULL columns without a default, and a fresh text primary key."""
        row: Row = {}
        for column in table.columns:
            if column.primary_key:
                if not isinstance(column.type, sa.Integer):
                    count = self.counters[table.name] = self.counters.get(table.name, 0) + 1
                    row[column.name] = key_value(column, 90_000 + count)
            elif not column.nullable and column.server_default is None:
                row[column.name] = sample(column, number)
        return row

    # --- what must be left --------------------------------------------------------------------

    def snapshot(self, connection: Connection) -> dict[str, list[Row]]:
        """Every row of the policy's tables, by table."""
        return {
            name: [dict(row._mapping) for row in connection.execute(sa.select(self.tables[name]))]
            for name in self.table_names()
        }

    def table_names(self) -> list[str]:
        names = [self.parent.name]
        for dependent in self.policy.dependents:
            names.append(dependent.selection.table)
            if dependent.shared is not None:
                names.append(dependent.shared.selection.table)
                names += [r.selection.table for r in dependent.shared.referenced_by]
        return list(dict.fromkeys(names))

    def expected(self, before: Mapping[str, list[Row]], done: Iterable[int]) -> dict[str, Any]:
        """The rows left once the records `done` were processed (anonymised rows without their
        timestamp, which a database may set when they change)."""
        keys = self.keys(done)
        after = {name: list(rows) for name, rows in before.items()}
        policy = self.policy
        mine = [r for r in after[self.parent.name] if r[policy.key] in keys]
        after[self.parent.name] = [r for r in after[self.parent.name] if r[policy.key] not in keys]
        if policy.action == "anonymise":
            for row in mine:
                row = {**row, **{r.column: r.value for r in policy.anonymise}}
                after[self.parent.name].append(row)
        gone = self._dependents_gone(before, keys)
        for name, rows in gone.items():
            after[name] = [row for row in after[name] if row not in rows]
        return _comparable(after, self.parent.name, policy.timestamp, keys, self.key.name)

    def _dependents_gone(
        self, before: Mapping[str, list[Row]], keys: set[Any]
    ) -> dict[str, list[Row]]:
        """The rows of the dependent and shared tables that go with the records `keys`."""
        gone: dict[str, list[Row]] = {}
        for dependent in self.policy.dependents:
            name = dependent.selection.table
            mine = [row for row in before[name] if row[dependent.key] in keys
                    and _matches(row, dependent.selection.filter)]  # fmt: skip
            gone.setdefault(name, []).extend(mine)
            shared = dependent.shared
            if shared is None:
                continue
            pointed = {row[shared.column] for row in mine}
            still = {row[shared.column] for row in before[name] if row not in mine}
            for reference in shared.referenced_by:
                still |= {row[reference.key] for row in before[reference.selection.table]
                          if _matches(row, reference.selection.filter)}  # fmt: skip
            far = shared.selection.table
            gone.setdefault(far, []).extend(
                row for row in before[far] if row[shared.key] in pointed - still
            )
        return gone

    def deleted_per_batch(
        self, before: Mapping[str, list[Row]], batches: Sequence[Sequence[int]]
    ) -> list[dict[str, int]]:
        """The dependent and shared rows each batch deletes, by table, batch after batch."""
        counts = []
        done: list[int] = []
        previous = dict.fromkeys(self.table_names(), 0)
        for batch in batches:
            done += batch
            gone = self._dependents_gone(before, self.keys(done))
            now = {name: len(rows) for name, rows in gone.items()}
            counts.append({name: now[name] - previous.get(name, 0) for name in now})
            previous = now
        return counts


def _filter_values(selection: TableSelection, failing: bool) -> Row:
    values: Row = {}
    for index, term in enumerate(selection.filter):
        value = term.values[0] if term.values else None
        if failing and index == 0:
            value = _other(value)
        values[term.column] = value
    return values


def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{value}-other"


def _matches(row: Row, terms: Sequence[FilterTerm]) -> bool:
    return all((row[t.column] is None and t.or_null) or row[t.column] in t.values for t in terms)


def _comparable(
    tables: Mapping[str, list[Row]], parent: str, timestamp: str, keys: set[Any], key: str
) -> dict[str, Any]:
    """Rows as sorted tuples, the parent's processed rows without their timestamp."""
    result = {}
    for name, rows in tables.items():
        items = []
        for row in rows:
            if name == parent and row[key] in keys:
                row = {k: v for k, v in row.items() if k != timestamp}
            items.append(tuple(sorted((k, repr(v)) for k, v in row.items())))
        result[name] = sorted(items)
    return result


def comparable(world: World, tables: Mapping[str, list[Row]], done: Iterable[int]) -> Any:
    """A snapshot in the form `World.expected` returns."""
    return _comparable(
        tables, world.parent.name, world.policy.timestamp, world.keys(done), world.key.name
    )

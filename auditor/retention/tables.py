"""Binds a retention policy to the reflected schema of its data source and builds its SQL
conditions: in scope, overdue, held, not yet anonymised.

Every identifier comes from a reflected `Table`, so SQLAlchemy quotes it; nothing from the
configuration is pasted into SQL text. The conditions follow `auditor.retention.deadline`: on
SQLite, where dates are text, `julianday()` compares them (it reads ISO 8601 with a space or a T,
with or without an offset, which text order would not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Column, ColumnElement, Connection, Table

from auditor.core.errors import InvalidInputError, Issue
from auditor.retention.cascade import BoundDependent, Owner, bind_dependents
from auditor.retention.policy import HASH_LENGTH, HASH_PREFIX, Replacement, RetentionPolicy
from auditor.sources.datasources import DataSource, DataSources
from auditor.sources.keys import key_kind, keys_match
from auditor.sources.schema_check import BoundTable, ColumnNeed, bind_table, fit_value

_ORDERABLE = (sa.Integer, sa.Numeric, sa.Float, sa.String, sa.Date, sa.DateTime, sa.Uuid)
_JULIAN_EPOCH = 2440587.5  # the Julian day of 1970-01-01 00:00 UTC


@dataclass(frozen=True, eq=False)
class BoundPolicy:
    """A retention policy bound to its reflected table (and legal-hold table) in its data source."""

    policy: RetentionPolicy
    source: DataSource
    bound: BoundTable
    held: BoundTable | None = None
    dependents: tuple[BoundDependent, ...] = ()

    @property
    def table(self) -> Table:
        return self.bound.table

    @property
    def key(self) -> Column[Any]:
        return self.bound.column("key")

    @property
    def timestamp(self) -> Column[Any]:
        return self.bound.column("timestamp")

    @property
    def dialect(self) -> str:
        return self.source.dialect

    def column(self, replacement: Replacement) -> Column[Any]:
        """The column a replacement writes."""
        return self.bound.column(f"anonymise.{replacement.column}")

    def in_scope(self) -> list[ColumnElement[bool]]:
        """The policy's filter, and for anonymise: the record is not anonymised yet."""
        conditions = list(self.bound.conditions)
        if self.policy.action == "anonymise":
            conditions.append(self.not_anonymised())
        return conditions

    def overdue(self, deadline: datetime) -> ColumnElement[bool]:
        """The record's timestamp is before the deadline (NULL never is)."""
        return before(self.timestamp, deadline, self.dialect)

    def held_condition(self) -> ColumnElement[bool] | None:
        """The record is on legal hold; None when the policy has no legal hold."""
        hold = self.policy.legal_hold
        if hold is None:
            return None
        if self.held is not None:
            held_key = self.held.column("key")
            kind = key_kind(self.key, held_key)
            match = keys_match(held_key, self.key, kind, self.dialect)
            query = sa.select(sa.literal(1)).where(match, *self.held.conditions)
            return sa.exists(query.correlate(self.table))
        column = self.bound.column("legal_hold.column")
        if isinstance(column.type, sa.Boolean):
            return column.is_(sa.true())
        return sa.func.coalesce(column, 0) != 0  # MySQL's BOOLEAN is TINYINT(1)

    def not_held(self) -> ColumnElement[bool]:
        """The record is not on legal hold (a NULL hold flag is no hold)."""
        held = self.held_condition()
        # NOT (flag IS true) is `flag IS NOT true`, which a NULL flag passes.
        return sa.true() if held is None else sa.not_(held)

    def anonymised(self) -> ColumnElement[bool]:
        """Every anonymised column holds its replacement (never NULL, so it can be negated)."""
        parts: list[ColumnElement[bool]] = []
        for replacement in self.policy.anonymise:
            column = self.column(replacement)
            if replacement.kind == "null":
                parts.append(column.is_(None))
            elif replacement.kind == "value":
                value = fitted(replacement, column)
                same = exact_text(column, value) if isinstance(value, str) else column == value
                parts.append(sa.and_(column.is_not(None), same))
            else:
                parts.append(sa.or_(column.is_(None), keyed_hash_condition(column)))
        return sa.and_(*parts)

    def not_anonymised(self) -> ColumnElement[bool]:
        """Some anonymised column still holds something other than its replacement."""
        return sa.not_(self.anonymised())

    def eligible(self, deadline: datetime) -> list[ColumnElement[bool]]:
        """In scope, overdue and not held: the records enforcement may process."""
        return [*self.in_scope(), self.overdue(deadline), self.not_held()]

    def owner(self, deadline: datetime) -> Owner:
        """The records whose dependents go at `deadline`: the eligible ones."""
        return Owner(self.key, self.eligible(deadline), self.dialect, self.bound.collation("key"))

    def time_value(self) -> ColumnElement[Any]:
        """The timestamp as MIN() should see it (a Julian day on SQLite)."""
        if self.dialect == "sqlite":
            return sa.func.julianday(self.timestamp)
        return self.timestamp


def before(column: ColumnElement[Any], deadline: datetime, dialect: str) -> ColumnElement[bool]:
    """The column's date or instant is overdue at `deadline` (see `auditor.retention.deadline`)."""
    deadline = deadline.astimezone(UTC)
    is_date = isinstance(column.type, sa.Date) and not isinstance(column.type, sa.DateTime)
    if dialect == "sqlite":
        bound = deadline.date().isoformat() if is_date else deadline.strftime("%Y-%m-%d %H:%M:%S")
        return sa.func.julianday(column) < sa.func.julianday(sa.literal(bound))
    if is_date:
        return column < deadline.date()
    if isinstance(column.type, sa.DateTime) and not column.type.timezone:
        return column < deadline.replace(tzinfo=None)  # a naive column holds UTC (the session is)
    return column < deadline


def keyed_hash_condition(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """The (non-NULL) column holds exactly a keyed hash: `hmac:` and 64 lower-case hex digits.

    Portable SQL, case-sensitive on every engine: REPLACE matches case-sensitively even under
    MySQL's case-insensitive collations, and LENGTH(...) = 0 is not fooled by their trailing-space
    padding, where '  ' = '' holds. A value that is all ASCII has as many bytes as characters, so
    MySQL's byte LENGTH agrees.
    """
    size = len(HASH_PREFIX)
    head = sa.func.replace(sa.func.substr(column, 1, size), HASH_PREFIX, "")
    digits: ColumnElement[Any] = sa.func.substr(column, size + 1)
    for digit in "0123456789abcdef":
        digits = sa.func.replace(digits, digit, "")
    return sa.and_(
        sa.func.length(column) == HASH_LENGTH,
        sa.func.length(head) == 0,
        sa.func.length(digits) == 0,
    )


def exact_text(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """The (non-NULL) column holds exactly `text`, case and trailing spaces included (see
    `keyed_hash_condition`: `=` is case-insensitive and pads spaces under MySQL collations)."""
    if not text:
        return sa.func.length(column) == 0
    literal = sa.literal(text, sa.String())
    return sa.and_(
        sa.func.length(column) == sa.func.length(literal),
        sa.func.length(sa.func.replace(column, literal, "")) == 0,
    )


def as_instant(value: object) -> datetime | None:
    """A MIN() of `time_value()` as a UTC datetime: from a Julian day, a date or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=float(value) - _JULIAN_EPOCH)
    return None


def fitted(replacement: Replacement, column: Column[Any]) -> Any:
    """The replacement's fixed value converted to the column's type.

    Raises:
        ValueError: the value does not fit the column.
    """
    return fit_value(replacement.value, column, check_length=True)


# --- binding ------------------------------------------------------------------------------------


def bind_policy(policy: RetentionPolicy, sources: DataSources) -> BoundPolicy:
    """Check a policy against the reflected schema of its data source and bind it.

    Raises:
        InvalidInputError: the data source is not configured, or a table, column, filter value or
            replacement does not fit (each Issue names the file, the policy, the key and the line).
        DataSourceError: the data source cannot be opened or read.
    """
    if policy.source not in sources:
        listed = ", ".join(sorted(sources.settings)) or "none are configured"
        message = f"no data source named {policy.source!r} (data sources: {listed})"
        raise InvalidInputError([policy.issue(message, "source")])
    source = sources[policy.source]
    with source.connect() as connection:
        bound, issues = bind_table(source, connection, policy.selection, _needs(policy))
        held, more = _bind_held(policy, source, connection)
        dependents, rest = bind_dependents(policy, source, connection)
    issues = [_located(policy, issue) for issue in [*issues, *more, *rest]]
    if bound is not None:
        issues += _check_columns(policy, bound, held)
    if bound is None or issues:
        raise InvalidInputError(issues)
    return BoundPolicy(policy, source, bound, held, tuple(dependents))


def check_policies(policies: Sequence[RetentionPolicy], sources: DataSources) -> list[Issue]:
    """Every Issue of every policy against the reflected schemas (for `validate`).

    Raises:
        DataSourceError: a data source cannot be opened or read.
    """
    issues: list[Issue] = []
    for policy in policies:
        try:
            bind_policy(policy, sources)
        except InvalidInputError as exc:
            issues += exc.issues
    return issues


def _needs(policy: RetentionPolicy) -> list[ColumnNeed]:
    needs = [ColumnNeed("key", policy.key), ColumnNeed("timestamp", policy.timestamp, "time")]
    hold = policy.legal_hold
    if hold is not None and hold.column is not None:
        needs.append(ColumnNeed("legal_hold.column", hold.column))
    for replacement in policy.anonymise:
        holds: Literal["text", "any"] = "text" if replacement.kind == "hash" else "any"
        needs.append(ColumnNeed(f"anonymise.{replacement.column}", replacement.column, holds))
    return needs


def _bind_held(
    policy: RetentionPolicy, source: DataSource, connection: Connection
) -> tuple[BoundTable | None, list[Issue]]:
    hold = policy.legal_hold
    if hold is None or hold.table is None or hold.key is None:
        return None, []
    return bind_table(source, connection, hold.table, [ColumnNeed("key", hold.key)])


def _check_columns(
    policy: RetentionPolicy, bound: BoundTable, held: BoundTable | None
) -> list[Issue]:
    issues = []
    key = bound.column("key")
    if not isinstance(key.type, _ORDERABLE):
        issues.append(
            policy.issue(f"column {key.name!r} is {key.type}, not an orderable key", "key")
        )
    elif not bound.is_unique("key"):
        message = (
            f"column {key.name!r} is not unique on its own (no primary key, unique constraint or "
            "unique index on it alone): batches go by key range and need a unique key"
        )
        issues.append(policy.issue(message, "key"))
    if policy.legal_hold is not None and policy.legal_hold.column is not None:
        flag = bound.column("legal_hold.column")
        if not isinstance(flag.type, sa.Boolean | sa.Integer):
            message = f"column {flag.name!r} is {flag.type}, not a boolean"
            issues.append(policy.issue(message, "legal_hold.column"))
    if held is not None and (held.table.name, held.table.schema) == (
        bound.table.name,
        bound.table.schema,
    ):
        message = "the legal-hold table must be another table than the policy's"
        issues.append(policy.issue(message, "legal_hold.table"))
    for replacement in policy.anonymise:
        problem = _replacement_problem(replacement, bound.column(f"anonymise.{replacement.column}"))
        if problem is not None:
            issues.append(policy.issue(problem, f"anonymise.{replacement.column}"))
    return issues


def _replacement_problem(replacement: Replacement, column: Column[Any]) -> str | None:
    if replacement.kind == "null":
        return None if column.nullable else f"column {column.name!r} is NOT NULL: cannot be NULL"
    if replacement.kind == "hash":
        length = getattr(column.type, "length", None)
        if length is not None and length < HASH_LENGTH:
            return (
                f"column {column.name!r} holds {length} characters; a keyed hash needs "
                f"{HASH_LENGTH} ({HASH_PREFIX!r} and 64 hex digits)"
            )
        return None
    try:
        fitted(replacement, column)
    except ValueError as exc:
        return f"value does not fit column {column.name!r}: {exc}"
    return None


def _located(policy: RetentionPolicy, issue: Issue) -> Issue:
    """An Issue from the schema check, named by the policy id instead of its list position."""
    field = issue.field or ""
    prefix = policy.ref.path + "."
    if policy.ref.path and field.startswith(prefix):
        field = field.removeprefix(prefix)
    elif field == policy.ref.path:
        field = ""
    return replace(issue, entry=f"policy {policy.id!r}", field=field or None)

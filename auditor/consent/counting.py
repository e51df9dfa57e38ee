"""Counting consent coverage: the SQL pushed down to one database (an anti-join), and the merge of
two sorted streams of keys when the consents are in another data source (or the keys cannot be
compared there), whose memory is a few chunks whatever the tables' sizes."""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, FromClause, Select
from sqlalchemy.sql.util import ClauseAdapter

from auditor.consent.config import ConsentMapping
from auditor.sources.datasources import DataSource, DataSourceError
from auditor.sources.keys import KeyKind, before_day, from_day, keys_match, sort_key
from auditor.sources.schema_check import BoundTable


@dataclass(frozen=True, eq=False)
class BoundConsent:
    """A consent mapping bound to the reflected tables of its data sources."""

    mapping: ConsentMapping
    shared: BoundTable
    consents: BoundTable
    kind: KeyKind
    collations: tuple[str | None, str | None] = (None, None)  # of the subject, of the key

    @property
    def same_source(self) -> bool:
        """Whether one database holds both tables (then the pushdown path is possible)."""
        return self.shared.source is self.consents.source


# --- the SQL ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Standing:
    """Of a consent granted by the audit date: it still stands; it was withdrawn by then."""

    still: ColumnElement[bool]
    ended: ColumnElement[bool]


class CoverageQuery:
    """The statements of one coverage check, on aliases of the bound tables."""

    def __init__(self, bound: BoundConsent, as_of: date) -> None:
        self.bound = bound
        self.next_day = as_of + timedelta(days=1)
        self.kind = bound.kind
        self.collations = bound.collations

    def shared(self, name: str = "s") -> tuple[FromClause, ColumnElement[Any], list[Any]]:
        """An alias of the shared table, its key, and the conditions selecting shared subjects."""
        alias, conditions = _aliased(self.bound.shared, name)
        key = alias.c[self.bound.shared.column("key").name]
        if self.bound.shared.column("key").nullable:
            conditions.append(key.is_not(None))
        return alias, key, conditions

    def consents(self, name: str) -> tuple[FromClause, list[Any], _Standing]:
        """An alias of the consents table, the conditions of a consent granted by the audit date
        (purpose, filter, granted), and whether such a consent still stands or was withdrawn."""
        bound = self.bound.consents
        alias, conditions = _aliased(bound, name)
        dialect = bound.source.dialect
        conditions += [
            alias.c[bound.column("purpose").name] == self.bound.mapping.purpose,
            before_day(alias.c[bound.column("granted_at").name], self.next_day, dialect),
        ]
        if "withdrawn_at" not in bound.columns:
            return alias, conditions, _Standing(sa.true(), sa.false())
        withdrawn = alias.c[bound.column("withdrawn_at").name]
        standing = sa.or_(withdrawn.is_(None), from_day(withdrawn, self.next_day, dialect))
        return alias, conditions, _Standing(standing, before_day(withdrawn, self.next_day, dialect))

    def subject(self, alias: FromClause) -> ColumnElement[Any]:
        return alias.c[self.bound.consents.column("subject").name]

    def has_valid(self, key: ColumnElement[Any]) -> sa.Exists:
        """EXISTS a valid consent for the shared subject `key` (correlated)."""
        alias, conditions, standing = self.consents("valid")
        dialect = self.bound.shared.source.dialect
        match = keys_match(self.subject(alias), key, self.kind, dialect, self.collations)
        where = [match, *conditions, standing.still]
        return sa.select(sa.literal(1)).select_from(alias).where(*where).exists()

    def has_withdrawn(self, key: ColumnElement[Any]) -> sa.Exists:
        """EXISTS a consent granted and withdrawn by the audit date for `key` (correlated)."""
        alias, conditions, standing = self.consents("gone")
        dialect = self.bound.shared.source.dialect
        match = keys_match(self.subject(alias), key, self.kind, dialect, self.collations)
        where = [match, *conditions, standing.ended]
        return sa.select(sa.literal(1)).select_from(alias).where(*where).exists()

    def counts(self) -> Select[Any]:
        """One statement: (shared, missing, withdrawn)."""
        unique = self.bound.shared.is_unique("key")
        total_alias, total_key, total_conditions = self.shared("t")
        total = (
            sa.select(_count(total_key, unique, self.kind))
            .select_from(total_alias)
            .where(*total_conditions)
        )
        alias, key, conditions = self.shared()
        # The withdrawn subjects are few: a DISTINCT list of them, joined to the missing ones,
        # is far cheaper than asking for each missing subject.
        gone, gone_conditions, standing = self.consents("w")
        gone_key = sort_key(self.subject(gone), self.kind)
        withdrawn = (
            sa.select(gone_key.label("subject"))
            .where(*gone_conditions, standing.ended)
            .distinct()
            .subquery("withdrawn")
        )
        joined = alias.outerjoin(withdrawn, withdrawn.c.subject == sort_key(key, self.kind))
        return (
            sa.select(
                total.scalar_subquery().label("shared"),
                _count(key, unique, self.kind).label("missing"),
                (
                    sa.func.count(withdrawn.c.subject)
                    if unique
                    else sa.func.count(withdrawn.c.subject.distinct())
                ).label("withdrawn"),
            )
            .select_from(joined)
            .where(*conditions, ~self.has_valid(key))
        )

    def gaps(self, withdrawn_only: bool) -> Select[Any]:
        """The keys of the shared subjects without a valid consent, sorted as the merge sorts."""
        alias, key, conditions = self.shared()
        conditions.append(~self.has_valid(key))
        if withdrawn_only:
            conditions.append(self.has_withdrawn(key))
        ordered = sort_key(key, self.kind)
        return sa.select(ordered).select_from(alias).where(*conditions).order_by(ordered)

    def shared_keys(self) -> Select[Any]:
        """The merge's left side: the shared keys, sorted (duplicates are skipped in Python)."""
        alias, key, conditions = self.shared()
        ordered = sort_key(key, self.kind)
        return sa.select(ordered).select_from(alias).where(*conditions).order_by(ordered)

    def consent_states(self) -> Select[Any]:
        """The merge's right side: per subject with a consent granted by the audit date, sorted,
        1 if one of them still stands (a valid consent), else 0 (all withdrawn)."""
        alias, conditions, standing = self.consents("c")
        subject = sort_key(self.subject(alias), self.kind)
        valid = sa.func.max(sa.case((standing.still, 1), else_=0))
        return (
            sa.select(subject, valid)
            .select_from(alias)
            .where(subject.is_not(None), *conditions)
            .group_by(subject)
            .order_by(subject)
        )


def _aliased(bound: BoundTable, name: str) -> tuple[FromClause, list[Any]]:
    # Aliases keep the subqueries apart even when both settings name one table.
    alias = bound.table.alias(name)
    adapter = ClauseAdapter(alias)
    return alias, [adapter.traverse(condition) for condition in bound.conditions]


def _count(key: ColumnElement[Any], unique: bool, kind: KeyKind) -> ColumnElement[int]:
    # A unique key counts rows; otherwise distinct keys, in the exact form keys are compared in.
    return sa.func.count() if unique else sa.func.count(sort_key(key, kind).distinct())


def pushdown_counts(bound: BoundConsent, as_of: date) -> tuple[int, int, int]:
    statement = CoverageQuery(bound, as_of).counts()
    with bound.shared.source.connect() as connection:
        row = connection.execute(statement).one()
    shared, missing, withdrawn = (int(value or 0) for value in row)
    return shared, missing, withdrawn


# --- the merge -------------------------------------------------------------------------------
#
# The merge works a piece at a time: it takes the sorted shared keys and the sorted per-subject
# consent states up to the smaller of the two chunks' last keys, looks the keys up in a dict of
# those states, and counts with list methods, so that the per-row work runs in C. It holds at
# most one chunk of each side, whatever the sizes of the tables.

_State = int | None
"""A shared subject's consent state: 1 a valid consent, 0 all withdrawn, None none granted."""


def merge_counts(bound: BoundConsent, as_of: date, chunk_size: int) -> tuple[int, int, int]:
    shared = missing = withdrawn = 0
    with bound.shared.source.connect() as left, bound.consents.source.connect() as right:
        for keys, states in merge_streams(bound, as_of, left, right, chunk_size):
            shared += len(keys)
            gone = states.count(0)
            missing += gone + states.count(None)
            withdrawn += gone
    return shared, missing, withdrawn


def merge_streams(
    bound: BoundConsent, as_of: date, left: Connection, right: Connection, chunk_size: int
) -> Iterator[tuple[list[Any], list[_State]]]:
    """Yield pieces of (sorted distinct shared keys, their consent states).

    Raises:
        DataSourceError: a stream is not in ascending order (the databases disagree on order),
            or holds keys that cannot be compared (SQLite lets an INTEGER column hold text).
    """
    query = CoverageQuery(bound, as_of)
    keys = fetch_columns(bound.shared.source, left, query.shared_keys(), chunk_size)
    states = fetch_columns(bound.consents.source, right, query.consent_states(), chunk_size)
    try:
        yield from _pieces((column for (column,) in keys), states)
    except _OutOfOrder as exc:
        source = bound.shared.source if exc.side == "shared" else bound.consents.source
        raise DataSourceError(source.name, str(exc)) from None
    except TypeError:
        reason = "keys of different types (numbers and text) cannot be merged as integers"
        raise DataSourceError(bound.shared.source.name, reason) from None
    finally:
        # The consents left unread (subjects not shared) must not keep their query running.
        keys.close()
        states.close()


Columns = tuple[list[Any], ...]
"""A chunk of rows taken apart: one list per selected column, all of one length."""


def fetch_columns(
    source: DataSource, connection: Connection, statement: Select[Any], chunk_size: int
) -> Generator[Columns]:
    """Chunks of at most `chunk_size` rows of `statement`, as columns, streamed: never more
    than a chunk or two in memory, whatever the table."""
    if connection.dialect.driver == "psycopg":
        yield from _fetch_columns_psycopg(source, connection, statement, chunk_size)
        return
    width = len(statement.selected_columns)
    with source.errors():
        options = connection.execution_options(stream_results=True, yield_per=chunk_size)
        # Closing the result closes the server-side cursor, also when the merge stops early.
        with options.execute(statement) as result:
            # Iterating beats Result.partitions() by half on PostgreSQL.
            yield from _in_columns(iter(result), width, chunk_size)


def _fetch_columns_psycopg(
    source: DataSource, connection: Connection, statement: Select[Any], chunk_size: int
) -> Generator[Columns]:
    """`fetch_columns` with psycopg 3: its `stream()`, where the server sends the rows as it
    finds them, with no round trip per chunk, so that it reads while the merge works, and the
    rows are built in C (SQLAlchemy's result builds each in Python: three times the merge's
    time). Each row is taken apart as it comes: a chunk of psycopg's rows kept whole would
    reach the cycle collector's oldest generation, whose full collections then took half the
    merge's time. The statement binds plain values only (text, times, the filter's values),
    which need no SQLAlchemy processing, and its keys come back as the driver gives them
    (integers or text)."""
    compiled = statement.compile(dialect=connection.dialect)
    width = len(statement.selected_columns)
    driver = connection.dialect.loaded_dbapi
    with source.errors():
        raw = connection.connection.driver_connection
    assert raw is not None
    # libpq 17 hands the rows over a chunk at a time; an older one, one by one (slower).
    capabilities = getattr(driver, "capabilities", None)
    chunked = capabilities is not None and capabilities.has_stream_chunked()
    sizing = {"size": chunk_size} if chunked else {}
    try:
        with (
            raw.cursor() as cursor,
            closing(cursor.stream(str(compiled), compiled.params, **sizing)) as rows,
        ):
            # Closed before the rollback below: the open stream holds the connection's lock,
            # and closing it cancels the query when the merge stops early.
            yield from _in_columns(rows, width, chunk_size)
    except driver.Error as exc:
        # The driver's first line only: later lines (PostgreSQL's DETAIL) may quote row values.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataSourceError(source.name, reason) from None
    finally:
        raw.rollback()  # the stream's transaction: nothing was written


def _in_columns(rows: Iterator[Sequence[Any]], width: int, chunk_size: int) -> Generator[Columns]:
    """The rows in chunks of at most `chunk_size`, each taken apart into columns."""
    while True:
        columns = _take_apart(itertools.islice(rows, chunk_size), width)
        if not columns[0]:
            return
        yield columns


def _take_apart(rows: Iterator[Sequence[Any]], width: int) -> Columns:
    """The rows of one column, or of two, as columns, each row let go of once read."""
    if width == 1:
        return (list(map(operator.itemgetter(0), rows)),)
    assert width == 2, "the merge selects a key, or a subject and its state"
    columns: Columns = ([], [])
    add_first, add_second = (column.append for column in columns)
    for first, second in rows:
        add_first(first)
        add_second(second)
    return columns


def _pieces(
    key_chunks: Iterator[list[Any]], state_chunks: Iterator[Columns]
) -> Iterator[tuple[list[Any], list[_State]]]:
    keys: list[Any] = []  # sorted, distinct shared keys not merged yet
    subjects: list[Any] = []  # sorted subjects of the consent states not merged yet
    valid: list[int] = []
    last_key: Any = NOTHING
    last_subject: Any = NOTHING
    more_states = True
    while True:
        if not keys:
            chunk = next(key_chunks, None)
            if chunk is None:
                return  # the consents left belong to subjects that are not shared
            keys = keys_before(chunk, last_key)
            if not keys:
                continue
            last_key = keys[-1]
        if not subjects and more_states:
            columns = next(state_chunks, None)
            if columns is None:
                more_states = False
            else:
                subjects, valid = _consent_states(columns, last_subject)
                last_subject = subjects[-1]
        if not subjects:
            yield keys, [None] * len(keys)
            keys = []
            continue
        # Everything up to `high` is on hand on both sides: merge that much.
        high = min(keys[-1], subjects[-1])
        cut_keys = bisect.bisect_right(keys, high)
        cut_subjects = bisect.bisect_right(subjects, high)
        lookup = dict(zip(subjects[:cut_subjects], valid[:cut_subjects], strict=True))
        piece, keys = keys[:cut_keys], keys[cut_keys:]
        subjects, valid = subjects[cut_subjects:], valid[cut_subjects:]
        if piece:
            yield piece, list(map(lookup.get, piece))


def keys_before(keys: list[Any], last: Any) -> list[Any]:
    """A chunk of shared keys, checked ascending, repeats dropped."""
    if not all(map(operator.le, keys, itertools.islice(keys, 1, None))):
        raise _OutOfOrder("shared")
    if last is not NOTHING and keys and keys[0] < last:
        raise _OutOfOrder("shared")
    # Sorted, so repeats are adjacent; a shared table may list a subject twice.
    distinct = list(dict.fromkeys(keys))
    return distinct[1:] if distinct and distinct[0] == last else distinct


def _consent_states(columns: Columns, last: Any) -> tuple[list[Any], list[int]]:
    """A chunk of (subject, valid) columns, checked strictly ascending (they are grouped)."""
    subjects, valid = columns
    ascending = all(map(operator.lt, subjects, itertools.islice(subjects, 1, None)))
    if not ascending or (last is not NOTHING and not last < subjects[0]):
        raise _OutOfOrder("consent")
    return subjects, valid


class _OutOfOrder(Exception):
    def __init__(self, side: str) -> None:
        self.side = side
        # Names the side, never the keys themselves: they identify people.
        super().__init__(
            f"{side} keys arrived out of order: the databases do not sort these keys alike"
        )


NOTHING: Any = object()

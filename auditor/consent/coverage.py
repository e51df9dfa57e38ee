"""Consent coverage (GDPR Art. 49(1)(a)): how many subjects shared with an integration lack a valid
consent, counted by the database that holds them, or by a streamed merge across two databases.

A subject has a **valid consent** on the audit date D when a consent row for that subject, for the
integration's purpose (and within the consents' filter), was granted on or before D and was not
withdrawn on or before D. "On or before D" means before D+1 00:00 UTC: a timestamp with a time
zone is compared as the instant it is, a timestamp without one is read as UTC, a date column as
the date. So a consent granted at 23:59:59 UTC on D counts, one granted at 00:00 on D+1 (a
future-dated grant) does not, and a withdrawal at any time on D ends it on D.

Of the shared subjects (the distinct non-null keys of the selected rows), **missing** counts
those with no valid consent; **withdrawn** counts those among them whose latest consent granted
by D was withdrawn by D: withdrawn, yet still shared. A subject whose only consents are for
another purpose, or granted after D, is missing but not withdrawn.

Keys name the same subject when they are equal integers (both key columns integer) or have
identical text (otherwise: case, spaces and zero padding matter, so `9` and `09` differ, as do
`abc` and `ABC`, on every database whatever its collation).

- **pushdown** (both tables in one data source): one statement, a NOT EXISTS anti-join for the
  missing, a join with the (few) distinct withdrawn subjects, and a count of the shared; only the
  three counts come back.
- **merge** (two data sources, or when asked): each side streamed sorted by key through a
  server-side cursor in chunks, the consents reduced in SQL to one row per subject (has a valid
  consent?), and the two streams merged in Python in constant memory. Both sides sort integers
  as integers and text by code point (see `schema_check.key_text`); a stream found out of order
  stops the merge with a DataSourceError rather than miscounting.

Indexes to ask the DPO for (PostgreSQL names; the same columns elsewhere): on the consents,
`(subject, purpose, granted_at) INCLUDE (withdrawn_at)`, which answers the anti-join's probe and
gives the merge its subjects in order, and `(withdrawn_at) INCLUDE (subject, purpose, granted_at)
WHERE withdrawn_at IS NOT NULL`, which lists the few withdrawals without reading the table; on
the shared table, its primary key. Text keys merged across databases sort fastest with an index
on `(key COLLATE "C")` on PostgreSQL.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, FromClause, Select
from sqlalchemy.sql.util import ClauseAdapter

from auditor.consent.config import ConsentMapping, ConsentRecords
from auditor.core.consents import ConsentCoverage, Path
from auditor.core.errors import InvalidInputError, Issue
from auditor.sources.datasources import DataSource, DataSourceError, DataSources
from auditor.sources.schema_check import (
    BoundTable,
    ColumnNeed,
    KeyKind,
    before_day,
    bind_table,
    from_day,
    key_kind,
    keys_match,
    sort_key,
)

CHUNK_SIZE = 10_000
"""Rows fetched per round trip by the merge: its memory is a few chunks, whatever the tables."""


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


def bind_consent(mapping: ConsentMapping, sources: DataSources) -> BoundConsent:
    """Check a consent mapping against the schema of its data sources and bind it.

    Raises:
        InvalidInputError: a table, column or filter value does not fit (each Issue names the
            setting, e.g. `consent.mailchimp.shared.key`).
        DataSourceError: a data source cannot be opened or read.
        TypeError: the mapping's consents are the imported ones (see `bind_imported`).
    """
    records = mapping.consents
    if not isinstance(records, ConsentRecords):
        raise TypeError(f"consent.{mapping.integration}: imported consents have no table to bind")
    consents_source = sources[records.selection.source]
    shared, issues = _bind_shared(mapping, sources)
    needs = [
        ColumnNeed("subject", records.subject),
        ColumnNeed("purpose", records.purpose, "text"),
        ColumnNeed("granted_at", records.granted_at, "time"),
    ]
    if records.withdrawn_at is not None:
        needs.append(ColumnNeed("withdrawn_at", records.withdrawn_at, "time"))
    needs += [
        ColumnNeed(setting, name)
        for setting, name in (
            ("notice_version", records.notice_version),
            ("method", records.method),
        )
        if name is not None
    ]
    with consents_source.connect() as connection:
        consents, more = bind_table(consents_source, connection, records.selection, needs)
    issues += more
    if shared is None or consents is None:
        raise InvalidInputError(issues)
    kind = key_kind(shared.column("key"), consents.column("subject"))
    collations = (consents.collation("subject"), shared.collation("key"))
    return BoundConsent(mapping, shared, consents, kind, collations)


def check_consent(mappings: Mapping[str, ConsentMapping], sources: DataSources) -> list[Issue]:
    """Return every Issue of every consent mapping against the reflected schemas (for `validate`).

    Raises:
        DataSourceError: a data source cannot be opened or read.
    """
    issues: list[Issue] = []
    for mapping in mappings.values():
        if mapping.imported:
            # Imported consents are in the state store: only the shared table is the source's.
            issues += _bind_shared(mapping, sources)[1]
            continue
        try:
            bind_consent(mapping, sources)
        except InvalidInputError as exc:
            issues += exc.issues
    return issues


def bind_shared(mapping: ConsentMapping, sources: DataSources) -> BoundTable:
    """Check the mapping's shared table and key column against its schema and bind them.

    Raises:
        InvalidInputError: the table, the key column or a filter value does not fit.
        DataSourceError: the data source cannot be opened or read.
    """
    shared, issues = _bind_shared(mapping, sources)
    if shared is None:
        raise InvalidInputError(issues)
    return shared


def _bind_shared(
    mapping: ConsentMapping, sources: DataSources
) -> tuple[BoundTable | None, list[Issue]]:
    source = sources[mapping.shared.selection.source]
    with source.connect() as connection:
        return bind_table(
            source, connection, mapping.shared.selection, [ColumnNeed("key", mapping.shared.key)]
        )


def coverage(
    bound: BoundConsent,
    as_of: date,
    *,
    merge: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
    timer: Callable[[], float] = time.perf_counter,
) -> ConsentCoverage:
    """Count the shared subjects, those without a valid consent on `as_of`, and the withdrawn.

    `merge`: None picks the pushdown path when one data source holds both tables, the merge
    otherwise; True forces the merge (which works within one source too).

    Raises:
        DataSourceError: a data source cannot be reached or read, or its keys are not sorted the
            way the merge needs.
        ValueError: `merge=False` for tables in two data sources.
    """
    path = _path(bound, merge)
    started = timer()
    if path == "pushdown":
        shared, missing, withdrawn = _pushdown_counts(bound, as_of)
    else:
        shared, missing, withdrawn = _merge_counts(bound, as_of, chunk_size)
    mapping = bound.mapping
    return ConsentCoverage(
        integration=mapping.integration,
        purpose=mapping.purpose,
        as_of=as_of,
        shared=shared,
        missing=missing,
        withdrawn=withdrawn,
        path=path,
        duration_seconds=timer() - started,
    )


def gaps(
    bound: BoundConsent,
    as_of: date,
    *,
    withdrawn_only: bool = False,
    merge: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[str]:
    """Yield the keys of the shared subjects without a valid consent on `as_of`, sorted, as text
    (only the withdrawn ones with `withdrawn_only`); for the operator, never for logs or metrics.

    The keys are streamed: close the iterator (or exhaust it) to release the connections.

    Raises:
        DataSourceError: as `coverage`, while iterating.
    """
    if _path(bound, merge) == "merge":
        with bound.shared.source.connect() as left, bound.consents.source.connect() as right:
            for keys, states in _merge(bound, as_of, left, right, chunk_size):
                chosen = (state == 0 if withdrawn_only else state != 1 for state in states)
                yield from map(str, itertools.compress(keys, chosen))
        return
    statement = _Query(bound, as_of).gaps(withdrawn_only)
    last: Any = _NOTHING
    with bound.shared.source.connect() as connection:
        chunks = _chunks(bound.shared.source, connection, statement, chunk_size)
        with closing(chunks):
            for chunk in chunks:
                keys = _shared_keys(chunk, last)
                if keys:
                    last = keys[-1]
                    yield from map(str, keys)


def _path(bound: BoundConsent, merge: bool | None) -> Path:
    if merge is False and not bound.same_source:
        raise ValueError("the pushdown path needs both tables in one data source")
    return "merge" if merge or not bound.same_source else "pushdown"


# --- the SQL ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Standing:
    """Of a consent granted by the audit date: it still stands; it was withdrawn by then."""

    still: ColumnElement[bool]
    ended: ColumnElement[bool]


class _Query:
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


def _pushdown_counts(bound: BoundConsent, as_of: date) -> tuple[int, int, int]:
    statement = _Query(bound, as_of).counts()
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


def _merge_counts(bound: BoundConsent, as_of: date, chunk_size: int) -> tuple[int, int, int]:
    shared = missing = withdrawn = 0
    with bound.shared.source.connect() as left, bound.consents.source.connect() as right:
        for keys, states in _merge(bound, as_of, left, right, chunk_size):
            shared += len(keys)
            gone = states.count(0)
            missing += gone + states.count(None)
            withdrawn += gone
    return shared, missing, withdrawn


def _merge(
    bound: BoundConsent, as_of: date, left: Connection, right: Connection, chunk_size: int
) -> Iterator[tuple[list[Any], list[_State]]]:
    """Yield pieces of (sorted distinct shared keys, their consent states).

    Raises:
        DataSourceError: a stream is not in ascending order (the databases disagree on order),
            or holds keys that cannot be compared (SQLite lets an INTEGER column hold text).
    """
    query = _Query(bound, as_of)
    keys = _chunks(bound.shared.source, left, query.shared_keys(), chunk_size)
    states = _chunks(bound.consents.source, right, query.consent_states(), chunk_size)
    try:
        yield from _pieces(keys, states)
    except _OutOfOrder as exc:
        source = bound.shared.source if exc.side == "shared" else bound.consents.source
        raise DataSourceError(source.name, str(exc)) from None
    except TypeError:
        reason = "keys of different types (numbers and text) cannot be merged as integers"
        raise DataSourceError(bound.shared.source.name, reason) from None
    finally:
        # The consents left unread (subjects not shared) must not keep their cursor open.
        keys.close()
        states.close()


def _chunks(
    source: DataSource, connection: Connection, statement: Select[Any], chunk_size: int
) -> Generator[list[Any]]:
    """Lists of `chunk_size` rows of `statement` (values, for one column), fetched through a
    server-side cursor `chunk_size` at a time."""
    with source.errors():
        options = connection.execution_options(stream_results=True, yield_per=chunk_size)
        # Closing the result closes the server-side cursor, also when the merge stops early.
        with options.execute(statement) as result:
            # Iterating beats Result.partitions() by half on PostgreSQL (bench/consent.py).
            rows = iter(result.scalars() if len(statement.selected_columns) == 1 else result)
            while chunk := list(itertools.islice(rows, chunk_size)):
                yield chunk


def _pieces(
    key_chunks: Iterator[list[Any]], state_chunks: Iterator[list[Any]]
) -> Iterator[tuple[list[Any], list[_State]]]:
    keys: list[Any] = []  # sorted, distinct shared keys not merged yet
    subjects: list[Any] = []  # sorted subjects of the consent states not merged yet
    valid: list[int] = []
    last_key: Any = _NOTHING
    last_subject: Any = _NOTHING
    more_states = True
    while True:
        if not keys:
            chunk = next(key_chunks, None)
            if chunk is None:
                return  # the consents left belong to subjects that are not shared
            keys = _shared_keys(chunk, last_key)
            if not keys:
                continue
            last_key = keys[-1]
        if not subjects and more_states:
            chunk = next(state_chunks, None)
            if chunk is None:
                more_states = False
            else:
                subjects, valid = _consent_states(chunk, last_subject)
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


def _shared_keys(keys: list[Any], last: Any) -> list[Any]:
    """A chunk of shared keys, checked ascending, repeats dropped."""
    if not all(map(operator.le, keys, itertools.islice(keys, 1, None))):
        raise _OutOfOrder("shared")
    if last is not _NOTHING and keys and keys[0] < last:
        raise _OutOfOrder("shared")
    # Sorted, so repeats are adjacent; a shared table may list a subject twice.
    distinct = list(dict.fromkeys(keys))
    return distinct[1:] if distinct and distinct[0] == last else distinct


def _consent_states(chunk: Sequence[Any], last: Any) -> tuple[list[Any], list[int]]:
    """A chunk of (subject, valid) rows, checked strictly ascending (they are grouped)."""
    subjects, valid = (list(column) for column in zip(*chunk, strict=True))
    ascending = all(map(operator.lt, subjects, itertools.islice(subjects, 1, None)))
    if not ascending or (last is not _NOTHING and not last < subjects[0]):
        raise _OutOfOrder("consent")
    return subjects, valid


class _OutOfOrder(Exception):
    def __init__(self, side: str) -> None:
        self.side = side
        # Names the side, never the keys themselves: they identify people.
        super().__init__(
            f"{side} keys arrived out of order: the databases do not sort these keys alike"
        )


_NOTHING: Any = object()

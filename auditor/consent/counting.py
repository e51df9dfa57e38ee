"""Counting consent coverage: one statement pushed down to the database that holds both tables
(on PostgreSQL one pass over the shared subjects, cut into key ranges its parallel workers count
side by side), or the merge of two sorted streams of keys when the consents are in another data
source (or the keys cannot be compared there), whose memory is a few chunks whatever the
tables' sizes."""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from datetime import date
from typing import Any

from sqlalchemy import Connection, Select

from auditor.consent.ranges import key_cuts
from auditor.consent.statements import BoundConsent, CoverageQuery
from auditor.sources.datasources import DataSource, DataSourceError

PUSHDOWN_SETTINGS_POSTGRESQL = (
    # Merge joins of the key-ordered scans: a hash join of the list of valid subjects, as long
    # as the shared table, spills to disk in batches at the default work_mem.
    "enable_hashjoin = off",
    # No partial scans (their maximum, in 8 kB pages: about 5 TB): a worker given part of a
    # range's shared subjects would read all of its consents (a merge join's other side is not
    # divided). The workers share out the key ranges instead (see `auditor.consent.ranges`).
    "min_parallel_table_scan_size = 715827882",
    "min_parallel_index_scan_size = 715827882",
    # A count over streamed scans gains nothing from compiling its expressions (tens to
    # hundreds of milliseconds).
    "jit = off",
)
"""Planner settings for the coverage statement's own transaction on PostgreSQL (SET LOCAL)."""


def pushdown_counts(bound: BoundConsent, as_of: date) -> tuple[int, int, int]:
    query = CoverageQuery(bound, as_of)
    cuts: list[Any] = []
    with bound.shared.source.connect() as connection:
        if connection.dialect.name == "postgresql":
            for setting in PUSHDOWN_SETTINGS_POSTGRESQL:
                connection.exec_driver_sql(f"SET LOCAL {setting}")
            if query.splittable:
                cuts = key_cuts(connection, bound.shared, bound.consents, bound.kind)
        row = connection.execute(query.counts(cuts)).one()
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

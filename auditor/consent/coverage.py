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

- **pushdown** (both tables in one data source): one statement; only the three counts come
  back. On PostgreSQL, one pass over the shared subjects, each joined to the distinct subjects
  with a valid consent and to the (few) distinct withdrawn subjects; with the indexes below and
  the planner's statistics, the keys are cut into ranges, one per process the server runs for a
  query, which its parallel workers count side by side, each range merge-joined in key order
  (see `counting.pushdown_counts` and `ranges`). Elsewhere, a count of the shared subjects and
  a NOT EXISTS anti-join for the missing, joined to the distinct withdrawn subjects.
- **merge** (two data sources, or when asked): each side streamed sorted by key in chunks (a
  server-side cursor; on PostgreSQL, rows the server sends as it reads them), the consents
  reduced in SQL to one row per subject (has a valid consent?), and the two streams merged in
  Python in constant memory. Both sides sort integers as integers and text by code point (see
  `schema_check.key_text`); a stream found out of order stops the merge with a DataSourceError
  rather than miscounting.

Indexes to ask the DPO for (PostgreSQL names; the same columns elsewhere): on the consents,
`(subject, purpose, granted_at) INCLUDE (withdrawn_at)`, which gives both paths the subjects
with a consent in key order without reading the table, and `(withdrawn_at) INCLUDE (subject,
purpose, granted_at) WHERE withdrawn_at IS NOT NULL`, which lists the few withdrawals without
reading the table; on the shared table, its primary key (or an index on the key). Text keys
merged across databases sort fastest with an index on `(key COLLATE "C")` on PostgreSQL.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from datetime import date
from typing import Any

from auditor.consent.config import ConsentMapping, ConsentRecords
from auditor.consent.counting import (
    NOTHING,
    fetch_columns,
    keys_before,
    merge_counts,
    merge_streams,
    pushdown_counts,
)
from auditor.consent.statements import BoundConsent, CoverageQuery
from auditor.core.consents import ConsentCoverage, Path
from auditor.core.errors import InvalidInputError, Issue
from auditor.sources.datasources import DataSources
from auditor.sources.keys import key_kind
from auditor.sources.schema_check import BoundTable, ColumnNeed, bind_table

CHUNK_SIZE = 10_000
"""Rows fetched per round trip by the merge: its memory is a few chunks, whatever the tables."""


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
        counts = pushdown_counts(bound, as_of)
    else:
        counts = merge_counts(bound, as_of, chunk_size)
    return counted(bound.mapping, as_of, counts, path, timer() - started)


def counted(
    mapping: ConsentMapping,
    as_of: date,
    counts: tuple[int, int, int],
    path: Path,
    duration_seconds: float,
) -> ConsentCoverage:
    """The coverage of a mapping from its (shared, missing, withdrawn) counts, in that order."""
    return ConsentCoverage(
        mapping.integration, mapping.purpose, as_of, *counts, path, duration_seconds
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
            for keys, states in merge_streams(bound, as_of, left, right, chunk_size):
                chosen = (state == 0 if withdrawn_only else state != 1 for state in states)
                yield from map(str, itertools.compress(keys, chosen))
        return
    statement = CoverageQuery(bound, as_of).gaps(withdrawn_only)
    last: Any = NOTHING
    with bound.shared.source.connect() as connection:
        chunks = fetch_columns(bound.shared.source, connection, statement, chunk_size)
        with closing(chunks):
            for (chunk,) in chunks:
                keys = keys_before(chunk, last)
                if keys:
                    last = keys[-1]
                    yield from map(str, keys)


def _path(bound: BoundConsent, merge: bool | None) -> Path:
    if merge is False and not bound.same_source:
        raise ValueError("the pushdown path needs both tables in one data source")
    return "merge" if merge or not bound.same_source else "pushdown"

"""Consent coverage against imported consents: the shared subjects' keys streamed from the
organisation's database, hashed with the subject key, and looked up in the state store in batches.

The consents imported with `gdpr-auditor consent import` hold only keyed hashes (HMAC-SHA256 with
GDPR_AUDITOR_SUBJECT_KEY) of the subject keys. A shared key is hashed as its canonical text (the
integer's decimal digits, or the text itself, as `auditor.sources.schema_check.key_text` gives
it), which is how the import hashes the export's keys, so a key matches exactly when the two
texts are identical, as on the SQL paths.

The valid, missing and withdrawn subjects are those of `auditor.consent.coverage`, with the
imported consents of the mapping's purpose in the place of a consents table. The keys come
sorted, one batch at a time (one `IN` lookup of `BATCH_SIZE` hashes each), so memory stays flat
whatever the size of the shared table.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter

from auditor.consent.config import ConsentMapping
from auditor.consent.coverage import bind_shared, counted
from auditor.consent.imports import SubjectHasher
from auditor.core.consents import ConsentCoverage
from auditor.sources.datasources import DataSourceError, DataSources
from auditor.sources.keys import KeyKind, key_kind, sort_key
from auditor.sources.schema_check import BoundTable

BATCH_SIZE = 1000
"""Shared keys fetched, hashed and looked up per round trip."""


class ImportedConsentLookup(Protocol):
    """Where imported consents are looked up: the state store."""

    def imported_consent_states(
        self, purpose: str, hashes: Collection[str], as_of: date
    ) -> Mapping[str, int]:
        """Of `hashes`, those with a consent for `purpose` granted by the end of `as_of`: 1 if
        one still stands that day, 0 if all were withdrawn by then."""
        ...


@dataclass(frozen=True, eq=False)
class BoundImported:
    """A consent mapping with imported consents, its shared table bound to the reflected one."""

    mapping: ConsentMapping
    shared: BoundTable
    kind: KeyKind


def bind_imported(mapping: ConsentMapping, sources: DataSources) -> BoundImported:
    """Check the shared table of a mapping with imported consents and bind it.

    Raises:
        ValueError: the mapping's consents are a table, not the imported ones.
        InvalidInputError: the table, its key column or a filter value does not fit.
        DataSourceError: the data source cannot be opened or read.
    """
    if not mapping.imported:
        raise ValueError(f"consent.{mapping.integration}: its consents are a table, not imported")
    shared = bind_shared(mapping, sources)
    key = shared.column("key")
    return BoundImported(mapping, shared, key_kind(key, key))


def imported_coverage(
    bound: BoundImported,
    as_of: date,
    lookup: ImportedConsentLookup,
    hasher: SubjectHasher,
    *,
    batch_size: int = BATCH_SIZE,
    timer: Callable[[], float] = time.perf_counter,
) -> ConsentCoverage:
    """Count the shared subjects, those without a valid imported consent on `as_of`, and the
    withdrawn, as `auditor.consent.coverage.coverage` does.

    Raises:
        DataSourceError: the organisation's database cannot be reached or read.
        StoreError: the state database cannot be read.
    """
    started = timer()
    shared = missing = withdrawn = 0
    for keys, states in _states(bound, as_of, lookup, hasher, batch_size):
        shared += len(keys)
        gone = states.count(0)
        missing += gone + states.count(None)
        withdrawn += gone
    counts = (shared, missing, withdrawn)
    return counted(bound.mapping, as_of, counts, "imported", timer() - started)


def imported_gaps(
    bound: BoundImported,
    as_of: date,
    lookup: ImportedConsentLookup,
    hasher: SubjectHasher,
    *,
    withdrawn_only: bool = False,
    batch_size: int = BATCH_SIZE,
) -> Iterator[str]:
    """Yield the keys of the shared subjects without a valid imported consent on `as_of`, in
    key order, as text (only the withdrawn ones with `withdrawn_only`); for the operator only.

    Raises:
        DataSourceError, StoreError: as `imported_coverage`, while iterating.
    """
    for keys, states in _states(bound, as_of, lookup, hasher, batch_size):
        chosen = (state == 0 if withdrawn_only else state != 1 for state in states)
        yield from itertools.compress(keys, chosen)


def _states(
    bound: BoundImported,
    as_of: date,
    lookup: ImportedConsentLookup,
    hasher: SubjectHasher,
    batch_size: int,
) -> Iterator[tuple[list[str], list[int | None]]]:
    """Batches of (distinct shared keys as text, their consent states: 1, 0 or None)."""
    purpose = bound.mapping.purpose
    for keys in _key_batches(bound, batch_size):
        hashes = [hasher(key) for key in keys]
        found = lookup.imported_consent_states(purpose, hashes, as_of)
        yield keys, [found.get(digest) for digest in hashes]


def _key_batches(bound: BoundImported, batch_size: int) -> Iterator[list[str]]:
    """The distinct non-null shared keys as text, in key order, `batch_size` at a time."""
    table = bound.shared
    alias = table.table.alias("s")
    adapter = ClauseAdapter(alias)
    key = alias.c[table.column("key").name]
    ordered = sort_key(key, bound.kind)
    conditions = [adapter.traverse(condition) for condition in table.conditions]
    statement = sa.select(ordered).select_from(alias).where(key.is_not(None), *conditions)
    if not table.is_unique("key"):
        statement = statement.distinct()
    statement = statement.order_by(ordered)
    source = table.source
    last: Any = _NOTHING
    with source.connect() as connection:
        options = connection.execution_options(stream_results=True, yield_per=batch_size)
        with options.execute(statement) as result:
            rows = iter(result.scalars())
            while chunk := list(itertools.islice(rows, batch_size)):
                keys = _ascending(chunk, last, source.name)
                if keys:
                    last = keys[-1]
                    yield [str(key) for key in keys]


def _ascending(chunk: list[Any], last: Any, source: str) -> list[Any]:
    """A chunk of keys checked ascending, repeats dropped (they are adjacent when sorted)."""
    try:
        ordered = all(map(operator.le, chunk, itertools.islice(chunk, 1, None)))
        ordered = ordered and (last is _NOTHING or not chunk[0] < last)
    except TypeError:
        # SQLite lets an INTEGER column hold text; such keys do not compare.
        reason = "shared keys of different types (numbers and text) in one integer column"
        raise DataSourceError(source, reason) from None
    if not ordered:
        raise DataSourceError(source, "shared keys arrived out of order")
    distinct = list(dict.fromkeys(chunk))
    return distinct[1:] if distinct[0] == last else distinct


_NOTHING: Any = object()

"""Imported consents (keyed hashes only) and the latest consent coverage per integration, inside
the caller's transaction.

An imported consent is identified by (subject hash, purpose, granted at): importing a file again
finds its rows and changes nothing. A later export that records the withdrawal of a consent
imported before sets its withdrawal; a recorded withdrawal is never cleared or moved later (a
consent withdrawn once stays withdrawn from then on; a new consent has a new grant time).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, or_, select, update

from auditor.core.consents import ConsentCoverage, ImportedConsent
from auditor.store.records import record_of
from auditor.store.schema import consent_coverage, imported_consents

IMPORT_BATCH = 1000
"""Rows of an export looked up and written per statement."""


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What one import did: rows read, consents inserted, withdrawals recorded, the rest known."""

    read: int
    inserted: int
    updated: int

    @property
    def already_present(self) -> int:
        """Rows the store held already (a file imported again, or a row repeated in it)."""
        return self.read - self.inserted - self.updated


@dataclass(frozen=True, slots=True)
class StoredCoverage:
    """The latest consent check of one integration as stored: the counts of the last successful
    one (None before the first), and the failure since then, if the last attempt failed."""

    integration: str
    purpose: str
    coverage: ConsentCoverage | None
    checked_at: datetime | None
    failed_at: datetime | None
    error: str | None

    @property
    def stale(self) -> bool:
        """Whether the last attempt failed: the counts, if any, are from an earlier check."""
        return self.failed_at is not None


# --- imports ------------------------------------------------------------------------------------


def import_rows(
    conn: Connection,
    purpose: str,
    rows: Iterable[ImportedConsent],
    *,
    digest: str,
    at: datetime,
    batch_size: int = IMPORT_BATCH,
) -> ImportCounts:
    """Insert the consents not stored yet and record withdrawals of stored ones, a batch at a
    time (memory stays flat); an exception from `rows` leaves the rollback to the caller."""
    read = inserted = updated = 0
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, batch_size)):
        read += len(batch)
        known = _known(conn, purpose, {row.subject_hash for row in batch})
        new: dict[tuple[str, datetime], ImportedConsent] = {}
        withdrawals: dict[int, datetime] = {}
        for row in batch:
            identity = (row.subject_hash, row.granted_at)
            stored = known.get(identity)
            if stored is not None:
                stored_id, stored_withdrawn = stored
                withdrawn = row.withdrawn_at
                if withdrawn is not None and _earlier(withdrawn, stored_withdrawn):
                    withdrawals[stored_id] = withdrawn
                    known[identity] = (stored_id, withdrawn)
                continue
            first = new.get(identity)
            if first is None or _earlier(row.withdrawn_at, first.withdrawn_at):
                new[identity] = row
        if new:
            conn.execute(
                insert(imported_consents),
                [
                    {
                        "subject_hash": row.subject_hash,
                        "purpose": purpose,
                        "granted_at": row.granted_at,
                        "withdrawn_at": row.withdrawn_at,
                        "source_digest": digest,
                        "imported_at": at,
                    }
                    for row in new.values()
                ],
            )
        if withdrawals:
            conn.execute(
                update(imported_consents)
                .where(imported_consents.c.id == bindparam("b_id"))
                .values(
                    withdrawn_at=bindparam("b_withdrawn"), updated_digest=digest, updated_at=at
                ),
                [{"b_id": key, "b_withdrawn": when} for key, when in withdrawals.items()],
            )
        # A row repeated in the file counts once: as inserted, the repeats as already present.
        inserted += len(new)
        updated += len(withdrawals)
    return ImportCounts(read, inserted, updated)


def _known(
    conn: Connection, purpose: str, hashes: Collection[str]
) -> dict[tuple[str, datetime], tuple[int, datetime | None]]:
    rows = conn.execute(
        select(
            imported_consents.c.id,
            imported_consents.c.subject_hash,
            imported_consents.c.granted_at,
            imported_consents.c.withdrawn_at,
        ).where(
            imported_consents.c.purpose == purpose,
            imported_consents.c.subject_hash.in_(sorted(hashes)),
        )
    )
    return {(row.subject_hash, row.granted_at): (int(row.id), row.withdrawn_at) for row in rows}


def _earlier(candidate: datetime | None, current: datetime | None) -> bool:
    """Whether a withdrawal at `candidate` ends a consent sooner than one at `current`."""
    return candidate is not None and (current is None or candidate < current)


def consent_states(
    conn: Connection, purpose: str, hashes: Collection[str], as_of: date
) -> dict[str, int]:
    """For the subjects of `hashes` with a consent for `purpose` granted by the end of `as_of`:
    1 when one of them still stands that day, 0 when all were withdrawn by then. Subjects with
    none are left out."""
    if not hashes:
        return {}
    next_day = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
    table = imported_consents
    standing = or_(table.c.withdrawn_at.is_(None), table.c.withdrawn_at >= next_day)
    rows = conn.execute(
        select(table.c.subject_hash, func.max(case((standing, 1), else_=0)))
        .where(
            table.c.purpose == purpose,
            table.c.subject_hash.in_(sorted(hashes)),
            table.c.granted_at < next_day,
        )
        .group_by(table.c.subject_hash)
    )
    return {subject: int(valid) for subject, valid in rows}


def imported_count(conn: Connection, purpose: str | None = None) -> int:
    """How many consents are imported (for `purpose`, if given)."""
    query = select(func.count()).select_from(imported_consents)
    if purpose is not None:
        query = query.where(imported_consents.c.purpose == purpose)
    return int(conn.execute(query).scalar_one())


# --- coverage -----------------------------------------------------------------------------------


COVERAGE_COUNTS = ("purpose", "as_of", "shared", "missing", "withdrawn", "path")
"""What one consent check found, as the coverage table and the evidence record hold it."""


def coverage_counts(result: ConsentCoverage) -> dict[str, Any]:
    """The COVERAGE_COUNTS of `result`, by name."""
    return {name: getattr(result, name) for name in COVERAGE_COUNTS}


def save_coverage(
    conn: Connection,
    results: Sequence[ConsentCoverage],
    failures: Mapping[str, tuple[str, str]],
    at: datetime,
    keep: Collection[str],
) -> None:
    """Store fresh results, mark the integrations whose check failed (integration -> (purpose,
    error)) as stale, keeping their last counts, and forget integrations not in `keep`."""
    conn.execute(delete(consent_coverage).where(consent_coverage.c.integration.not_in(keep)))
    stored = set(conn.execute(select(consent_coverage.c.integration)).scalars())
    for result in results:
        values: dict[str, Any] = {
            **coverage_counts(result),
            "duration_seconds": result.duration_seconds,
            "checked_at": at,
            "failed_at": None,
            "error": None,
        }
        _upsert(conn, result.integration, values, result.integration in stored)
    for integration, (purpose, error) in failures.items():
        values = {"purpose": purpose, "failed_at": at, "error": error}
        _upsert(conn, integration, values, integration in stored)


def _upsert(conn: Connection, integration: str, values: dict[str, Any], stored: bool) -> None:
    if stored:
        conn.execute(
            update(consent_coverage)
            .where(consent_coverage.c.integration == integration)
            .values(**values)
        )
    else:
        conn.execute(insert(consent_coverage).values(integration=integration, **values))


def load_coverage(conn: Connection) -> dict[str, StoredCoverage]:
    """The stored coverage of every integration, by integration id."""
    rows = conn.execute(select(consent_coverage).order_by(consent_coverage.c.integration))
    return {row.integration: _stored(row) for row in rows}


def _stored(row: Any) -> StoredCoverage:
    coverage = None
    if row.checked_at is not None:
        coverage = record_of(
            ConsentCoverage,
            row,
            shared=int(row.shared),
            missing=int(row.missing),
            withdrawn=int(row.withdrawn),
            duration_seconds=float(row.duration_seconds or 0.0),
        )
    return record_of(StoredCoverage, row, coverage=coverage)

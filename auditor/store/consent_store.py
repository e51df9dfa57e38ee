"""The state store's consents aggregate: imported consents and consent coverage."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from auditor.core.consents import ConsentCoverage, ImportedConsent
from auditor.core.model import Finding
from auditor.store import consents, evidence
from auditor.store.connection import StoreConnection
from auditor.store.consents import ImportCounts, StoredCoverage
from auditor.store.recording import (
    FindingChanges,
    apply_findings,
    job_scope,
)


class ConsentStore(StoreConnection):
    """Imported consents and the coverage each consent check measured."""

    def import_consents(
        self,
        purpose: str,
        rows: Iterable[ImportedConsent],
        *,
        digest: str,
        at: datetime,
        evidence_content: Mapping[str, Any] | None = None,
        batch_size: int = consents.IMPORT_BATCH,
    ) -> ImportCounts:
        """Import consents for `purpose` in one transaction, with a `consent-import` evidence
        record (the file's digest, the purpose and the counts; never a subject key).

        Raises:
            Exception: whatever `rows` raised (a bad row); nothing is imported then.
            StoreError: the database refused the writes; nothing is imported.
        """
        with self._write() as conn:
            counts = consents.import_rows(
                conn, purpose, rows, digest=digest, at=at, batch_size=batch_size
            )
            content = {
                **(evidence_content or {}),
                "purpose": purpose,
                "file_sha256": digest,
                "read": counts.read,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "already_present": counts.already_present,
            }
            self._seal(conn, at, None, [("consent-import", content)])
            return counts

    def imported_consent_states(
        self, purpose: str, hashes: Collection[str], as_of: date
    ) -> dict[str, int]:
        """Of the subjects of `hashes`, those with an imported consent for `purpose` granted by
        the end of `as_of`: 1 if one still stands that day, 0 if all were withdrawn by then."""
        with self._read() as conn:
            return consents.consent_states(conn, purpose, hashes, as_of)

    def imported_consent_count(self, purpose: str | None = None) -> int:
        """How many consents are imported (for `purpose`, if given)."""
        with self._read() as conn:
            return consents.imported_count(conn, purpose)

    def consent_coverage(self) -> dict[str, StoredCoverage]:
        """The latest consent check of every integration, by integration id."""
        with self._read() as conn:
            return consents.load_coverage(conn)

    def record_consent_check(
        self,
        results: Sequence[ConsentCoverage],
        failures: Mapping[str, tuple[str, str]],
        found: Iterable[Finding],
        *,
        at: datetime,
        keep: Collection[str],
    ) -> FindingChanges:
        """Record one consent job run in one transaction: the fresh coverage, the failures
        (integration -> (purpose, error); their last counts are kept, marked stale), the
        `transfer-consent-missing` findings' lifecycle (no other rule's), and evidence: the
        finding changes and a `consent-check` record with the counts. Integrations not in
        `keep` (no longer configured) are forgotten.
        """
        with self._write() as conn:
            mark = evidence.last_event_id(conn)
            consents.save_coverage(conn, results, failures, at, keep)
            changes = apply_findings(conn, None, at, found, job_scope("consent"))
            content = {
                "checked": [
                    {"integration": result.integration, **consents.coverage_counts(result)}
                    for result in results
                ],
                "failed": sorted(failures),
                "findings_open": changes.open,
                "new": changes.new,
                "resolved": changes.resolved,
                "reopened": changes.reopened,
            }
            self._seal(conn, at, mark, [("consent-check", content)])
            return changes

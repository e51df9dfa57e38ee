"""The state store's retention aggregate: batch intents and their settlements."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from auditor.core.ledger import BatchIntent, PendingBatch, Settlement
from auditor.store import intents
from auditor.store.connection import StoreConnection


class IntentStore(StoreConnection):
    """Retention batches: intents written before a batch, settled after it."""

    def begin_retention_batch(self, intent: BatchIntent) -> int:
        """Commit a retention batch's intent before the batch runs; return its id."""
        with self._write() as conn:
            intents.bound_lock_wait(conn)
            return intents.begin(conn, intent)

    def settle_retention_batch(
        self,
        intent_id: int,
        rows: int,
        how: Settlement,
        content: Mapping[str, Any],
        at: datetime,
    ) -> int | None:
        """Settle a retention batch's intent and append its `retention-batch` record, in one
        transaction; return the rows recorded (see `RetentionLedger.settle_retention_batch`)."""
        with self._write() as conn:
            intents.bound_lock_wait(conn)
            return intents.settle(conn, intent_id, rows, how, content, at, self.evidence_key)

    def pending_retention_batches(self, policy: str) -> list[PendingBatch]:
        """The policy's retention batches whose intents are not settled yet, oldest first."""
        with self._read() as conn:
            intents.bound_lock_wait(conn)
            return intents.pending(conn, policy)

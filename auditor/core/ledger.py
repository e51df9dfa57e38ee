"""The retention ledger: a batch's intent, committed in the state database before the batch
commits anything in the data source, settled with its evidence record after it; pure.

The evidence chain and the organisation's records are in two databases, and no transaction spans
both. So a batch is written down before it runs: its policy, run, action, deadline and the keys it
may process (`BatchIntent`). Then the data source's transaction runs, then the intent is settled
in one state-database transaction together with its `retention-batch` evidence record. A process
killed (or a state database lost) between the two leaves the intent pending, and the next
reconciliation (`auditor.retention.reconcile`) finds in the data source what the batch did and
records that. The keys are kept only while the intent is pending; settling erases them.

A batch by row address (on PostgreSQL, `auditor.retention.ranges`) does not read its keys back:
its intent is committed after its statement and before its COMMIT, and names the data source's
transaction, which the data source can later say committed or not (`SourceTransaction`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

Settlement = Literal["confirmed", "reconciled"]


@dataclass(frozen=True, slots=True)
class BatchIntent:
    """A batch about to run (or run and not committed yet): what it may do, to which keys
    (encoded by `encode_key`); or, for a batch by row address, which data-source transaction
    did what to which range (`source_transaction`)."""

    policy: str
    run: str
    batch: int
    action: str
    source: str
    table: str
    deadline: datetime
    key_range: str
    key_range_keyed: bool
    keys: tuple[Any, ...]
    created_at: datetime
    source_transaction: SourceTransaction | None = None

    @property
    def planned(self) -> int:
        """How many records the batch may process: its keys, or its statement's count."""
        held = self.source_transaction
        return len(self.keys) if held is None else held.processed


@dataclass(frozen=True, slots=True)
class SourceTransaction:
    """A batch by row address, run and not committed yet: the data source's transaction that
    holds it, the server that runs it, the records its statement processed, and the range of
    row addresses it covered."""

    id: int  # PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`)
    system: str  # the server's database system identifier: its copies (replicas) share it
    started: str  # when the server started (Unix time): an id names one transaction per start
    processed: int
    start: str  # row address, "(block,line)"
    stop: str | None  # None: to the table's end


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """An intent not settled yet: its batch may or may not have committed in the data source."""

    id: int
    intent: BatchIntent


class RetentionLedger(Protocol):
    """Where intents and evidence go: the state store (`auditor.store.StateStore`)."""

    def append_evidence(self, kind: str, content: Mapping[str, Any], at: datetime) -> None:
        """Append one evidence record (a `retention-run`)."""
        ...

    def begin_retention_batch(self, intent: BatchIntent) -> int:
        """Commit the intent; return its id.

        Raises:
            StoreError: it could not be committed; the batch must not run.
        """
        ...

    def settle_retention_batch(
        self,
        intent_id: int,
        rows: int,
        how: Settlement,
        content: Mapping[str, Any],
        at: datetime,
    ) -> int | None:
        """Settle the intent with the rows its batch processed and append its `retention-batch`
        record (`content` with `rows`), in one transaction; return the rows recorded, or None when
        nothing had to be recorded.

        A batch confirmed after a reconciliation already settled it records only the
        difference (`correction: true`); a reconciliation of a settled intent records nothing.

        Raises:
            StoreError: nothing was recorded; the intent stays pending.
        """
        ...

    def pending_retention_batches(self, policy: str) -> Sequence[PendingBatch]:
        """The policy's pending intents, oldest first."""
        ...


def new_run() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex


def encode_key(value: object) -> Any:
    """A key as JSON: numbers and text as they are, other types tagged so they read back typed.

    Raises:
        TypeError: a key type no orderable key column gives.
    """
    if value is None or isinstance(value, bool):
        raise TypeError(f"not a key: {value!r}")
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    raise TypeError(f"a key of type {type(value).__name__} cannot be recorded")


def decode_key(value: Any) -> object:
    """A key from `encode_key`'s JSON.

    Raises:
        ValueError: not something `encode_key` writes.
    """
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        readers: dict[str, Any] = {
            "decimal": Decimal,
            "datetime": datetime.fromisoformat,
            "date": date.fromisoformat,
            "uuid": uuid.UUID,
            "bytes": bytes.fromhex,
        }
        if tag in readers and isinstance(text, str):
            return readers[tag](text)
    raise ValueError(f"not a recorded key: {value!r}")

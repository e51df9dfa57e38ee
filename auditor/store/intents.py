"""Retention batch intents in the state database: begun, listed while pending, and settled with
their `retention-batch` evidence record, each inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from auditor.core.ledger import BatchIntent, PendingBatch, Settlement, SourceTransaction
from auditor.store import engine as store_engine
from auditor.store import evidence
from auditor.store.records import record_of
from auditor.store.schema import retention_intents as intents

PENDING = "pending"


def bound_lock_wait(connection: Connection) -> None:
    """On PostgreSQL, make this transaction give up on a lock after the store's busy timeout (as
    SQLite's writers do) instead of waiting for ever: an intent that cannot be committed in time
    must stop the batch, not hang the job."""
    if connection.dialect.name == "postgresql":
        milliseconds = int(store_engine.BUSY_TIMEOUT_SECONDS * 1000)
        connection.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))


def begin(connection: Connection, intent: BatchIntent) -> int:
    """Insert a pending intent; return its id."""
    held = intent.source_transaction
    inserted = connection.execute(
        insert(intents)
        .values(
            policy=intent.policy,
            run=intent.run,
            batch=intent.batch,
            action=intent.action,
            source=intent.source,
            table_name=intent.table,
            deadline=intent.deadline,
            key_range=intent.key_range,
            key_range_keyed=intent.key_range_keyed,
            keys=list(intent.keys),
            planned=intent.planned,
            source_transaction=None if held is None else asdict(held),
            state=PENDING,
            created_at=intent.created_at,
        )
        .returning(intents.c.id)
    )
    return int(inserted.scalar_one())


def pending(connection: Connection, policy: str) -> list[PendingBatch]:
    """The policy's pending intents, oldest first."""
    rows = connection.execute(
        select(intents)
        .where(intents.c.policy == policy, intents.c.state == PENDING)
        .order_by(intents.c.id)
    ).all()
    return [
        PendingBatch(
            row.id,
            record_of(
                BatchIntent,
                row,
                table=row.table_name,
                key_range_keyed=bool(row.key_range_keyed),
                keys=tuple(row.keys or ()),
                source_transaction=(
                    None
                    if row.source_transaction is None
                    else SourceTransaction(**row.source_transaction)
                ),
            ),
        )
        for row in rows
    ]


def settle(
    connection: Connection,
    intent_id: int,
    rows: int,
    how: Settlement,
    content: Mapping[str, Any],
    at: datetime,
    key: bytes | None,
) -> int | None:
    """Settle the intent and append its evidence (see `RetentionLedger.settle_retention_batch`)."""
    query = select(intents.c.state, intents.c.rows).where(intents.c.id == intent_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    found = connection.execute(query).first()
    if found is None:
        raise LookupError(f"no retention intent {intent_id}")
    state, settled_rows = found
    if state != PENDING and (how == "reconciled" or state == "confirmed"):
        return None  # already recorded
    recorded = rows if state == PENDING else rows - int(settled_rows or 0)
    connection.execute(
        update(intents)
        .where(intents.c.id == intent_id)
        .values(state=how, rows=rows, keys=None, settled_at=at)
    )
    if state != PENDING and recorded == 0:
        return None  # the reconciliation found what the batch did
    document = {**content, "rows": recorded}
    if state != PENDING:
        # Reconciled while this batch was still running: record what it found too little or much.
        document["correction"] = True
    evidence.append(connection, "retention-batch", document, at, key)
    return recorded

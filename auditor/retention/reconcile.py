"""Reconciling retention batches left unsettled: what their data-source transaction did, found in
the data source and recorded as evidence.

A batch's intent stays pending when its process was killed, its data source connection was lost,
or the state database could not be written after the batch (`auditor.core.ledger`). Whether
the batch committed is then only known to the data source, and it can tell: the intent holds the
keys the batch could process, every one of them eligible when the intent was made, so

- for `delete`, the keys no longer in the table are the records the batch deleted;
- for `anonymise`, the keys whose every configured column now holds its replacement are the
  records the batch anonymised (an eligible record never has all of them already).

A record deleted or anonymised by someone else between the intent and the reconciliation counts as
the batch's too; if the batch is still running when it is reconciled, its confirmation records the
difference. An intent whose policy now has another action (or is gone) stays pending.

The dependent rows a batch deleted with its records went in the same transaction, so they are
gone whenever the records are; how many there were is not known after the fact, and the record
of a reconciled batch of a policy with dependents says so (`"dependents": null`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from auditor.core.ledger import BatchIntent, RetentionLedger, decode_key
from auditor.core.ports import Clock
from auditor.retention.tables import BoundPolicy

CHUNK = 500
"""Keys per IN (...) list."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch done: how many records it processed, and how long its transaction took."""

    index: int
    rows: int
    key_range: str  # a hash of the first and last key, never the keys
    started_at: datetime
    finished_at: datetime
    transaction_seconds: float
    reconciled: bool = False
    dependents: Mapping[str, int] | None = None  # rows deleted with the records, by table


def batch_content(
    intent: BatchIntent, batch: Batch, with_dependents: bool = False
) -> dict[str, Any]:
    """The `retention-batch` evidence record of a batch, without its rows (the ledger adds them);
    `with_dependents`: its policy has dependents, whose counts a reconciled batch cannot know."""
    content: dict[str, Any] = {
        "policy": intent.policy,
        "action": intent.action,
        "source": intent.source,
        "table": intent.table,
        "deadline": intent.deadline,
        "run": intent.run,
        "batch": batch.index,
        "key_range": batch.key_range,
        "key_range_keyed": intent.key_range_keyed,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }
    if batch.dependents is not None:
        content["dependents"] = dict(batch.dependents)
    elif with_dependents:
        content["dependents"] = None
    if batch.reconciled:
        content["reconciled"] = True
        content["planned"] = len(intent.keys)
    return content


def reconcile_policy(bound: BoundPolicy, ledger: RetentionLedger, clock: Clock) -> list[Batch]:
    """Settle the policy's pending batches with what the data source shows they did; return the
    batches recorded (their `rows` as recorded).

    Raises:
        StoreError: the state database could not be read or written; what was settled stays.
        DataSourceError: the data source could not be read; the rest stays pending.
    """
    done: list[Batch] = []
    for pending in ledger.pending_retention_batches(bound.policy.id):
        intent = pending.intent
        if intent.action != bound.policy.action:
            continue
        keys = [decode_key(key) for key in intent.keys]
        rows = processed_rows(bound, intent.action, keys)
        now = clock()
        batch = Batch(intent.batch, rows, intent.key_range, intent.created_at, now, 0.0, True)
        recorded = ledger.settle_retention_batch(
            pending.id,
            rows,
            "reconciled",
            batch_content(intent, batch, bool(bound.dependents)),
            now,
        )
        if recorded is not None:
            done.append(replace(batch, rows=recorded))
    return done


def processed_rows(bound: BoundPolicy, action: str, keys: Sequence[Any]) -> int:
    """How many of `keys` are now deleted (`delete`) or fully anonymised (`anonymise`)."""
    key = bound.key
    total = 0
    with bound.source.connect() as connection, connection.begin():
        for start in range(0, len(keys), CHUNK):
            chunk = list(keys[start : start + CHUNK])
            conditions: list[sa.ColumnElement[bool]] = [key.in_(chunk)]
            if action == "anonymise":
                conditions.append(bound.anonymised())
            found = connection.execute(
                sa.select(sa.func.count()).select_from(bound.table).where(*conditions)
            ).scalar_one()
            total += len(chunk) - int(found) if action == "delete" else int(found)
    return total

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

A batch by row address (`auditor.retention.ranges`) names its data-source transaction instead of
its keys: its intent is committed after its statement, with the records it processed, and before
its COMMIT. PostgreSQL tells that transaction's fate (`pg_xact_status`) in the history of the
server's data, which its replicas share (the same database system identifier):

- aborted, or an id not given yet (the history rewound past it): nothing, since a batch
  committed in this history would be known as committed;
- committed, on a server running since the batch (the same start): the records its statement
  processed;
- still in progress there: it stays pending;
- otherwise the id may name another transaction (the batch's lost in a crash before its COMMIT
  was written, or on a replica that never received it), or the server has forgotten it. Then the
  batch's range of row addresses tells: holding no record the batch would process, it counts as
  committed (a record processed by someone else counts as the batch's, as above); holding some,
  what the batch did cannot be known.

Nor can it be on another database system (a database restored from a dump, say), where the ids
and the row addresses name other things. A batch that cannot be known is recorded so: no records
counted, `"undetermined": true`, with the records its statement processed as `planned`; it is
said wherever it is reconciled.

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

from auditor.core.ledger import BatchIntent, RetentionLedger, SourceTransaction, decode_key
from auditor.core.ports import Clock
from auditor.retention.ranges import SERVER, eligible_records, in_range
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
    undetermined: bool = False  # reconciled, and what it did cannot be known (`rows` is 0)


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
        content["planned"] = intent.planned
    if batch.undetermined:
        content["undetermined"] = True
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
        if intent.source_transaction is None:
            keys = [decode_key(key) for key in intent.keys]
            found: int | None = processed_rows(bound, intent.action, keys)
        else:
            found = held_rows(bound, intent.deadline, intent.source_transaction)
            if found == RUNNING:
                continue
        rows = found or 0
        now = clock()
        batch = Batch(
            intent.batch,
            rows,
            intent.key_range,
            intent.created_at,
            now,
            0.0,
            reconciled=True,
            undetermined=found is None,
        )
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


RUNNING = -1
"""`held_rows`: the batch's transaction is still in progress."""

_SERVER = sa.text("SELECT " + SERVER)
_FATE = sa.text("SELECT pg_xact_status(CAST(:id AS xid8))")
_NOT_GIVEN = "22023"
"""The SQLSTATE of pg_xact_status on an id the server has not given yet: its history was
rewound past the batch (a restore, a failover to a replica that never saw it)."""


def held_rows(bound: BoundPolicy, deadline: datetime, held: SourceTransaction) -> int | None:
    """How many records the batch by row address held by `held` processed, as far as the data
    source can tell (None: it cannot; `RUNNING`: its transaction is still in progress)."""
    if bound.dialect != "postgresql":
        return None  # the data source is another kind of database now
    with bound.source.connect() as connection, connection.begin():
        system, started = connection.execute(_SERVER).one()
        if system != held.system:
            return None  # another database: the id and the row addresses mean nothing here
        try:
            with connection.begin_nested():
                status = connection.execute(_FATE, {"id": str(held.id)}).scalar_one()
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _NOT_GIVEN:
                raise
            status = "not given"
        if status in ("aborted", "not given"):
            # Had the batch committed, its id would be known as committed in this history.
            return 0
        if started == held.started and status == "committed":
            return held.processed
        if started == held.started and status == "in progress":
            return RUNNING
        # Since a restart or on a replica, the id may name another transaction (the batch's
        # lost in a crash), or the server has forgotten it: ask the range.
        left = connection.execute(
            sa.select(sa.func.count())
            .select_from(bound.table)
            .where(*in_range(eligible_records(bound, deadline), held.start, held.stop))
        ).scalar_one()
    return held.processed if left == 0 else None

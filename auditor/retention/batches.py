"""One enforcement run's batches: walking the eligible keys in order, one window at a time, and
processing a window's records in one data-source transaction that re-checks every record in the
statement itself; the next window's size adapts toward a target transaction time.

A policy with dependents locks the batch's still-eligible records first (FOR UPDATE where the
dialect has it), deletes their dependent rows (and the shared rows only those pointed to), then
deletes or anonymises the records. If a record drops out in between (put on hold by another
transaction), the records processed would not be the ones whose dependents went: the
transaction is rolled back and the batch tried again, so a record and its dependents always go
together or not at all.

A batch's keys are read first (`window`), then its records are selected by one key range and one
array of its keys on PostgreSQL (a single statement, planned as a range scan of the key's index),
elsewhere by IN lists (`apply`). On PostgreSQL, a plain table of a policy without dependents or
keyed hashes is walked in physical order instead (`auditor.retention.ranges`).

Keyed hashes are computed here (no SQL dialect has a portable HMAC): the batch's rows are read
with FOR UPDATE (where the dialect has it) and written back with one UPDATE ... CASE per chunk;
a value already holding its exact keyed hash keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql

from auditor.retention.anonymised import replaced
from auditor.retention.cascade import delete_dependents
from auditor.retention.plan import RetentionPlan
from auditor.retention.tables import BoundPolicy, fitted
from auditor.sources.datasources import DataSourceError

UPDATE_CHUNK = 500
"""Rows per UPDATE ... CASE statement of a keyed-hash batch, and per IN list elsewhere than on
PostgreSQL: bound parameters stay well below every dialect's limit."""
ATTEMPTS = 3
"""How often a batch with dependents is tried when its records keep changing under it."""

TARGET_TRANSACTION_SECONDS = 0.5
"""What a batch's transaction should take: the next batch is sized toward it (at most the
policy's batch_size), so that no transaction holds its locks for long on a slow or busy server;
half the second a transaction must stay under, as a batch can take twice as long as the one
before it on a server whose load changes."""


def next_batch_size(size: int, seconds: float, ceiling: int) -> int:
    """The size of the next batch after one of `size` records took `seconds`: scaled toward
    TARGET_TRANSACTION_SECONDS, at most doubled or quartered at a time, between 1 and `ceiling`."""
    if seconds <= 0:
        return min(ceiling, size * 2)
    scaled = int(size * TARGET_TRANSACTION_SECONDS / seconds)
    return max(1, min(ceiling, size * 2, max(scaled, size // 4)))


@dataclass(frozen=True, slots=True)
class Applied:
    """What one batch's transaction did: the records processed, and the dependent (and shared)
    rows deleted with them, by table."""

    rows: int
    dependents: Mapping[str, int] = field(default_factory=dict)


class BatchWalker:
    """Walks the eligible keys in order, one batch per call, remembering the last key done."""

    def __init__(self, bound: BoundPolicy, plan: RetentionPlan, secret: bytes | None) -> None:
        """Raises ValueError when a keyed hash has no secret (check_guard refuses that first)."""
        self.bound = bound
        self.eligible = bound.eligible(plan.deadline)
        self.owner = bound.owner(plan.deadline)
        self.secret = secret
        self.keyed = secret is not None
        self.after: Any = None
        self.hashes = [r for r in bound.policy.anonymise if r.kind == "hash"]
        if self.hashes and secret is None:
            # Never write NULL where a hash was asked for: check_guard refuses this earlier.
            raise ValueError("a keyed hash needs a secret")

    def window(self, connection: Connection, size: int) -> list[Any]:
        """The next `size` eligible keys in order (read only; the batch re-checks them)."""
        key = self.bound.key
        # A record whose (unique, but nullable) key is NULL has no place in a key range: it is
        # never processed, and stays counted.
        after = key.is_not(None) if self.after is None else key > self.after
        query = sa.select(key).where(*self.eligible, after).order_by(key).limit(size)
        with connection.begin():
            # fetchall: one call for the window, not one per row.
            keys = list(connection.execute(query).scalars().all())
        if keys:
            self.after = keys[-1]
        return keys

    def apply(self, connection: Connection, keys: list[Any]) -> Applied:
        """Process the records with these keys (in the database's key order, as `window` gives
        them) that are still eligible, and their dependents, in one transaction.

        Raises:
            DataSourceError: a batch with dependents found its records changing under it
                `ATTEMPTS` times; nothing of it was kept.
        """
        if not self.bound.dependents:
            with connection.begin():
                return Applied(self._records(connection, keys))
        for _ in range(ATTEMPTS):
            with connection.begin() as transaction:
                chosen = self._lock(connection, keys)
                if not chosen:
                    return Applied(0)
                deleted = delete_dependents(connection, self.bound.dependents, self.owner, chosen)
                rows = self._records(connection, chosen)
                if rows == len(chosen):
                    return Applied(rows, deleted)
                transaction.rollback()
        raise DataSourceError(
            self.bound.policy.source,
            f"the records of a batch of policy {self.bound.policy.id!r} kept changing while it "
            f"ran ({ATTEMPTS} attempts, each rolled back); run it again",
        )

    def _lock(self, connection: Connection, keys: list[Any]) -> list[Any]:
        """The keys among `keys` whose records are still eligible, in key order (a key range
        needs its ends first and last), locked until the end of the transaction where the
        dialect can."""
        key = self.bound.key
        chosen: list[Any] = []
        for conditions in self._key_sets(keys):
            query = sa.select(key).where(*conditions, *self.eligible).order_by(key)
            if self.bound.dialect != "sqlite":
                query = query.with_for_update()
            chosen += connection.execute(query).scalars().all()
        return chosen

    def _records(self, connection: Connection, keys: list[Any]) -> int:
        if self.hashes:
            return self._hash_batch(connection, keys)
        return self._fixed_batch(connection, keys)

    def _fixed_batch(self, connection: Connection, keys: list[Any]) -> int:
        bound = self.bound
        done = 0
        for chosen in self._key_sets(keys):
            conditions = [*chosen, *self.eligible]
            if bound.policy.action == "delete":
                statement: Any = sa.delete(bound.table).where(*conditions)
            else:
                statement = sa.update(bound.table).where(*conditions).values(self._fixed_values())
            done += int(connection.execute(statement).rowcount)
        return done

    def _fixed_values(self) -> dict[str, Any]:
        """The replacements of an anonymise policy without keyed hashes, by column."""
        bound = self.bound
        return {
            bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
            for r in bound.policy.anonymise
        }

    def _key_sets(self, keys: list[Any]) -> list[list[sa.ColumnElement[bool]]]:
        """Conditions selecting exactly these keys (in key order): on PostgreSQL one key range
        and one array (a single statement, planned as a range scan of the key's index);
        elsewhere IN lists of UPDATE_CHUNK keys."""
        key = self.bound.key
        if self.bound.dialect == "postgresql":
            # One array parameter: the server walks the key's index once per key in the range
            # (an array literal cast in SQL was planned as a filter over the range, three times
            # slower).
            array = sa.bindparam("batch_keys", keys, type_=postgresql.ARRAY(key.type))
            return [[key >= keys[0], key <= keys[-1], key == sa.any_(array)]]
        return [
            [key.in_(keys[start : start + UPDATE_CHUNK])]
            for start in range(0, len(keys), UPDATE_CHUNK)
        ]

    def _hash_batch(self, connection: Connection, keys: list[Any]) -> int:
        bound = self.bound
        key = bound.key
        columns = [bound.column(r) for r in self.hashes]
        fixed = {
            bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
            for r in bound.policy.anonymise
            if r.kind != "hash"
        }
        done = 0
        for start in range(0, len(keys), UPDATE_CHUNK):
            query = sa.select(key, *columns).where(
                key.in_(keys[start : start + UPDATE_CHUNK]), *self.eligible
            )
            if bound.dialect != "sqlite":
                query = query.with_for_update()
            rows = connection.execute(query).all()
            if not rows:
                continue
            values: dict[str, Any] = dict(fixed)
            for index, (replacement, column) in enumerate(
                zip(self.hashes, columns, strict=True), start=1
            ):
                # Column by column: a value already hashed keeps its hash.
                hashed = {row[0]: replaced(replacement, row[index], self.secret) for row in rows}
                values[column.name] = _case(hashed, key, column)
            chosen = [row[0] for row in rows]
            statement = sa.update(bound.table).where(key.in_(chosen), *self.eligible).values(values)
            done += int(connection.execute(statement).rowcount)
        return done


def _case(
    hashed: Mapping[Any, object], key: sa.Column[Any], column: sa.Column[Any]
) -> sa.ColumnElement[Any]:
    """CASE key WHEN ... THEN its hash ...: one statement writes a whole chunk."""
    whens = [(key == value, sa.literal(text, column.type)) for value, text in hashed.items()]
    return sa.case(*whens, else_=sa.null())

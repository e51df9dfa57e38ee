"""The batches of a retention run: the eligible keys read in order, one window at a time, and each
window's records deleted or anonymised in one transaction that re-checks them; the next window's
size adapts toward a target transaction time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql

from auditor.retention.anonymised import replaced
from auditor.retention.plan import RetentionPlan
from auditor.retention.tables import BoundPolicy, fitted

UPDATE_CHUNK = 500
"""Rows per UPDATE ... CASE statement of a keyed-hash batch, and per IN list elsewhere than on
PostgreSQL: bound parameters stay well below every dialect's limit."""

TARGET_TRANSACTION_SECONDS = 0.3
"""What a batch's transaction should take: the next batch is sized toward it (at most the
policy's batch_size), so that no transaction holds its locks for long on a slow or busy server."""


def next_batch_size(size: int, seconds: float, ceiling: int) -> int:
    """The size of the next batch after one of `size` records took `seconds`: scaled toward
    TARGET_TRANSACTION_SECONDS, at most doubled or quartered at a time, between 1 and `ceiling`."""
    if seconds <= 0:
        return min(ceiling, size * 2)
    scaled = int(size * TARGET_TRANSACTION_SECONDS / seconds)
    return max(1, min(ceiling, size * 2, max(scaled, size // 4)))


class Walker:
    """Walks the eligible keys in order, one batch per call, remembering the last key done."""

    def __init__(self, bound: BoundPolicy, plan: RetentionPlan, secret: bytes | None) -> None:
        """Raises ValueError when a keyed hash has no secret (check_guard refuses that first)."""
        self.bound = bound
        self.eligible = bound.eligible(plan.deadline)
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

    def apply(self, connection: Connection, keys: list[Any]) -> int:
        """Process the records with these keys that are still eligible, in one transaction;
        return how many were deleted or anonymised."""
        with connection.begin():
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
                values = {
                    bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
                    for r in bound.policy.anonymise
                }
                statement = sa.update(bound.table).where(*conditions).values(values)
            done += int(connection.execute(statement).rowcount)
        return done

    def _key_sets(self, keys: list[Any]) -> list[list[sa.ColumnElement[bool]]]:
        """Conditions selecting exactly these keys: on PostgreSQL one key range and one array
        (a single statement, planned as a range scan of the key's index); elsewhere IN lists of
        UPDATE_CHUNK keys."""
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

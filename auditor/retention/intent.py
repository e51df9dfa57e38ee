"""A retention batch's intent: what reconciliation needs to find out what the batch did, and the
hash of its key range (or of its range of row addresses) that its evidence carries instead of its
keys."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from auditor.core.ledger import BatchIntent, SourceTransaction, encode_key
from auditor.retention.plan import RetentionPlan


def batch_intent(
    plan: RetentionPlan,
    run: str,
    batch: int,
    keys: list[Any],
    keyed: bool,
    secret: bytes | None,
    created_at: datetime,
) -> BatchIntent:
    """The intent of a batch of `keys` (in key order): what reconciliation needs to find out
    what it did, and a hash of its key range."""
    key_range = _range_hash(keys[0], keys[-1], secret)
    return _intent(plan, run, batch, key_range, keyed, _encoded(keys), created_at, None)


def range_intent(
    plan: RetentionPlan,
    run: str,
    batch: int,
    held: SourceTransaction,
    secret: bytes | None,
    created_at: datetime,
) -> BatchIntent:
    """The intent of a batch by row address, run and not committed yet: the transaction that
    holds it, and a hash of its range of row addresses."""
    key_range = _range_hash(held.start, held.stop or "", secret)
    return _intent(plan, run, batch, key_range, secret is not None, (), created_at, held)


def _intent(
    plan: RetentionPlan,
    run: str,
    batch: int,
    key_range: str,
    keyed: bool,
    keys: tuple[Any, ...],
    created_at: datetime,
    held: SourceTransaction | None,
) -> BatchIntent:
    return BatchIntent(
        policy=plan.policy,
        run=run,
        batch=batch,
        action=plan.action,
        source=plan.source,
        table=plan.table,
        deadline=plan.deadline,
        key_range=key_range,
        key_range_keyed=keyed,
        keys=keys,
        created_at=created_at,
        source_transaction=held,
    )


def _encoded(keys: list[Any]) -> tuple[Any, ...]:
    """The keys as the ledger records them; integers (most keys) are recorded as they are."""
    if set(map(type, keys)) == {int}:
        return tuple(keys)
    return tuple(encode_key(key) for key in keys)


def _range_hash(first: object, last: object, secret: bytes | None) -> str:
    """A hash of the batch's first and last key: keyed when there is a secret, since a plain hash
    of a small integer key is undone by trying every integer."""
    material = json.dumps([_text(first), _text(last)], ensure_ascii=False).encode("utf-8")
    if secret is not None:
        return "hmac-sha256:" + hmac.new(secret, material, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(material).hexdigest()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)

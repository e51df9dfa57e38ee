"""Retention enforcement in batches by key range, each batch one short transaction that re-checks
the deadline and the legal hold in the UPDATE or DELETE itself, and each recorded as evidence.

One run:

1. plans the policy at the audit time (`auditor.retention.plan`), which fixes the deadline for
   the whole run;
2. refuses, before changing anything, when the data source is read-only, when a keyed hash has
   no key, or when the run would process more than `max_share` of the table (unless allowed);
3. walks the eligible keys in order (keyset pagination): each batch finds the next `batch_size`
   eligible keys, then, in the same transaction, deletes or updates the records from the first
   key to the last one that are *still* in scope, overdue and not held. A record touched or put on
   hold after the plan (or between the two statements) is left alone;
4. appends one `retention-batch` evidence record per committed batch (policy, action, rows, a hash
   of the key range, deadline, start and end), and one `retention-run` record at the end.

A run stopped at any point (SIGTERM, SIGKILL, a lost connection) leaves every batch done or not
done, as the database commits or rolls back each transaction whole; the next run finds whatever
is still eligible and finishes. Running it again changes nothing more: deleted records are gone,
anonymised ones no longer match (their columns hold their replacements). Evidence goes to another
database than the records, so a process killed between a batch's commit and its evidence record
leaves that batch unrecorded: the run's missing `retention-run` record shows the run was cut short,
and the next plan counts what is actually left.

Keyed hashes are computed here (no SQL dialect has a portable HMAC): the batch's rows are read
with FOR UPDATE (where the dialect has it) and written back with one UPDATE ... CASE per chunk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection

from auditor.errors import InvalidRequestError, StoreError
from auditor.ports import Clock
from auditor.retention.plan import RetentionPlan, plan_policy
from auditor.retention.policy import ANONYMISE_KEY_ENV, HASH_PREFIX
from auditor.retention.tables import BoundPolicy, fitted

EvidenceSink = Callable[[str, Mapping[str, Any], datetime], None]
"""Appends one evidence record (kind, content, time): `StateStore.append_evidence`."""

Outcome = Literal["done", "limit-reached", "report-only"]

UPDATE_CHUNK = 500
"""Rows per UPDATE ... CASE statement of a keyed-hash batch: bound parameters stay well below
every dialect's limit."""
MIN_KEY_BYTES = 16


class RetentionRefusedError(InvalidRequestError):
    """Enforcement was refused before anything was changed; the message says why and what to do."""

    def __init__(self, policy: str, reason: str) -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(f"retention policy {policy!r}: refused, nothing was changed: {reason}")


@dataclass(frozen=True, slots=True)
class Batch:
    """One committed batch: how many records it processed, and how long its transaction took."""

    index: int
    rows: int
    key_range: str  # a hash of the first and last key, never the keys
    started_at: datetime
    finished_at: datetime
    transaction_seconds: float


@dataclass(frozen=True, slots=True)
class Enforcement:
    """One enforcement run of one policy."""

    plan: RetentionPlan  # as planned at the start of the run
    run: str
    processed: int
    batches: int
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    longest_transaction_seconds: float

    def as_json(self) -> dict[str, Any]:
        """The run for `--format json` (stable keys)."""
        return {
            "run": self.run,
            "outcome": self.outcome,
            "processed": self.processed,
            "batches": self.batches,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "longest_transaction_seconds": round(self.longest_transaction_seconds, 6),
            "plan": self.plan.as_json(),
        }


def anonymise_key(environ: Mapping[str, str]) -> bytes | None:
    """The secret of keyed hashes from GDPR_AUDITOR_ANONYMISE_KEY, or None when it is unset.

    Raises:
        InvalidRequestError: it is set but shorter than 16 bytes, too short to be a secret.
    """
    text = environ.get(ANONYMISE_KEY_ENV, "")
    if not text:
        return None
    secret = text.encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidRequestError(
            f"{ANONYMISE_KEY_ENV} is shorter than {MIN_KEY_BYTES} bytes: use a random secret"
        )
    return secret


def enforce_policy(
    bound: BoundPolicy,
    clock: Clock,
    evidence: EvidenceSink,
    *,
    secret: bytes | None = None,
    max_rows: int | None = None,
    allow_large_share: bool = False,
    check: Callable[[], None] | None = None,
    on_batch: Callable[[Batch], None] | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Enforcement:
    """Plan the policy at `clock()` and process its eligible records in batches.

    `secret` keys the hashes (of anonymised values and of key ranges); `check` is called before
    each batch and may raise to stop the run there (the daemon's JobContext.check); `on_batch`
    hears of each committed batch.

    Raises:
        RetentionRefusedError: refused before any change (read-only source, too large a share,
            a keyed hash without a key).
        DataSourceError: the data source failed; the batches committed so far stay done.
        StoreError: evidence could not be written; the run stops after the batch it was for.
    """
    started = clock()
    plan = plan_policy(bound, started, max_rows)
    run = uuid.uuid4().hex
    if plan.action == "report":
        return Enforcement(plan, run, 0, 0, "report-only", started, clock(), 0.0)
    try:
        check_guard(bound, plan, secret, allow_large_share)
    except RetentionRefusedError as exc:
        _run_record(evidence, plan, run, "refused", 0, 0, started, clock(), exc.reason)
        raise
    if not plan.to_process:
        finished = clock()
        _run_record(evidence, plan, run, "done", 0, 0, started, finished)
        return Enforcement(plan, run, 0, 0, "done", started, finished, 0.0)
    walker = _Walker(bound, plan, secret, timer)
    processed = batches = 0
    longest = 0.0
    outcome: Outcome = "limit-reached"
    try:
        with bound.source.connect() as connection:
            while processed < plan.limit:
                if check is not None:
                    check()
                batch_started = clock()
                size = min(bound.policy.batch_size, plan.limit - processed)
                rows, key_range, seconds = walker.next_batch(connection, size)
                if key_range is None:
                    outcome = "done"
                    break
                batch = Batch(batches, rows, key_range, batch_started, clock(), seconds)
                _batch_record(evidence, plan, run, batch, walker.keyed)
                processed, batches = processed + rows, batches + 1
                longest = max(longest, seconds)
                if on_batch is not None:
                    on_batch(batch)
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        _run_record(evidence, plan, run, "stopped", processed, batches, started, clock(), reason)
        raise
    finished = clock()
    _run_record(evidence, plan, run, outcome, processed, batches, started, finished)
    return Enforcement(plan, run, processed, batches, outcome, started, finished, longest)


# --- the guard rails ------------------------------------------------------------------------------


def check_guard(
    bound: BoundPolicy, plan: RetentionPlan, secret: bytes | None, allow_large_share: bool
) -> None:
    """Refuse a run that must not start: nothing is changed, and the message says what to do.

    Raises:
        RetentionRefusedError: the data source is read-only, a keyed hash has no secret, or the
            run would process more than the policy's max_share of its table (unless allowed).
    """
    if plan.action == "report":
        return
    policy = bound.policy
    if bound.source.read_only:
        raise RetentionRefusedError(
            policy.id,
            f"data source {policy.source!r} is read-only; set read_only: false on it to let "
            f"retention {policy.action} records",
        )
    hashes = any(r.kind == "hash" for r in policy.anonymise)
    if secret is None and hashes and plan.to_process:
        raise RetentionRefusedError(
            policy.id,
            f"a keyed hash needs a secret in the environment variable {ANONYMISE_KEY_ENV}",
        )
    if plan.share_exceeded and not allow_large_share:
        raise RetentionRefusedError(
            policy.id,
            f"this run would {policy.action} {plan.to_process} of the {plan.table_rows} records "
            f"in {plan.table} ({plan.share:.1%}), more than its max_share of "
            f"{policy.max_share:.1%}; check its timestamp column, keep_for and filter, then lower "
            "max_rows_per_run (or --max-rows), raise max_share, or allow it once with "
            "--allow-large-share",
        )


# --- the batches ----------------------------------------------------------------------------------


class _Walker:
    """Walks the eligible keys in order, one batch per call, remembering the last key done."""

    def __init__(
        self,
        bound: BoundPolicy,
        plan: RetentionPlan,
        secret: bytes | None,
        timer: Callable[[], float],
    ) -> None:
        self.bound = bound
        self.eligible = bound.eligible(plan.deadline)
        self.secret = secret
        self.keyed = secret is not None
        self.timer = timer
        self.after: Any = None
        self.hashes = [r for r in bound.policy.anonymise if r.kind == "hash"]
        if self.hashes and secret is None:
            # Never write NULL where a hash was asked for: check_guard refuses this earlier.
            raise ValueError("a keyed hash needs a secret")

    def next_batch(self, connection: Connection, size: int) -> tuple[int, str | None, float]:
        """Process the next batch in one transaction: (rows, key range hash or None, seconds)."""
        started = self.timer()
        with connection.begin():
            if self.hashes:
                rows, first, last = self._hash_batch(connection, size)
            else:
                rows, first, last = self._range_batch(connection, size)
        seconds = self.timer() - started
        if first is None:
            return 0, None, seconds
        self.after = last
        return rows, _range_hash(first, last, self.secret), seconds

    def _keys(self) -> list[sa.ColumnElement[bool]]:
        """The eligible records after the last batch. A record whose (unique, but nullable) key
        is NULL has no place in a key range: it is never processed, and stays counted."""
        key = self.bound.key
        after = key.is_not(None) if self.after is None else key > self.after
        return [*self.eligible, after]

    def _range_batch(self, connection: Connection, size: int) -> tuple[int, Any, Any]:
        bound = self.bound
        key = bound.key
        window = (
            sa.select(key.label("k")).where(*self._keys()).order_by(key).limit(size).subquery("w")
        )
        first, last, count = connection.execute(
            sa.select(sa.func.min(window.c.k), sa.func.max(window.c.k), sa.func.count())
        ).one()
        if not count:
            return 0, None, None
        conditions = [key >= first, key <= last, *self.eligible]
        if bound.policy.action == "delete":
            statement: Any = sa.delete(bound.table).where(*conditions)
        else:
            values = {
                bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
                for r in bound.policy.anonymise
            }
            statement = sa.update(bound.table).where(*conditions).values(values)
        return int(connection.execute(statement).rowcount), first, last

    def _hash_batch(self, connection: Connection, size: int) -> tuple[int, Any, Any]:
        bound = self.bound
        key = bound.key
        columns = [bound.column(r) for r in self.hashes]
        query = sa.select(key, *columns).where(*self._keys()).order_by(key).limit(size)
        if bound.dialect != "sqlite":
            query = query.with_for_update()
        rows = connection.execute(query).all()
        if not rows:
            return 0, None, None
        fixed = {
            bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
            for r in bound.policy.anonymise
            if r.kind != "hash"
        }
        done = 0
        for start in range(0, len(rows), UPDATE_CHUNK):
            chunk = rows[start : start + UPDATE_CHUNK]
            keys = [row[0] for row in chunk]
            values: dict[str, Any] = dict(fixed)
            for index, column in enumerate(columns, start=1):
                hashed = {row[0]: _hashed(row[index], self.secret) for row in chunk}
                values[column.name] = _case(hashed, key, column)
            statement = sa.update(bound.table).where(key.in_(keys), *self.eligible).values(values)
            done += int(connection.execute(statement).rowcount)
        return done, rows[0][0], rows[-1][0]


def _case(
    hashed: Mapping[Any, str | None], key: sa.Column[Any], column: sa.Column[Any]
) -> sa.ColumnElement[Any]:
    """CASE key WHEN ... THEN its hash ...: one statement writes a whole chunk."""
    whens = [(key == value, sa.literal(text, column.type)) for value, text in hashed.items()]
    return sa.case(*whens, else_=sa.null())


def _hashed(value: object, secret: bytes | None) -> str | None:
    if value is None or secret is None:
        return None
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    digest = hmac.new(secret, text.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return HASH_PREFIX + digest.hexdigest()


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


# --- evidence ---------------------------------------------------------------------------------


def _common(plan: RetentionPlan, run: str) -> dict[str, Any]:
    return {
        "policy": plan.policy,
        "action": plan.action,
        "source": plan.source,
        "table": plan.table,
        "deadline": plan.deadline,
        "run": run,
    }


def _batch_record(
    evidence: EvidenceSink, plan: RetentionPlan, run: str, batch: Batch, keyed: bool
) -> None:
    content = {
        **_common(plan, run),
        "batch": batch.index,
        "rows": batch.rows,
        "key_range": batch.key_range,
        "key_range_keyed": keyed,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }
    evidence("retention-batch", content, batch.finished_at)


def _run_record(
    evidence: EvidenceSink,
    plan: RetentionPlan,
    run: str,
    outcome: str,
    processed: int,
    batches: int,
    started: datetime,
    finished: datetime,
    reason: str | None = None,
) -> None:
    planned = plan.as_json()
    content: dict[str, Any] = {
        **_common(plan, run),
        "outcome": outcome,
        "rows": processed,
        "batches": batches,
        "planned": {k: planned[k] for k in ("table_rows", "overdue", "held", "to_process")},
        "started_at": started,
        "finished_at": finished,
    }
    if reason is not None:
        content["reason"] = reason
    try:
        evidence("retention-run", content, finished)
    except StoreError:
        if outcome not in {"stopped", "refused"}:
            raise
        # Best effort while another error is on its way out: that one is what the caller needs.


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")

"""Retention enforcement in batches of keys, each batch one short transaction that re-checks the
deadline and the legal hold in the UPDATE or DELETE itself, begun and settled in the ledger.

One run:

1. reconciles the policy's batches that an earlier run left unsettled (`reconcile`);
2. plans the policy at the audit time (`auditor.retention.plan`), which fixes the deadline for
   the whole run;
3. refuses, before changing anything, when the data source is read-only, when a keyed hash has
   no key, or when the run would process more than `max_share` of the table (unless allowed);
4. walks the eligible keys in order (keyset pagination): each batch reads the next eligible keys
   (at most `batch_size`, fewer when the last batch's transaction took longer than its target
   time, `auditor.retention.batches.next_batch_size`), commits its intent (policy, run, action,
   deadline, keys) in the state database, then, in one data-source transaction, deletes or
   updates those of the records that are *still* in scope, overdue and not held (with their
   dependents, `auditor.retention.batches`), and settles the intent with its `retention-batch`
   evidence record (policy, action, rows, the dependent rows deleted per table, a hash of the key
   range, deadline, start and end). On PostgreSQL, where batches walk the table by row address
   (`auditor.retention.ranges`: one statement processes a range and returns the keys it
   processed), the intent names those keys, and is committed after the statement and before the
   data-source COMMIT. A record touched or put on hold after the plan is left alone. When the
   intent cannot be committed (the state database locked past its timeout, or down), the batch
   does not run, or is rolled back;
5. appends one `retention-run` record at the end.

A run stopped at any point (SIGTERM, SIGKILL, a lost connection or state database) leaves every
batch done or not done, as the database commits or rolls back each transaction whole, and every
batch that may have committed has an intent (nothing is committed in the data source before
it): settled with its evidence, or pending until the next reconciliation looks in the data
source and records what it did. So the `retention-batch` records always add up to what was
processed. Running it again changes nothing more: deleted records are gone, anonymised ones no
longer match (their columns hold their replacements).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from auditor.core.errors import InvalidRequestError, StoreError
from auditor.core.ledger import BatchIntent, RetentionLedger, encode_key, new_run
from auditor.core.ports import Clock
from auditor.retention.batches import BatchWalker, next_batch_size
from auditor.retention.plan import RetentionPlan, plan_policy
from auditor.retention.policy import ANONYMISE_KEY_ENV
from auditor.retention.ranges import RangeWalker
from auditor.retention.reconcile import Batch, batch_content, reconcile_policy
from auditor.retention.tables import BoundPolicy

Outcome = Literal["done", "limit-reached", "report-only"]

MIN_KEY_BYTES = 16


class RetentionRefusedError(InvalidRequestError):
    """Enforcement was refused before anything was changed; the message says why and what to do."""

    def __init__(self, policy: str, reason: str) -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(f"retention policy {policy!r}: refused, nothing was changed: {reason}")


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
    ledger: RetentionLedger,
    *,
    secret: bytes | None = None,
    max_rows: int | None = None,
    allow_large_share: bool = False,
    check: Callable[[], None] | None = None,
    on_batch: Callable[[Batch], None] | None = None,
    timer: Callable[[], float] = time.perf_counter,
    plan: RetentionPlan | None = None,
) -> Enforcement:
    """Reconcile the policy's unsettled batches, plan it at `clock()` and process its eligible
    records in batches, each begun in and settled with `ledger`.

    `secret` keys the hashes (of anonymised values and of key ranges); `check` is called before
    each batch and may raise to stop the run there (the daemon's JobContext.check); `on_batch`
    hears of each committed batch, reconciled ones included. `plan`: the caller's plan of this
    policy, made after its unsettled batches were reconciled, so that the table is not counted
    twice; without one, the run plans at `clock()`.

    Each batch holds at most the policy's batch_size records; the next batch is sized toward a
    target transaction time (`auditor.retention.batches.next_batch_size`).

    It stays one function of about 100 lines: the order of reconcile, plan, guard, intent, batch
    and settlement is the safety argument for changing the organisation's data, and reads best
    top to bottom.

    Raises:
        RetentionRefusedError: refused before any change (read-only source, too large a share,
            a keyed hash without a key).
        InvalidInputError: the policy's keep_for reaches before the calendar's first year.
        DataSourceError: the data source failed; the batches committed so far stay done, and a
            batch whose outcome is unknown stays pending for the next reconciliation.
        StoreError: an intent could not be committed (the batch did not run) or settled (it
            stays pending for the next reconciliation); the run stops there.
    """
    started = clock()
    reconciled = reconcile_policy(bound, ledger, clock)
    if on_batch is not None:
        for batch in reconciled:
            on_batch(batch)
    if plan is None or reconciled:
        plan = plan_policy(bound, started, max_rows)
    run = new_run()
    if plan.action == "report":
        return Enforcement(plan, run, 0, 0, "report-only", started, clock(), 0.0)
    try:
        check_guard(bound, plan, secret, allow_large_share)
    except RetentionRefusedError as exc:
        _run_record(ledger, plan, run, "refused", 0, 0, started, clock(), exc.reason)
        raise
    if not plan.to_process:
        finished = clock()
        _run_record(ledger, plan, run, "done", 0, 0, started, finished)
        return Enforcement(plan, run, 0, 0, "done", started, finished, 0.0)
    walker = BatchWalker(bound, plan, secret)
    processed = batches = 0
    longest = 0.0
    size = bound.policy.batch_size
    outcome: Outcome = "limit-reached"
    unsettled = False
    try:
        with bound.source.connect() as connection:
            ranges = RangeWalker.open(connection, bound, plan)
            while processed < plan.limit:
                if check is not None:
                    check()
                batch_started = clock()
                applied = None
                if ranges is not None:
                    if ranges.finished:
                        outcome = "done"
                        break
                    # One statement processes the next range of row addresses; its intent is
                    # committed before the data source commits it, and when the intent cannot
                    # be, the batch is rolled back.
                    before = timer()
                    with connection.begin():
                        keys = ranges.take(connection, size, plan.limit - processed)
                        if keys:
                            intent = _intent(
                                plan, run, batches, keys, walker.keyed, secret, batch_started
                            )
                            intent_id = ledger.begin_retention_batch(intent)
                            unsettled = True
                    seconds = timer() - before
                    ranges.took(seconds)
                    longest = max(longest, seconds)
                    if not keys:
                        continue  # no eligible record in that range: on to the next
                else:
                    # Read the next keys (none left: done), commit their intent, then process
                    # them.
                    keys = walker.window(connection, min(size, plan.limit - processed))
                    if not keys:
                        outcome = "done"
                        break
                    intent = _intent(plan, run, batches, keys, walker.keyed, secret, batch_started)
                    # Nothing is changed in the data source before its intent is committed.
                    intent_id = ledger.begin_retention_batch(intent)
                    unsettled = True
                    before = timer()
                    applied = walker.apply(connection, keys)
                    seconds = timer() - before
                rows = len(keys) if applied is None else applied.rows
                dependents = (
                    applied.dependents if applied is not None and bound.dependents else None
                )
                finished_at = clock()
                batch = Batch(
                    batches,
                    rows,
                    intent.key_range,
                    batch_started,
                    finished_at,
                    seconds,
                    dependents=dependents,
                )
                ledger.settle_retention_batch(
                    intent_id, rows, "confirmed", batch_content(intent, batch), batch.finished_at
                )
                unsettled = False
                processed, batches = processed + rows, batches + 1
                longest = max(longest, seconds)
                size = next_batch_size(len(keys), seconds, bound.policy.batch_size)
                if on_batch is not None:
                    on_batch(batch)
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        _run_record(
            ledger, plan, run, "stopped", processed, batches, started, clock(), reason, unsettled
        )
        raise
    finished = clock()
    _run_record(ledger, plan, run, outcome, processed, batches, started, finished)
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


def _intent(
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
    return BatchIntent(
        policy=plan.policy,
        run=run,
        batch=batch,
        action=plan.action,
        source=plan.source,
        table=plan.table,
        deadline=plan.deadline,
        key_range=_range_hash(keys[0], keys[-1], secret),
        key_range_keyed=keyed,
        keys=_encoded(keys),
        created_at=created_at,
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


# --- evidence ---------------------------------------------------------------------------------


def _run_record(
    ledger: RetentionLedger,
    plan: RetentionPlan,
    run: str,
    outcome: str,
    processed: int,
    batches: int,
    started: datetime,
    finished: datetime,
    reason: str | None = None,
    unsettled: bool = False,
) -> None:
    planned = plan.as_json()
    content: dict[str, Any] = {
        "policy": plan.policy,
        "action": plan.action,
        "source": plan.source,
        "table": plan.table,
        "deadline": plan.deadline,
        "run": run,
        "outcome": outcome,
        "rows": processed,
        "batches": batches,
        "planned": {k: planned[k] for k in ("table_rows", "overdue", "held", "to_process")},
        "started_at": started,
        "finished_at": finished,
    }
    if reason is not None:
        content["reason"] = reason
    if unsettled:
        # The batch under way when the run stopped: its rows are recorded when it is reconciled.
        content["unsettled_batches"] = 1
    try:
        ledger.append_evidence("retention-run", content, finished)
    except StoreError:
        if outcome not in {"stopped", "refused"}:
            raise
        # Best effort while another error is on its way out: that one is what the caller needs.


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
